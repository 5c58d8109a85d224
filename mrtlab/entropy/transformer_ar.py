"""Causal-Transformer AR entropy model: the RCM's frame with attention as the context model.

The ablation partner of ``rcm``: same inputs, heads and coding order; the context over
windows is causal softmax attention (quadratic in training, a KV cache when decoding).
The step form is float64 NumPy, like the RCM's, for the same reason.
"""
from __future__ import annotations

import math

import numpy as np

from ..mixers.transformer import TransformerBlock
from ..registry import register
from .autoregressive import WindowAutoregressive, layer_norm

SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


def _gelu(x):
    """The tanh form of GELU, as ``nn.GELU(approximate="tanh")`` computes it."""
    return 0.5 * x * (1 + np.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)))


class CausalBlock(TransformerBlock):
    """The Transformer block, causal, with the tanh GELU (:func:`_gelu` in NumPy), plus its
    step form: one token in float64 NumPy against a KV cache."""

    def __init__(self, dim: int, heads: int = 4, mlp_ratio: int = 2):
        super().__init__(dim, heads, mlp_ratio, causal=True, gelu="tanh")

    def initial_state(self, length: int):
        K = self.proj.in_features // self.heads
        return np.zeros((self.heads, length, K)), np.zeros((self.heads, length, K)), 0

    def step(self, x: np.ndarray, state, w: dict):
        """Token ``x [D]``; state: keys and values ``[H, length, K]`` filled up to token ``t``."""
        keys, values, t = state
        H, K = keys.shape[0], keys.shape[2]
        q, k, v = np.split(w["qkv.weight"] @ layer_norm(x, w["norm1.weight"], w["norm1.bias"])
                           + w["qkv.bias"], 3)
        keys[:, t], values[:, t] = k.reshape(H, K), v.reshape(H, K)
        s = np.einsum("hk,htk->ht", q.reshape(H, K), keys[:, :t + 1]) / math.sqrt(K)
        a = np.exp(s - s.max(-1, keepdims=True))
        o = np.einsum("ht,htk->hk", a / a.sum(-1, keepdims=True), values[:, :t + 1]).reshape(-1)
        x = x + w["proj.weight"] @ o + w["proj.bias"]
        h = _gelu(w["mlp.0.weight"] @ layer_norm(x, w["norm2.weight"], w["norm2.bias"]) + w["mlp.0.bias"])
        return x + w["mlp.2.weight"] @ h + w["mlp.2.bias"], (keys, values, t + 1)


@register("transformer_ar")
class TransformerAR(WindowAutoregressive):
    """A causal Transformer over the windows (a KV cache when decoding), the RCM's ablation
    partner; :mod:`mrtlab.entropy.autoregressive` gives the sequence and the coding order.

    Args:
        levels: symbols per channel (the quantizer's ``levels``); C = len(levels).
        dim: width of the Transformer context model and of the head.
        layers: causal Transformer blocks over the windows.
        heads: attention heads of each block; must divide ``dim``.
        max_slots, channel_groups, distribution: as the RCM's (``entropy/rcm.py``).

    Symbols ``[B, windows·slots, C]`` → bits ``[B, windows·slots, C]`` (``forward``).
    """

    def __init__(self, levels: list[int], dim: int = 64, layers: int = 2, heads: int = 4,
                 max_slots: int = 8, channel_groups: int = 1, distribution: str = "categorical"):
        super().__init__(levels, dim, max_slots, channel_groups, distribution)
        self.set_context(CausalBlock(dim, heads) for _ in range(layers))
