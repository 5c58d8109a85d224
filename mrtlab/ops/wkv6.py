"""WKV-6: the RWKV-6 linear recurrence with data-dependent, per-channel decay.

Layout follows fla (``[B, H, T, K]``); ``w`` is the *log* decay (``w <= 0``), ``u`` the
bonus of the current token (``[H, K]``)::

    o_t = (scale * r_t) @ (S_{t-1} + diag(u) k_t^T v_t)
    S_t = diag(exp(w_t)) S_{t-1} + k_t^T v_t

``wkv6`` dispatches to fla on CUDA, else to ``wkv6_chunk``, the chunked form (GLA's
chunked form in its exclusive variant, which reads the state before the current token,
plus the bonus). The naive form, one step per token, is
:func:`mrtlab.ops.naive.wkv6_recurrent`, the tests' reference; the codec's decoder steps
with the RCM's own NumPy WKV-6 (:mod:`mrtlab.entropy.rcm`).
"""
from __future__ import annotations

import torch

from .dispatch import same_dtype, to_fla, use_fla
from .gla import gla_chunk
from .utils import default_scale


def wkv6(r, k, v, w, u, scale: float | None = None, initial_state=None,
         output_final_state: bool = False, chunk_size: int = 64):
    """WKV-6 for training and encoding: fla's ``chunk_rwkv6`` on CUDA, else :func:`wkv6_chunk`.

    Args:
        r, k: receptance and keys ``[B, H, T, K]``.
        v: values ``[B, H, T, V]``.
        w: log decay ``[B, H, T, K]``, ``<= 0``.
        u: bonus of the current token ``[H, K]``.
        scale: receptance scale; ``None`` (default) is ``1/sqrt(K)``.
        initial_state: state ``[B, H, K, V]`` before the first token; ``None`` (default) is zeros.
        output_final_state: also return the state after the last token (default False).
        chunk_size: tokens per chunk of the PyTorch form, a power of two (default 64).

    Returns:
        ``o: [B, H, T, V]`` and the final state ``[B, H, K, V]`` (``None`` unless
        ``output_final_state``).
    """
    scale = default_scale(scale, r.shape[-1])
    if use_fla(r):
        from fla.ops.rwkv6 import chunk_rwkv6
        r, k, v = same_dtype(r, k, v)
        o, state = chunk_rwkv6(*to_fla(r, k, v, w), u, scale=scale, initial_state=initial_state,
                               output_final_state=output_final_state)
        return o.transpose(1, 2), state
    return wkv6_chunk(r, k, v, w, u, scale, initial_state, output_final_state, chunk_size)


def wkv6_chunk(r, k, v, w, u, scale: float | None = None, initial_state=None,
               output_final_state: bool = False, chunk_size: int = 64):
    """Chunked parallel form of :func:`wkv6` (same arguments and returns), through the GLA op.

    WKV-6 reads the state *before* the current token, with GLA's state update: its output
    is GLA's exclusive form (:func:`gla_chunk` with ``exclusive=True``) plus the bonus of
    the current token. GLA's chunked form is stable for any decay.
    """
    scale = default_scale(scale, r.shape[-1])
    o, state = gla_chunk(r, k, v, w, scale, initial_state, output_final_state, chunk_size,
                         exclusive=True)
    bonus = (r * k) @ u.unsqueeze(-1)                   # r_t·diag(u)·k_t: [B, H, T, 1]
    return torch.addcmul(o, bonus, v, value=scale), state
