"""Bidirectional gated linear attention (GLA, Yang et al. 2023) over the window grid."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from ..ops.gla import gla
from ..registry import register
from .scan import SCANS, ScanMixer


@register("gla")
class GLAMixer(ScanMixer):
    """Bidirectional gated linear attention (Yang et al. 2024) over the window grid.

    Args:
        dim: channels of a token.
        heads: heads, split evenly over the scan orders.
        gate_rank: rank of the forget gate's low-rank projection.
        gate_normalizer: the forget gate is ``logsigmoid(x A B) / gate_normalizer`` (the GLA
            paper uses 16).
        scans: scan orders of the window grid (default all four).

    ``[B, nWh, nWw, D]`` → ``[B, nWh, nWw, D]``.
    """

    def __init__(self, dim: int, heads: int = 8, gate_rank: int = 16, gate_normalizer: float = 16.0,
                 scans: tuple[str, ...] = SCANS):
        super().__init__(dim, heads, scans)
        self.gate_normalizer = gate_normalizer
        self.qkvg = nn.Linear(dim, 4 * dim, bias=False)
        self.forget = nn.Sequential(nn.Linear(dim, gate_rank, bias=False), nn.Linear(gate_rank, dim))

    def inputs(self, z):
        q, k, v, g = self.qkvg(z).chunk(4, dim=-1)
        logf = F.logsigmoid(self.forget(z)) / self.gate_normalizer
        return [self.split_heads(t) for t in (q, k, v, logf)], F.silu(g)

    def op(self, q, k, v, logf, heads):
        return gla(q, k, v, logf, scale=self.head_dim ** -0.5)[0]
