"""Finite scalar quantization (Mentzer et al., 2023): bound each channel, then round."""
from __future__ import annotations

import torch

from ..registry import register
from .base import Quantizer, ste_round


@register("fsq")
class FSQ(Quantizer):
    """Finite scalar quantization (Mentzer et al. 2023): ``tanh`` bounds each channel, which is
    rounded to one of its ``levels`` (straight-through gradient).

    Args:
        levels: symbols per channel (default eight channels of 5); C = len(levels).

    ``[..., C]`` continuous → ``[..., C]`` symbol positions 0…levels−1 (float, for gradients).
    """

    def __init__(self, levels: list[int] | None = None):
        super().__init__()
        levels = [5] * 8 if levels is None else levels
        if not levels or min(levels) < 2:
            raise ValueError(f"FSQ levels must be a non-empty list of integers >= 2, got {levels}")
        self.levels = list(levels)
        self.register_buffer("half_width", (torch.tensor(levels, dtype=torch.float32) - 1) / 2,
                             persistent=False)

    def forward(self, y):
        return ste_round(self.half_width * (torch.tanh(y) + 1))

    def dequantize(self, q):
        return q / self.half_width - 1
