"""Uniform scalar quantization with a clamp to ±bound (so the alphabet is finite)."""
from __future__ import annotations

import torch

from ..registry import register
from .base import Quantizer, ste_round


@register("scalar")
class ScalarQuantizer(Quantizer):
    """Uniform scalar quantization of clipped channels: the integers −bound…bound.

    Args:
        channels: C, channels per latent token.
        bound: the largest magnitude; each channel has ``2·bound + 1`` symbols.
        relaxation: ``ste`` (straight-through rounding) or ``noise`` (additive uniform noise,
            Ballé et al.) while training; evaluation always rounds.

    ``[..., C]`` continuous → ``[..., C]`` symbol positions 0…2·bound.
    """

    def __init__(self, channels: int = 8, bound: int = 7, relaxation: str = "ste"):
        super().__init__()
        if relaxation not in ("ste", "noise"):
            raise ValueError(f"relaxation must be 'ste' or 'noise', got {relaxation!r}")
        self.bound, self.relaxation = bound, relaxation
        self.levels = [2 * bound + 1] * channels

    def forward(self, y):
        y = (y + self.bound).clamp(0, 2 * self.bound)
        if self.training and self.relaxation == "noise":
            return (y + torch.empty_like(y).uniform_(-0.5, 0.5)).clamp(0, 2 * self.bound)
        return ste_round(y)

    def dequantize(self, q):
        return q - self.bound
