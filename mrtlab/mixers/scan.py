"""Bidirectional 2-D scanning shared by the linear-recurrent global mixers.

A causal recurrence sees only earlier windows. The heads are split over four scan orders
of the window grid — rows forward/backward, columns forward/backward — so every window
has a path to every other one, at the cost of a single scan; the output projection mixes
the directions. Subclasses say how to project tokens into the op's inputs and which op to
run.
"""
from __future__ import annotations

from abc import abstractmethod

import torch
from torch import nn

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


class ScanMixer(GlobalMixer):
    """pre-norm → op, each head group in its scan order → GroupNorm → gate → projection.

    ``inputs(z)`` returns the op's per-token tensors as ``[B, nWh, nWw, H, ...]`` plus the
    gate ``[B, nWh, nWw, D]``; ``op(*tensors, heads=slice)`` takes them as ``[B, h, T, ...]``
    for the heads in ``heads`` and returns ``[B, h, T, head_dim]``.
    """

    def __init__(self, dim: int, heads: int, scans: tuple[str, ...] = SCANS):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        unknown = set(scans) - set(SCANS)
        if unknown or not scans:
            raise ValueError(f"unknown scan orders {sorted(unknown)}; choose from {SCANS}")
        if heads % len(scans):
            raise ValueError(f"heads {heads} cannot be split evenly over {len(scans)} scan orders")
        self.heads, self.head_dim, self.scans = heads, dim // heads, tuple(scans)
        self.norm = nn.LayerNorm(dim)
        self.out_norm = nn.GroupNorm(heads, dim)
        self.out = nn.Linear(dim, dim, bias=False)
        nn.init.zeros_(self.out.weight)

    def split_heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.unflatten(-1, (self.heads, self.head_dim))

    @abstractmethod
    def inputs(self, z: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]: ...

    @abstractmethod
    def op(self, *tensors: torch.Tensor, heads: slice) -> torch.Tensor: ...

    def forward(self, x):
        B, h, w, D = x.shape
        tensors, gate = self.inputs(self.norm(x))
        group = self.heads // len(self.scans)
        ys = []
        for i, order in enumerate(self.scans):
            heads = slice(i * group, (i + 1) * group)
            o = self.op(*(scan(t[:, :, :, heads], order).transpose(1, 2) for t in tensors), heads=heads)
            ys.append(unscan(o.transpose(1, 2), order, (h, w)))  # [B, h, w, group, K]
        y = self.out_norm(torch.cat(ys, dim=3).reshape(-1, D)).reshape(B, h, w, D)
        return x + self.out(y * gate)
