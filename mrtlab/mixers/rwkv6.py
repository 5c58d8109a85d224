"""RWKV-6 time mixing, and the bidirectional global mixer built on it."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.wkv6 import wkv6
from ..registry import register
from .scan import SCANS, ScanMixer


class RWKV6TimeMix:
    """RWKV-6 time mixing, what the ``rwkv6`` global mixer and the RCM's blocks
    (:mod:`mrtlab.entropy.rcm`) share: projections of receptance, key, value and gate, the
    data-dependent decay ``w = -exp(w0 + tanh(z A) B)`` (``w0`` spread over channels as in
    RWKV-6's init) and the bonus ``u``, mixed by :func:`~mrtlab.ops.wkv6.wkv6` with scale
    ``1/sqrt(head_dim)``.

    A mixin of the ``nn.Module`` that uses it rather than a submodule, so that the weights keep
    the names the bundled models were saved with (``rkvg``, ``w0``, ``decay_a``, ``decay_b``,
    ``u``): a model's fingerprint hashes them, and files carry the fingerprint.
    """

    def init_time_mix(self, in_dim: int, dim: int, heads: int, decay_rank: int) -> None:
        """Create the weights: ``in_dim`` channels in (``dim``, or ``2·dim`` with the RCM's
        token shift), ``dim`` out, in ``heads`` heads; ``decay_rank``: the rank of ``A B``."""
        self.heads, self.head_dim = heads, dim // heads
        self.rkvg = nn.Linear(in_dim, 4 * dim, bias=False)
        ramp = torch.arange(dim) / max(dim - 1, 1)
        self.w0 = nn.Parameter(-6 + 5 * ramp ** 0.7)
        self.decay_a = nn.Linear(in_dim, decay_rank, bias=False)
        self.decay_b = nn.Linear(decay_rank, dim, bias=False)
        nn.init.zeros_(self.decay_b.weight)
        self.u = nn.Parameter(torch.full((heads, self.head_dim), 0.5))

    def time_mix_inputs(self, z: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """``z: [..., in_dim]`` → ``[r, k, v, log decay]``, each ``[..., heads, head_dim]``,
        and the gate's pre-activation ``[..., dim]``."""
        r, k, v, g = self.rkvg(z).chunk(4, dim=-1)
        logw = -torch.exp(self.w0 + self.decay_b(torch.tanh(self.decay_a(z))))
        return [t.unflatten(-1, (self.heads, self.head_dim)) for t in (r, k, v, logw)], g

    def time_mix(self, r, k, v, logw, heads: slice = slice(None), chunk_size: int = 64):
        """WKV-6 over ``[B, h, T, head_dim]`` inputs of the heads ``heads`` → ``[B, h, T, head_dim]``."""
        return wkv6(r, k, v, logw, self.u[heads], scale=1 / math.sqrt(self.head_dim),
                    chunk_size=chunk_size)[0]


@register("rwkv6")
class RWKV6Mixer(ScanMixer, RWKV6TimeMix):
    """Bidirectional RWKV-6 time mixing over the window grid (data-dependent per-channel decay).

    Args:
        dim: channels of a token.
        heads: heads, split evenly over the scan orders (default 8).
        decay_rank: rank of the decay's low-rank projection (default 32).
        scans: scan orders of the window grid (default all four).
        chunk_size: tokens per chunk of the WKV-6 op (default 64).
    """

    def __init__(self, dim: int, heads: int = 8, decay_rank: int = 32,
                 scans: tuple[str, ...] = SCANS, chunk_size: int = 64):
        super().__init__(dim, heads, scans)
        self.chunk_size = chunk_size
        self.init_time_mix(dim, dim, heads, decay_rank)

    def inputs(self, z):
        tensors, g = self.time_mix_inputs(z)
        return tensors, F.silu(g)

    def op(self, r, k, v, logw, heads):
        return self.time_mix(r, k, v, logw, heads, self.chunk_size)
