"""WKV-6: the RWKV-6 linear recurrence with data-dependent, per-channel decay.

Layout follows fla (``[B, H, T, K]``); ``w`` is the *log* decay (``w <= 0``), ``u`` the
bonus of the current token (``[H, K]``)::

    o_t = (scale * r_t) @ (S_{t-1} + diag(u) k_t^T v_t)
    S_t = diag(exp(w_t)) S_{t-1} + k_t^T v_t

``wkv6_chunk`` is the training/encoding form (matrix products inside chunks, a loop over
chunks only); ``wkv6_recurrent`` is the step form kept for sequential decoding and as the
reference of the chunked form.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .dispatch import to_fla, use_fla


def wkv6(r, k, v, w, u, scale: float = 1.0, initial_state=None, output_final_state: bool = False,
         chunk_size: int = 16):
    """WKV-6 for training and encoding: fla's ``chunk_rwkv6`` on CUDA, else :func:`wkv6_chunk`."""
    if use_fla(r):
        from fla.ops.rwkv6 import chunk_rwkv6
        o, state = chunk_rwkv6(*to_fla(r, k, v, w), u, scale=scale, initial_state=initial_state,
                               output_final_state=output_final_state)
        return o.transpose(1, 2), state
    return wkv6_chunk(r, k, v, w, u, scale, initial_state, output_final_state, chunk_size)


def wkv6_recurrent(r, k, v, w, u, scale: float = 1.0, initial_state=None,
                   output_final_state: bool = False):
    """Step-by-step recurrence (one Python step per token)."""
    B, H, T, K = r.shape
    V = v.shape[-1]
    state = r.new_zeros(B, H, K, V) if initial_state is None else initial_state
    outs = []
    for t in range(T):
        state, o = wkv6_step(r[:, :, t], k[:, :, t], v[:, :, t], w[:, :, t], u, state, scale)
        outs.append(o)
    o = torch.stack(outs, dim=2) if outs else v.new_zeros(B, H, 0, V)
    return o, (state if output_final_state else None)


def wkv6_step(r, k, v, w, u, state, scale: float = 1.0):
    """One token: ``r, k, w: [B,H,K]``, ``v: [B,H,V]``, ``state: [B,H,K,V]`` → (state, o)."""
    kv = k.unsqueeze(-1) * v.unsqueeze(-2)
    o = torch.einsum("bhk,bhkv->bhv", r * scale, state + u.unsqueeze(-1) * kv)
    return state * w.exp().unsqueeze(-1) + kv, o


MAX_CHUNK_DECAY = 60.0  # exp(±60) stays well inside fp32's range


def wkv6_chunk(r, k, v, w, u, scale: float = 1.0, initial_state=None,
               output_final_state: bool = False, chunk_size: int = 16):
    """Chunked parallel form: matrix products inside chunks, a loop over chunks only.

    Inside a chunk, ``exp(A_{t-1} - A_s)`` is factored into ``exp(A_{t-1}) · exp(-A_s)``
    (``A`` the cumulative log decay from the chunk start), which is exact as long as
    ``|A|`` stays within ``MAX_CHUNK_DECAY``; the chunk is shortened (to a power of two)
    when the strongest decay in the input would break that bound.
    """
    B, H, T, K = r.shape
    V = v.shape[-1]
    if T == 0:
        return v.new_zeros(B, H, 0, V), (initial_state if output_final_state else None)
    strongest = float(-w.detach().min()) if w.numel() else 0.0
    C = chunk_size
    while C > 1 and C * strongest > MAX_CHUNK_DECAY:
        C //= 2
    pad = (-T) % C
    if pad:  # zero keys/queries and zero log-decay leave the state untouched
        r, k, v, w = (F.pad(x, (0, 0, 0, pad)) for x in (r, k, v, w))
    N = (T + pad) // C
    r, k, v, w = (x.reshape(B, H, N, C, x.shape[-1]) for x in (r, k, v, w))
    A = w.cumsum(dim=-2)                       # inclusive cumulative log decay
    r_in = r * ((A - w).exp() * scale)         # r_t · exp(A_{t-1}): reads the chunk's start
    bonus = ((r * scale) * u[None, :, None, None, :] * k).sum(-1, keepdim=True)
    o = bonus * v
    if C > 1:                                  # pairs s < t inside a chunk
        k_in = k * (-A).exp()                  # k_s · exp(-A_s), bounded by exp(MAX_CHUNK_DECAY)
        strict = torch.ones(C, C, dtype=torch.bool, device=r.device).tril(-1)
        o = o + (r_in @ k_in.transpose(-1, -2)).masked_fill(~strict, 0.0) @ v

    last = A[..., -1:, :]
    k_end = k * (last - A).exp()               # k_s · exp(A_last - A_s): into the chunk's end
    decay = last.squeeze(-2).exp().unsqueeze(-1)  # [B,H,N,K,1]
    state = r.new_zeros(B, H, K, V) if initial_state is None else initial_state
    inter = []
    for n in range(N):
        inter.append(r_in[:, :, n] @ state)
        state = decay[:, :, n] * state + k_end[:, :, n].transpose(-1, -2) @ v[:, :, n]
    o = o + torch.stack(inter, dim=2)
    o = o.reshape(B, H, N * C, V)[:, :, :T]
    return o, (state if output_final_state else None)
