"""Full softmax attention over all windows: quadratic in the window count; the ablation
baseline that shows what a linear mixer gives up (or not)."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import register
from .base import GlobalMixer
from .transformer import TransformerBlock


def grid_positions(h: int, w: int, dim: int, device) -> torch.Tensor:
    """2-D sinusoidal embedding ``[h, w, dim]``: half the channels for rows, half for columns."""
    quarter = dim // 4
    freq = torch.exp(-math.log(10000.0) * torch.arange(quarter, device=device) / max(quarter, 1))
    def axis(n):
        a = torch.arange(n, device=device)[:, None] * freq
        return torch.cat([a.sin(), a.cos()], dim=-1)  # [n, dim/2]
    pe = torch.cat([axis(h)[:, None].expand(h, w, -1), axis(w)[None].expand(h, w, -1)], dim=-1)
    return nn.functional.pad(pe, (0, dim - pe.shape[-1]))


@register("attention")
class AttentionMixer(GlobalMixer):
    """One attention block over all windows (:class:`~mrtlab.mixers.transformer.TransformerBlock`
    without its MLP), a 2-D sinusoidal embedding of each window's row and column added after
    its norm; the block's output projection starts at zero, so the mixer starts as the identity.

    Args:
        dim: channels of a token.
        heads: attention heads; must divide ``dim`` (default 4).
    """

    def __init__(self, dim: int, heads: int = 4):
        super().__init__()
        self.block = TransformerBlock(dim, heads, mlp_ratio=0)
        nn.init.zeros_(self.block.proj.weight)
        nn.init.zeros_(self.block.proj.bias)

    def forward(self, x):
        B, h, w, D = x.shape
        pos = grid_positions(h, w, D, x.device).flatten(0, 1)          # [h·w, D]
        return self.block(x.flatten(1, 2), pos).reshape(B, h, w, D)
