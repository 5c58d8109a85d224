"""mrtlab: extreme image compression with compact 1-D latents (Mixed RWKV-Transformer).

``mrtlab.create_model("mrt_default")`` builds a named architecture (``mrtlab.list_models()``);
``mrtlab.models.load_model("default")`` loads a bundled, trained model.
"""
__version__ = "0.1.0"


def __getattr__(name):  # the model factory imports torch: only when asked for
    if name in ("create_model", "list_models"):
        from . import config
        return getattr(config, name)
    raise AttributeError(f"module 'mrtlab' has no attribute {name!r}")
