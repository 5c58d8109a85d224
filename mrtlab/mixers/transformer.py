"""The Transformer block: pre-norm softmax attention, then a GELU MLP.

It is the one attention block of mrtlab: the local mixer inside each window (registered as
``transformer``), the ``attention`` global mixer (:mod:`mrtlab.mixers.attention`: no MLP,
2-D positions) and the causal context model of ``transformer_ar``
(:mod:`mrtlab.entropy.transformer_ar`, which adds a NumPy step) are all this class.
"""
from __future__ import annotations

import torch
from torch import nn

from ..ops.attention import multi_head_attention
from ..registry import register
from .base import LocalMixer


@register("transformer")
class TransformerBlock(LocalMixer):
    """``x + proj(attention(qkv(norm1(x) + pos)))``, then ``x + mlp(norm2(x))``, over ``[B, T, dim]``.

    Args:
        dim: channels of a token.
        heads: attention heads; must divide ``dim`` (default 4).
        mlp_ratio: hidden channels of the MLP per channel; 0 leaves the MLP out (default 4.0).
        causal: token ``t`` attends to tokens ``<= t`` only (default False).
        gelu: the MLP's GELU, ``"none"`` (exact, default) or ``"tanh"`` (approximate).
    """

    def __init__(self, dim: int, heads: int = 4, mlp_ratio: float = 4.0, causal: bool = False,
                 gelu: str = "none"):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads, self.causal = heads, causal
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        hidden = int(dim * mlp_ratio)
        self.norm2 = self.mlp = None
        if hidden:
            self.norm2 = nn.LayerNorm(dim)
            self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate=gelu),
                                     nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
        """``x: [B, T, dim]``, ``pos``: a position embedding ``[T, dim]`` added after the norm."""
        z = self.norm1(x) if pos is None else self.norm1(x) + pos
        x = x + self.proj(multi_head_attention(self.qkv(z), self.heads, self.causal))
        return x if self.mlp is None else x + self.mlp(self.norm2(x))
