"""Image ⇄ .mrt bytes with a given model: the container around the model's coding."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import MrtlabError
from . import container


@dataclass
class Encoded:
    data: bytes
    symbols: torch.Tensor
    estimated_bits: float
    seconds: float

    @property
    def bytes(self) -> int:
        return len(self.data)


def encode(model, rgb: np.ndarray, tokens: int | None = None) -> Encoded:
    """``HxWx3`` uint8 → whole file bytes (header + payload); ``tokens`` per window picks
    the rate of a variable-rate model (default: all)."""
    return encode_rates(model, rgb, [tokens], lambda enc: True)[0]


def encode_at_bpp(model, rgb: np.ndarray, bpp: float) -> tuple[Encoded, bool]:
    """Rate control of a variable-rate model: the most tokens per window whose whole file
    stays within ``bpp``. ``False`` when even one token per window is above the target."""
    check_rate_control(model, bpp)
    pixels = rgb.shape[0] * rgb.shape[1]
    encs = encode_rates(model, rgb, range(model.latent_tokens, 0, -1),
                        lambda enc: 8 * enc.bytes / pixels <= bpp)
    return encs[-1], 8 * encs[-1].bytes / pixels <= bpp


def check_rate_control(model, bpp: float) -> None:
    if not bpp > 0:
        raise MrtlabError(f"the target rate must be above 0 bpp, got {bpp}")
    if not model.variable_rate:
        raise MrtlabError("--bpp needs a variable-rate model (this one has a fixed rate); "
                          "see `mrtlab models`")


def encode_rates(model, rgb: np.ndarray, rates, done) -> list[Encoded]:
    """Run the analysis network once, then code at each rate (tokens per window) in turn
    until ``done(encoded)``; returns the files made."""
    if getattr(model, "fingerprint", None) is None:
        raise MrtlabError("this model has no fingerprint: load it with mrtlab.load_model, or code "
                          "with mrtlab.compress, which readies a model made in memory")
    h, w = rgb.shape[:2]
    if h > container.MAX_SIDE or w > container.MAX_SIDE:
        raise MrtlabError(f"image side too long ({w}×{h}; at most {container.MAX_SIDE} px)")
    t0 = time.perf_counter()
    y, grid = model.encode_rgb(np.ascontiguousarray(rgb, dtype=np.uint8))
    encs = []
    for tokens in rates:
        res = model.compress_latent(y, grid, tokens)
        data = container.pack(container.Header(model.fingerprint, h, w, res["tokens"]), res["payload"])
        encs.append(Encoded(data, res["symbols"], res["estimated_bits"], time.perf_counter() - t0))
        if done(encs[-1]):
            break
    return encs


def read_header(data: bytes, model=None) -> container.Header:
    header, _ = container.unpack(data)
    if model is not None:
        check_model(header, model)
    return header


def check_model(header: container.Header, model) -> None:
    if header.fingerprint != model.fingerprint:
        raise MrtlabError(f"file was made by another model (fingerprint {header.fingerprint.hex()}; "
                          f"model {model.source!r} is {model.fingerprint.hex()})")
    if header.tokens > model.latent_tokens or (header.tokens < model.latent_tokens
                                                and not model.variable_rate):
        raise MrtlabError(f"file uses {header.tokens} latent tokens per window; this model "
                          f"decodes {'1 to ' if model.variable_rate else ''}{model.latent_tokens}")


def decode(model, data: bytes) -> tuple[np.ndarray, torch.Tensor]:
    """Whole file bytes → (``HxWx3`` uint8, decoded symbols ``[T, C]``)."""
    header, payload = container.unpack(data)
    check_model(header, model)
    res = model.decompress(payload, header.height, header.width, header.tokens)  # the coder
    # reports a damaged payload as a MrtlabError (entropy/base.py); anything else is a bug
    return res["x_hat"].permute(1, 2, 0).numpy(), res["symbols"]
