"""Softmax attention: xformers' memory-efficient kernel on CUDA when installed, else SDPA.

Its naive form is one line, ``softmax(q kᵀ · scale) v``; the tests write it out.
"""
from __future__ import annotations

import importlib.util
import os

import torch
import torch.nn.functional as F


def use_xformers(x: torch.Tensor) -> bool:
    return (x.is_cuda and not os.environ.get("MRTLAB_NO_XFORMERS")
            and importlib.util.find_spec("xformers") is not None)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
              scale: float | None = None) -> torch.Tensor:
    """Softmax attention ``softmax(q kᵀ · scale) v``.

    Args:
        q, k: queries and keys ``[B, H, T, K]``.
        v: values ``[B, H, T, V]``.
        causal: token ``t`` attends to tokens ``<= t`` only (default False).
        scale: query scale; ``None`` (default) is ``1/sqrt(K)``.

    Returns:
        ``o: [B, H, T, V]``.
    """
    if use_xformers(q):
        from xformers.ops import LowerTriangularMask, memory_efficient_attention
        o = memory_efficient_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                       attn_bias=LowerTriangularMask() if causal else None,
                                       scale=scale)
        return o.transpose(1, 2)
    if q.device.type == "cpu" and q.dtype == torch.bfloat16:
        # PyTorch's CPU flash-attention kernel runs its bf16 backward ~3× slower than its
        # fp32 one (many short windows: 0.165 s vs 0.049 s): attend in fp32 under bf16 autocast
        with torch.autocast("cpu", enabled=False):
            o = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=causal,
                                               scale=scale)
        return o.to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)


def multi_head_attention(qkv: torch.Tensor, heads: int, causal: bool = False) -> torch.Tensor:
    """:func:`attention` over ``heads`` heads of packed projections.

    Args:
        qkv: queries, keys and values side by side ``[B, T, 3·D]``, each split into
            ``heads`` heads of ``D / heads`` channels.
        heads: the number of heads.
        causal: token ``t`` attends to tokens ``<= t`` only (default False).

    Returns:
        ``o: [B, T, D]``, the heads side by side.
    """
    B, T, D3 = qkv.shape
    q, k, v = qkv.reshape(B, T, 3, heads, D3 // (3 * heads)).permute(2, 0, 3, 1, 4)
    return attention(q, k, v, causal).transpose(1, 2).reshape(B, T, D3 // 3)
