"""The Python API in three calls: ``load_model``, ``compress`` and ``decompress`` (docs/api.md).

``compress`` takes a path, a PIL image or an ``H×W×3`` uint8 array and returns the bytes of a
``.mrt`` file; ``decompress`` takes those bytes and returns a PIL image. A model is a bundled
name, a trained model's path, or a model object (one from ``load_model``, or one fresh from
``create_model``, which gets its coding tables and fingerprint on first use).
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from .codec.codec import decode, encode, encode_at_bpp, read_header
from .codec.image_io import as_rgb
from .errors import MrtlabError
from .zoo.catalog import bundled_reader
from .zoo.model_files import identify
from .zoo.model_files import load_model as load


def load_model(name_or_path: str | None = None, decoder: str | None = None, weights: str | None = None):
    """A bundled model by name (``mrtlab.zoo.BUNDLED``; the default when None) or a trained one
    by path (``x.safetensors`` with ``x.yaml`` beside it), in coding mode. ``decoder``: another
    decoder of the model (``mrtlab.zoo.list_decoders``); ``weights``: the folder of the
    pretrained networks the model wraps (TAEF2)."""
    return load(name_or_path, decoder, weights)


def compress(image, model=None, tokens: int | None = None, bpp: float | None = None) -> bytes:
    """An image → the bytes of a ``.mrt`` file. ``tokens``: latent tokens kept per window (a
    variable-rate model's rate; default all); ``bpp``: instead, the most tokens whose file
    stays within this rate.

    Args:
        image: a path, a PIL image or an ``H×W×3`` uint8 array.
        model: a bundled name, a model file's path or a model object (default: ``default``).
    """
    if tokens is not None and bpp is not None:
        raise MrtlabError("give tokens or bpp, not both")
    model = coding_model(model)
    rgb, _ = as_rgb(image)
    if bpp is not None:
        return encode_at_bpp(model, rgb, bpp)[0].data
    return encode(model, rgb, tokens).data


def decompress(data: bytes, model=None, decoder: str | None = None):
    """The bytes of a ``.mrt`` file → a PIL RGB image. ``model``: the model that wrote it
    (default: the bundled model whose fingerprint the file carries); ``decoder``: which of
    its decoders draws it."""
    if model is None:
        fp = read_header(bytes(data)).fingerprint
        model = bundled_reader(fp)
        if model is None:
            raise MrtlabError(f"the file was made by a model that is not bundled (fingerprint {fp.hex()}); "
                              "pass it as model=")
    if decoder is not None and not isinstance(model, str | Path):
        raise MrtlabError("decoder= picks a decoder of a model given by name or path")
    rgb, _ = decode(coding_model(model, decoder), bytes(data))
    return Image.fromarray(rgb)


def coding_model(model=None, decoder: str | None = None):
    """A model ready to code: loaded by name or path, or a model object made ready once (its
    coding tables built and its fingerprint computed, if it was made in memory)."""
    if model is None or isinstance(model, str | Path):
        return load_model(None if model is None else str(model), decoder)
    if not hasattr(model, "fingerprint"):
        if not hasattr(model, "config"):
            raise MrtlabError("the model has no recipe section (.config): build it with "
                              "mrtlab.create_model or load it with mrtlab.load_model")
        model.update()
        identify(model, model.config, f"<{type(model).__name__} in memory>")
    return model.eval()
