"""Transformer block inside each window (pre-norm, attention, GELU MLP)."""
from __future__ import annotations

from torch import nn

from ..ops.attention import multi_head_attention

from ..registry import register
from .base import LocalMixer


@register("transformer")
class TransformerBlock(LocalMixer):
    def __init__(self, dim: int, heads: int = 4, mlp_ratio: float = 4.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x):
        x = x + self.proj(multi_head_attention(self.qkv(self.norm1(x)), self.heads))
        return x + self.mlp(self.norm2(x))
