"""Bidirectional RWKV-7 ("Goose") time mixing over the window grid.

The state follows the generalized delta rule with a diagonal-plus-low-rank transition:
``S_t = S_{t-1} (diag(w_t) + a_t^T b_t) + v_t^T k_t`` with ``a = -κ̂``, ``b = κ̂·η``
(κ̂ the L2-normalized key, η the in-context learning rate), log decay
``-0.606531·sigmoid(·)`` as in RWKV-7, and the bonus ``(r·k·r_k) v`` of the current token.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.wkv7 import wkv7
from ..registry import register
from .scan import SCANS, ScanMixer


def lora(dim: int, rank: int, out: int | None = None) -> nn.Sequential:
    m = nn.Sequential(nn.Linear(dim, rank, bias=False), nn.Tanh(), nn.Linear(rank, out or dim, bias=False))
    nn.init.zeros_(m[-1].weight)
    return m


@register("rwkv7")
class RWKV7Mixer(ScanMixer):
    """Bidirectional RWKV-7 ("Goose": a generalised delta rule) over the window grid.

    Args:
        dim: channels of a token.
        heads: heads, split evenly over the scan orders.
        decay_rank: rank of the decay's low-rank projection.
        iclr_rank: rank of the in-context learning rate's low-rank projection.
        scans: scan orders of the window grid (default all four).
        chunk_size: tokens per chunk of the WKV-7 op; 64 stores fewer per-chunk
            transitions, which keeps the backward pass linear up to T = 16384 here (16 was 4×
            slower there).

    ``[B, nWh, nWw, D]`` → ``[B, nWh, nWw, D]``.
    """

    def __init__(self, dim: int, heads: int = 8, decay_rank: int = 32, iclr_rank: int = 16,
                 scans: tuple[str, ...] = SCANS, chunk_size: int = 64):
        super().__init__(dim, heads, scans)
        self.chunk_size = chunk_size
        self.rkvg = nn.Linear(dim, 4 * dim, bias=False)
        ramp = torch.arange(dim) / max(dim - 1, 1)
        self.w0 = nn.Parameter(-4 + 6 * ramp)      # sigmoid(w0): slow to fast decay over channels
        self.decay = lora(dim, decay_rank)
        self.a0 = nn.Parameter(torch.zeros(dim))
        self.iclr = lora(dim, iclr_rank)
        self.k_k = nn.Parameter(torch.ones(dim))
        self.k_a = nn.Parameter(torch.ones(dim))
        self.r_k = nn.Parameter(torch.zeros(heads, self.head_dim))

    def inputs(self, z):
        r, k, v, g = self.rkvg(z).chunk(4, dim=-1)
        logw = -0.606531 * torch.sigmoid(self.w0 + self.decay(z))
        eta = torch.sigmoid(self.a0 + self.iclr(z))
        kk = F.normalize(self.split_heads(k * self.k_k), dim=-1).flatten(-2)
        k = k * (1 + (eta - 1) * self.k_a)
        a, b = -kk, kk * eta
        return [self.split_heads(t) for t in (r, logw, k, v, a, b)], F.silu(g)

    def op(self, r, logw, k, v, a, b, heads):
        o = wkv7(r, logw, k, v, a, b, scale=1.0, chunk_size=self.chunk_size)[0]
        return o + (r * k * self.r_k[heads][None, :, None]).sum(-1, keepdim=True) * v
