"""TAEF2, the tiny autoencoder of the FLUX.2 latent, as frozen networks for a tokenizer.

TAEF2 is Ollin Boer Bohan's distillation of the FLUX.2 VAE (github.com/madebyollin/taesd,
MIT licence: "Copyright (c) 2023 Ollin Boer Bohan", the licence text travels with its
weight files). Its decoder is trained adversarially, so it draws texture from a latent of
32 channels at 1/8 of the image's side. This module is written here; it builds the two
networks with the layout of the published weight files (``taef2_encoder.pth``,
``taef2_decoder.pth``) so that they load strictly, and loads them once per folder.
Images are in [0, 1]; raw latents lie in about ±3 (the decoder starts with ``3·tanh(z/3)``).
"""
from __future__ import annotations

import functools
from pathlib import Path

import torch
from torch import nn

from ..errors import MrtlabError
from .files import load_state, missing, weights_file

CHANNELS = 32                 # latent channels
SCALE = 8                     # pixels per latent position, each side
UNIT = 6.0                    # raw latent / UNIT: the unit range TAESD scales its latents to
WIDTH = 64


def _conv(c_in: int, c_out: int, **kw) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1, **kw)


class _Block(nn.Module):
    """ReLU(convs(x) + x), the three 3×3 convolutions with ReLUs between; ``pooled`` blocks
    first add a 1×1 → GroupNorm → 1×1 path (TAEF2's latent-resolution blocks)."""

    def __init__(self, pooled: bool = False):
        super().__init__()
        self.conv = nn.Sequential(_conv(WIDTH, WIDTH), nn.ReLU(), _conv(WIDTH, WIDTH), nn.ReLU(),
                                  _conv(WIDTH, WIDTH))
        self.skip = nn.Identity()
        self.fuse = nn.ReLU()
        self.pool = nn.Sequential(nn.Conv2d(WIDTH, 4 * WIDTH, 1, bias=False), nn.GroupNorm(4, 4 * WIDTH),
                                  nn.ReLU(), nn.Conv2d(4 * WIDTH, WIDTH, 1, bias=False)) if pooled else None

    def forward(self, x):
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + self.skip(x))


class _Clamp(nn.Module):
    def forward(self, x):
        return torch.tanh(x / 3) * 3


def encoder() -> nn.Sequential:
    """[B,3,H,W] in [0,1] → raw latent [B,32,H/8,W/8] (H, W multiples of 8)."""
    layers: list[nn.Module] = [_conv(3, WIDTH), _Block()]
    for level in range(3):
        layers += [_conv(WIDTH, WIDTH, stride=2, bias=False)] + [_Block(pooled=level == 2) for _ in range(3)]
    return nn.Sequential(*layers, _conv(WIDTH, CHANNELS))


def decoder() -> nn.Sequential:
    """Raw latent [B,32,h,w] → image [B,3,8h,8w] (about [0,1], not clamped)."""
    layers: list[nn.Module] = [_Clamp(), _conv(CHANNELS, WIDTH), nn.ReLU()]
    for level in range(3):
        layers += [_Block(pooled=level == 0) for _ in range(3)]
        layers += [nn.Upsample(scale_factor=2), _conv(WIDTH, WIDTH, bias=False)]
    return nn.Sequential(*layers, _Block(), _conv(WIDTH, 3))


BUILD = {"encoder": encoder, "decoder": decoder}


def check_state(part: str, state: dict, path: Path) -> nn.Sequential:
    """The network of ``part`` with ``state`` loaded strictly, or a one-line error."""
    net = BUILD[part]()
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = next((s.strip() for s in str(e).splitlines()[1:] if s.strip()), str(e))[:160]
        raise MrtlabError(f"{path} does not hold TAEF2 {part} weights ({first})") from None
    return net


def path(part: str, folder: str | None) -> Path:
    """Where ``mrtlab weights`` keeps the file of ``part`` (``encoder``/``decoder``)."""
    return weights_file(f"taef2_{part}", folder)


@functools.lru_cache(maxsize=4)
def load(part: str, folder: str | None = None) -> nn.Sequential:
    """The frozen TAEF2 ``part`` from the weights folder (``eval/weights.py``), once per folder."""
    file = path(part, folder)
    if not file.is_file():
        raise MrtlabError(missing(f"taef2_{part}", file))
    net = check_state(part, load_state(file), file)
    return net.eval().requires_grad_(False).to(memory_format=torch.channels_last)
