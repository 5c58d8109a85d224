"""WKV-6: the RWKV-6 linear recurrence with data-dependent, per-channel decay.

Layout follows fla (``[B, H, T, K]``); ``w`` is the *log* decay (``w <= 0``), ``u`` the
bonus of the current token (``[H, K]``)::

    o_t = (scale * r_t) @ (S_{t-1} + diag(u) k_t^T v_t)
    S_t = diag(exp(w_t)) S_{t-1} + k_t^T v_t

``wkv6_chunk`` is the training/encoding form (GLA's chunked form with shifted queries);
``wkv6_recurrent`` is the step form kept for sequential decoding and as the reference of
the chunked form.
"""
from __future__ import annotations

import torch

from .dispatch import step_through, to_fla, use_fla
from .gla import gla_chunk


def wkv6(r, k, v, w, u, scale: float = 1.0, initial_state=None, output_final_state: bool = False,
         chunk_size: int = 64):
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
    return step_through(lambda x, s: wkv6_step(*x, u, s, scale), (r, k, v, w), v.shape[-1],
                        initial_state, output_final_state)


def wkv6_step(r, k, v, w, u, state, scale: float = 1.0):
    """One token: ``r, k, w: [B,H,K]``, ``v: [B,H,V]``, ``state: [B,H,K,V]`` → (state, o)."""
    kv = k.unsqueeze(-1) * v.unsqueeze(-2)
    o = torch.einsum("bhk,bhkv->bhv", r * scale, state + u.unsqueeze(-1) * kv)
    return state * w.exp().unsqueeze(-1) + kv, o


def wkv6_chunk(r, k, v, w, u, scale: float = 1.0, initial_state=None,
               output_final_state: bool = False, chunk_size: int = 64):
    """Chunked parallel form, through the GLA op.

    WKV-6 reads the state *before* the current token, with GLA's state update: its output
    is GLA's exclusive form (:func:`gla_chunk` with ``exclusive=True``) plus the bonus of
    the current token. GLA's chunked form is stable for any decay.
    """
    o, state = gla_chunk(r, k, v, w, scale, initial_state, output_final_state, chunk_size,
                         exclusive=True)
    bonus = (r * k) @ u.unsqueeze(-1)                   # r_t·diag(u)·k_t: [B, H, T, 1]
    if output_final_state and state is None:
        state = r.new_zeros(*r.shape[:2], r.shape[-1], v.shape[-1])
    return torch.addcmul(o, bonus, v, value=scale), state
