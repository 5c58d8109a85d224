"""mrtlab: extreme image compression with compact 1-D latents (Mixed RWKV-Transformer).

In three lines (docs/api.md)::

    import mrtlab
    data = mrtlab.compress("photo.jpg", tokens=2)    # the bytes of a .mrt file
    image = mrtlab.decompress(data)                  # a PIL image

``mrtlab.load_model("default")`` loads a bundled or trained model; ``mrtlab.create_model(
"mrt_default")`` builds a named architecture (``mrtlab.list_models()``) to train.
"""
__version__ = "0.1.0"

__all__ = ["compress", "create_model", "decompress", "list_models", "load_model"]


def __getattr__(name):  # every entry point imports torch: only when asked for
    if name in ("create_model", "list_models"):
        from . import config
        return getattr(config, name)
    if name in ("compress", "decompress", "load_model"):
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'mrtlab' has no attribute {name!r}")
