"""Bidirectional RWKV-6 time mixing over the window grid (data-dependent per-channel decay)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.wkv6 import wkv6
from ..registry import register
from .scan import SCANS, ScanMixer


@register("rwkv6")
class RWKV6Mixer(ScanMixer):
    def __init__(self, dim: int, heads: int = 8, decay_rank: int = 32,
                 scans: tuple[str, ...] = SCANS, chunk_size: int = 64):
        super().__init__(dim, heads, scans)
        self.chunk_size = chunk_size
        self.rkvg = nn.Linear(dim, 4 * dim, bias=False)
        # decay: w = -exp(w0 + tanh(x A) B), spread over channels as in RWKV-6's init
        ramp = torch.arange(dim) / max(dim - 1, 1)
        self.w0 = nn.Parameter(-6 + 5 * ramp ** 0.7)
        self.decay_a = nn.Linear(dim, decay_rank, bias=False)
        self.decay_b = nn.Linear(decay_rank, dim, bias=False)
        nn.init.zeros_(self.decay_b.weight)
        self.u = nn.Parameter(torch.full((heads, self.head_dim), 0.5))

    def inputs(self, z):
        r, k, v, g = self.rkvg(z).chunk(4, dim=-1)
        logw = -torch.exp(self.w0 + self.decay_b(torch.tanh(self.decay_a(z))))
        return [self.split_heads(t) for t in (r, k, v, logw)], F.silu(g)

    def op(self, r, k, v, logw, heads):
        return wkv6(r, k, v, logw, self.u[heads], scale=1 / math.sqrt(self.head_dim),
                    chunk_size=self.chunk_size)[0]
