"""Training: data, losses, the Accelerate loop, checkpoints and export."""
from .loop import export, train
from .settings import TrainConfig

__all__ = ["TrainConfig", "export", "train"]
