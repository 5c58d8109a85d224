"""Full softmax attention over all windows: quadratic in the window count; the ablation
baseline that shows what a linear mixer gives up (or not)."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..ops.attention import multi_head_attention
from ..registry import register
from .base import GlobalMixer


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
    def __init__(self, dim: int, heads: int = 4):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x):
        B, h, w, D = x.shape
        z = self.norm(x) + grid_positions(h, w, D, x.device)
        o = multi_head_attention(self.qkv(z).flatten(1, 2), self.heads)
        return x + self.out(o.reshape(B, h, w, D))
