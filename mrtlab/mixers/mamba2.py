"""Bidirectional Mamba-2 (SSD: scalar per-head decay) over the window grid.

Per head: ``dt = softplus(x W_dt + b)``, ``A = -exp(A_log)``, state update
``S_t = exp(A dt_t) S_{t-1} + B_t^T (x_t dt_t)``, output ``C_t S_t + D x_t``. Mamba-2's
short causal convolution is left out: the scans give the order on the 2-D grid.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.ssd import ssd
from ..registry import register
from .scan import SCANS, ScanMixer


@register("mamba2")
class Mamba2Mixer(ScanMixer):
    """Bidirectional Mamba-2 (state-space duality, Dao & Gu 2024) over the window grid.

    Args:
        dim: channels of a token.
        heads: heads, split evenly over the scan orders.
        state: N, the state size of each head.
        scans: scan orders of the window grid (default all four).

    ``[B, nWh, nWw, D]`` → ``[B, nWh, nWw, D]``.
    """

    def __init__(self, dim: int, heads: int = 8, state: int = 32, scans: tuple[str, ...] = SCANS):
        super().__init__(dim, heads, scans)
        self.state = state
        self.in_proj = nn.Linear(dim, 2 * dim + 2 * heads * state + heads, bias=False)
        # dt spread log-uniformly over [1e-3, 1e-1] at init, as in Mamba
        dt = torch.exp(torch.rand(heads) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.empty(heads).uniform_(1, 16)))
        self.skip = nn.Parameter(torch.ones(heads))

    def inputs(self, z):
        D, H, N = self.heads * self.head_dim, self.heads, self.state
        x, gate, b, c, dt = self.in_proj(z).split([D, D, H * N, H * N, H], dim=-1)
        dt = F.softplus(dt + self.dt_bias)
        heads = [c.unflatten(-1, (H, N)), b.unflatten(-1, (H, N)), self.split_heads(x), dt]
        return heads, F.silu(gate)

    def op(self, c, b, x, dt, heads):  # [B,h,T,N], [B,h,T,N], [B,h,T,P], [B,h,T]
        g = -torch.exp(self.A_log[heads])[None, :, None] * dt
        y = ssd(c, b, x * dt.unsqueeze(-1), g, scale=1.0)[0]
        return y + self.skip[heads][None, :, None, None] * x
