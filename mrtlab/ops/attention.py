"""Softmax attention: xformers' memory-efficient kernel on CUDA when installed, else SDPA."""
from __future__ import annotations

import importlib.util
import os

import torch
import torch.nn.functional as F


def use_xformers(x: torch.Tensor) -> bool:
    return (x.is_cuda and not os.environ.get("MRTLAB_NO_XFORMERS")
            and importlib.util.find_spec("xformers") is not None)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False) -> torch.Tensor:
    """Attention over ``[B, H, T, K]`` with scale ``1/sqrt(K)``; returns ``[B, H, T, V]``.
    ``causal``: token ``t`` attends to tokens ``≤ t`` only."""
    if use_xformers(q):
        from xformers.ops import LowerTriangularMask, memory_efficient_attention
        o = memory_efficient_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                       attn_bias=LowerTriangularMask() if causal else None)
        return o.transpose(1, 2)
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def multi_head_attention(qkv: torch.Tensor, heads: int, causal: bool = False) -> torch.Tensor:
    """Packed projections ``[B, T, 3·D]`` → attention output ``[B, T, D]`` over ``heads`` heads."""
    B, T, D3 = qkv.shape
    q, k, v = qkv.reshape(B, T, 3, heads, D3 // (3 * heads)).permute(2, 0, 3, 1, 4)
    return attention(q, k, v, causal).transpose(1, 2).reshape(B, T, D3 // 3)
