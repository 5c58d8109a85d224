"""Model files: the bundled models, loading and saving trained ones, their decoders.

``catalog`` (which models exist, what a file's metadata says) reads no tensors and builds no
model; ``model_files`` builds and loads models; ``decoders`` lays other decoders over them;
``migrate`` upgrades files written before a model's identity was stored in its file.
"""
from .catalog import BUNDLED, DEFAULT_MODEL, FIDELITY, list_decoders

__all__ = ["BUNDLED", "DEFAULT_MODEL", "FIDELITY", "fingerprint", "identify", "list_decoders", "load_model",
           "save_model", "write_decoder"]


def __getattr__(name):  # building models imports the recipe layer and every part: only when asked
    if name in ("fingerprint", "identify", "load_model", "save_model"):
        from . import model_files
        return getattr(model_files, name)
    if name == "write_decoder":
        from .decoders import write_decoder
        return write_decoder
    raise AttributeError(f"module 'mrtlab.zoo' has no attribute {name!r}")
