"""Model assembly and bundled models."""
from .base import CodecModel
from .mrt import MRT, MixerStack
from .decoders import FIDELITY, write_decoder
from .zoo import BUNDLED, fingerprint, identify, list_decoders, load_model, save_model

__all__ = ["CodecModel", "MRT", "MixerStack", "BUNDLED", "FIDELITY", "fingerprint", "identify",
           "list_decoders", "load_model", "save_model", "write_decoder"]
