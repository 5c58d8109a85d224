"""Model assembly: the codec interface, MRT, the 2-D baseline, and their coder and decoder sides."""
from .base import CodecModel
from .baseline2d import Baseline2D
from .mrt import MRT, MixerStack

__all__ = ["CodecModel", "MRT", "MixerStack", "Baseline2D"]
