"""RCM, the RWKV compression model: a window-major autoregressive entropy model whose
context model is a causal RWKV-6 stack.

Training and encoding run the RWKV-6 time mixing the ``rwkv6`` global mixer runs
(:class:`mrtlab.mixers.rwkv6.RWKV6TimeMix`, the chunked WKV-6). Decoding steps through the
windows with the recurrence and its O(1) state, written in float64 NumPy:
a step is a few dozen operations on vectors of a few hundred numbers, where PyTorch's
per-operation overhead (~5 µs) would cost three times more than the arithmetic.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..mixers.rwkv6 import RWKV6TimeMix
from ..registry import register
from .autoregressive import WindowAutoregressive, layer_norm


def shift(z: torch.Tensor) -> torch.Tensor:
    """``[B, T, D]`` → the previous token's ``z`` (zeros before the first)."""
    return F.pad(z, (0, 0, 1, 0))[:, :-1]


class RWKVBlock(nn.Module, RWKV6TimeMix):
    """Causal RWKV-6 block: time mixing (:class:`~mrtlab.mixers.rwkv6.RWKV6TimeMix`) then
    channel mixing, each reading the previous token through a learned token shift (a
    projection of ``[z_t, z_{t-1}]``).

    Args:
        dim: channels of a token.
        heads: heads of the time mixing; must divide ``dim`` (default 4).
        decay_rank: rank of the decay's low-rank projection (default 16).
        ffn_mult: hidden channels of the channel mixing per channel (default 2).
    """

    def __init__(self, dim: int, heads: int = 4, decay_rank: int = 16, ffn_mult: int = 2):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.init_time_mix(2 * dim, dim, heads, decay_rank)
        self.group_norm = nn.GroupNorm(heads, dim)
        self.out = nn.Linear(dim, dim, bias=False)
        self.key = nn.Linear(2 * dim, ffn_mult * dim, bias=False)
        self.value = nn.Linear(ffn_mult * dim, dim, bias=False)
        self.receptance = nn.Linear(2 * dim, dim, bias=False)

    def _time_out(self, o, g):
        shape = o.shape
        o = self.group_norm(o.reshape(-1, shape[-1])).reshape(shape)
        return self.out(o * F.silu(g))

    def _channel(self, zz):
        return torch.sigmoid(self.receptance(zz)) * self.value(torch.relu(self.key(zz)) ** 2)

    def forward(self, x):  # [B, T, D]
        z = self.ln1(x)
        tensors, g = self.time_mix_inputs(torch.cat([z, shift(z)], -1))   # [B, T, H, K]
        o = self.time_mix(*(t.transpose(1, 2) for t in tensors))         # [B, H, T, K]
        x = x + self._time_out(o.transpose(1, 2).flatten(2), g)
        z = self.ln2(x)
        return x + self._channel(torch.cat([z, shift(z)], -1))

    def initial_state(self, length: int):
        D, H, K = self.heads * self.head_dim, self.heads, self.head_dim
        return np.zeros(D), np.zeros((H, K, K)), np.zeros(D)

    def step(self, x: np.ndarray, state, w: dict):
        """One token ``x [D]`` in NumPy with the block's weights ``w`` (float64 arrays);
        state: (ln1 output of the last token, WKV state ``[H, K, V]``, ln2 output of it)."""
        z1_prev, wkv_state, z2_prev = state
        H, K = self.heads, self.head_dim
        z1 = layer_norm(x, w["ln1.weight"], w["ln1.bias"])
        zz = np.concatenate([z1, z1_prev])
        D = H * K
        rkvg = w["rkvg.weight"] @ zz
        r, k, v, g = rkvg[:D], rkvg[D:2 * D], rkvg[2 * D:3 * D], rkvg[3 * D:]
        logw = -np.exp(w["w0"] + w["decay_b.weight"] @ np.tanh(w["decay_a.weight"] @ zz))
        r, k, v = (t.reshape(H, K) for t in (r, k, v))
        kv = k[:, :, None] * v[:, None, :]
        o = ((r / math.sqrt(K))[:, None, :] @ (wkv_state + w["u"][:, :, None] * kv))[:, 0]
        wkv_state = wkv_state * np.exp(logw).reshape(H, K, 1) + kv
        o = o - o.sum(-1, keepdims=True) / K                    # GroupNorm, one group a head
        o = (o / np.sqrt((o * o).sum(-1, keepdims=True) / K + self.group_norm.eps)).reshape(-1)
        o = o * w["group_norm.weight"] + w["group_norm.bias"]
        x = x + w["out.weight"] @ (o * g / (1 + np.exp(-g)))
        z2 = layer_norm(x, w["ln2.weight"], w["ln2.bias"])
        zz = np.concatenate([z2, z2_prev])
        ffn = w["value.weight"] @ np.maximum(w["key.weight"] @ zz, 0) ** 2
        return x + ffn / (1 + np.exp(-(w["receptance.weight"] @ zz))), (z1, wkv_state, z2)


@register("rcm")
class RCM(WindowAutoregressive):
    """The RWKV Compression Model: a causal RWKV-6 over the windows (O(1) state per decoded
    window) conditions every token on all earlier ones; :mod:`mrtlab.entropy.autoregressive`
    gives the sequence and the coding order.

    Args:
        levels: symbols per channel (the quantizer's ``levels``); C = len(levels).
        dim: width of the RWKV context model and of the head.
        layers: RWKV-6 blocks (time mixing, then channel mixing) over the windows.
        heads: heads of each block's time mixing; must divide ``dim``.
        max_slots: the most latent tokens per window it codes (L of the model).
        channel_groups: units a token's C channels are coded in, one after another (must
            divide C); 1: a token's channels at once.
        distribution: ``categorical`` (a free table per channel), ``gaussian`` or
            ``logistic`` (discretised, two parameters per channel).

    Symbols ``[B, windows·slots, C]`` → bits ``[B, windows·slots, C]`` (``forward``).
    """

    def __init__(self, levels: list[int], dim: int = 64, layers: int = 2, heads: int = 4,
                 max_slots: int = 8, channel_groups: int = 1, distribution: str = "categorical"):
        super().__init__(levels, dim, max_slots, channel_groups, distribution)
        self.set_context(RWKVBlock(dim, heads) for _ in range(layers))
