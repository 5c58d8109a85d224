"""Model assembly and bundled models."""
from .base import CodecModel
from .mrt import MRT, MixerStack
from .zoo import BUNDLED, fingerprint, identify, load_model, save_model

__all__ = ["CodecModel", "MRT", "MixerStack", "BUNDLED", "fingerprint", "identify", "load_model", "save_model"]
