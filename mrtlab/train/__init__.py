"""Training: data, the Accelerate loop, checkpoints and export."""
from .loop import TrainConfig, export, train

__all__ = ["TrainConfig", "export", "train"]
