"""Model assembly and bundled models."""
from .mrt import MRT, MixerStack
from .zoo import BUNDLED, fingerprint, identify, load_model, save_model

__all__ = ["MRT", "MixerStack", "BUNDLED", "fingerprint", "identify", "load_model", "save_model"]
