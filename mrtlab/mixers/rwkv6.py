"""Bidirectional RWKV-6 time mixing over the window grid.

The windows are scanned in four orders (rows forward/backward, columns forward/backward);
every scan shares the r/k/v/g projections and the data-dependent decay, and the four
outputs are merged with learned per-channel weights. Cost is linear in the window count.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import wkv6_chunk
from ..registry import register
from .base import GlobalMixer

SCANS = ("rows", "rows_reversed", "cols", "cols_reversed")


def scan(x: torch.Tensor, order: str) -> torch.Tensor:
    """``[B, nWh, nWw, ...]`` → ``[B, T, ...]`` in the given order."""
    if order.startswith("cols"):
        x = x.transpose(1, 2)
    x = x.flatten(1, 2)
    return x.flip(1) if order.endswith("reversed") else x


def unscan(x: torch.Tensor, order: str, hw: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`scan`."""
    if order.endswith("reversed"):
        x = x.flip(1)
    h, w = hw
    if order.startswith("cols"):
        return x.unflatten(1, (w, h)).transpose(1, 2)
    return x.unflatten(1, (h, w))


@register("rwkv6")
class RWKV6Mixer(GlobalMixer):
    def __init__(self, dim: int, heads: int = 4, decay_rank: int = 32,
                 scans: tuple[str, ...] = SCANS, chunk_size: int = 16):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        unknown = set(scans) - set(SCANS)
        if unknown:
            raise ValueError(f"unknown scan orders {sorted(unknown)}; choose from {SCANS}")
        self.heads, self.scans, self.chunk_size = heads, tuple(scans), chunk_size
        self.head_dim = dim // heads
        self.norm = nn.LayerNorm(dim)
        self.rkvg = nn.Linear(dim, 4 * dim, bias=False)
        # decay: w = -exp(w0 + tanh(x A) B), spread over channels as in RWKV-6's init
        ramp = torch.arange(dim) / max(dim - 1, 1)
        self.w0 = nn.Parameter(-6 + 5 * ramp ** 0.7)
        self.decay_a = nn.Linear(dim, decay_rank, bias=False)
        self.decay_b = nn.Linear(decay_rank, dim, bias=False)
        nn.init.zeros_(self.decay_b.weight)
        self.u = nn.Parameter(torch.full((heads, self.head_dim), 0.5))
        self.merge = nn.Parameter(torch.full((len(self.scans), dim), 1.0 / len(self.scans)))
        self.out_norm = nn.GroupNorm(heads, dim)
        self.out = nn.Linear(dim, dim, bias=False)
        nn.init.zeros_(self.out.weight)

    def forward(self, x):
        B, h, w, D = x.shape
        z = self.norm(x)
        r, k, v, g = self.rkvg(z).chunk(4, dim=-1)
        logw = -torch.exp(self.w0 + self.decay_b(torch.tanh(self.decay_a(z))))
        y = 0
        for i, order in enumerate(self.scans):
            heads = [scan(t, order).unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)
                     for t in (r, k, v, logw)]  # [B, H, T, K]
            o, _ = wkv6_chunk(*heads, self.u, scale=1 / math.sqrt(self.head_dim),
                              chunk_size=self.chunk_size)
            y = y + unscan(o.transpose(1, 2).flatten(2), order, (h, w)) * self.merge[i]
        y = self.out_norm(y.reshape(-1, D)).reshape(B, h, w, D)
        return x + self.out(y * F.silu(g))
