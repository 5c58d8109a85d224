"""SSD: Mamba-2's state space duality, linear attention with a scalar, data-dependent decay.

Layout follows fla (``[B, H, T, K]``); ``g: [B, H, T]`` is the *log* decay of each head
(``g <= 0``), the state ``S`` is ``[B, H, K, V]`` (fla's ``initial_state``/``final_state``)::

    S_t = exp(g_t) S_{t-1} + k_t^T v_t
    o_t = scale * q_t S_t

This is fla's ``simple_gla``; ``scale`` defaults to ``1/sqrt(K)`` as in fla. Mamba-2's SSD
layer (``h_t = exp(dt_t A) h_{t-1} + dt_t B_t^T x_t``, ``y_t = C_t h_t + D x_t``) maps to it
as ``q = C``, ``k = B`` (its groups repeated over heads), ``v = x · dt``, ``g = A · dt``,
``scale = 1.0``; the skip ``D x`` stays outside, and the state ``[K, V] = [d_state, headdim]``
is the transpose of mamba_ssm's ``ssm_state``.

``ssd`` dispatches to fla on CUDA, else to ``ssd_chunk``, the chunked form (matrix
products inside chunks, a loop over chunks only). The naive form, one step per token, is
:func:`mrtlab.ops.naive.ssd_recurrent`, the tests' reference.
"""
from __future__ import annotations

import torch

from .dispatch import same_dtype, to_fla, use_fla
from .utils import LOG2E, across_chunks, default_scale, over_segments


def ssd(q, k, v, g, scale: float | None = None, initial_state=None,
        output_final_state: bool = False, chunk_size: int = 64):
    """SSD for training and encoding: fla's ``chunk_simple_gla`` on CUDA, else :func:`ssd_chunk`.

    Args:
        q, k: queries and keys ``[B, H, T, K]`` (Mamba-2's C and B).
        v: values ``[B, H, T, V]``.
        g: log decay of each head ``[B, H, T]``, ``<= 0``.
        scale: query scale; ``None`` (default) is ``1/sqrt(K)`` (Mamba-2 uses 1.0).
        initial_state: state ``[B, H, K, V]`` before the first token; ``None`` (default) is zeros.
        output_final_state: also return the state after the last token (default False).
        chunk_size: tokens per chunk of the PyTorch form (default 64).

    Returns:
        ``o: [B, H, T, V]`` and the final state ``[B, H, K, V]`` (``None`` unless
        ``output_final_state``).
    """
    scale = default_scale(scale, q.shape[-1])
    if use_fla(q):
        from fla.ops.simple_gla import chunk_simple_gla
        q, k, v, g = to_fla(*same_dtype(q, k, v), g)
        o, state = chunk_simple_gla(q, k, v, g=g, scale=scale, initial_state=initial_state,
                                    output_final_state=output_final_state)
        return o.transpose(1, 2), state
    return ssd_chunk(q, k, v, g, scale, initial_state, output_final_state, chunk_size)


def ssd_chunk(q, k, v, g, scale: float | None = None, initial_state=None,
              output_final_state: bool = False, chunk_size: int = 64):
    """Chunked parallel form of :func:`ssd` (same arguments and returns).

    The decay between two tokens of a chunk is one scalar per head, ``exp(A_t - A_s)``
    (``A`` the cumulative log decay from the chunk start): a ``[C, C]`` matrix of segment
    sums ``g_{s+1} + ... + g_t``, zero above the diagonal (masked after the product), so
    ``exp`` never sees a positive number, whatever the decay. The segment sums are a masked
    cumulative sum down each column, not the difference ``A_t - A_s``: a sum of same-signed
    terms rounds relative to its own size, while the difference loses ``|A| · eps`` (``1e-5``
    of a gradient at strong decays). Chunks are processed in segments of about
    ``utils.SEGMENT_ELEMENTS`` per tensor, the state carried between them, so a
    long input costs the same per token as a short one.
    """
    T, K, V = q.shape[2], q.shape[-1], v.shape[-1]
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    scale = default_scale(scale, K)
    C = max(1, min(chunk_size, T))
    return over_segments(_ssd_chunks, (q, k, v, g), C, scale, V, initial_state,
                         output_final_state)


def _ssd_chunks(q, k, v, g, scale: float, state, C: int):
    """:func:`ssd_chunk` on a whole number of chunks, from ``state`` → (o, state)."""
    B, H, T = q.shape[:3]
    N = T // C
    q, k, v = (x.reshape(B, H, N, C, x.shape[-1]) for x in (q, k, v))
    g = g.reshape(B, H, N, C) * LOG2E                  # base 2: exp2 is the cheaper exp
    A = g.cumsum(-1)
    strict = torch.ones(C, C, dtype=torch.bool, device=q.device).tril(-1)
    segsum = g.unsqueeze(-1).expand(B, H, N, C, C).masked_fill(~strict, 0.0).cumsum(-2)
    decay = segsum.exp2()                              # [t, s]: exp(g_{s+1} + ... + g_t)
    o = ((q @ k.transpose(-1, -2)) * decay).tril_() @ v  # inside the chunk; scaled at the end

    # across chunks: q_t reads the state at the chunk's start through exp(A_t), k_s writes
    # into its end through exp(A_C - A_s), the last row of ``decay``
    Q = q * A.exp2().unsqueeze(-1)
    kv = (k * decay[..., -1, :].unsqueeze(-1)).transpose(-1, -2) @ v   # [B,H,N,K,V]
    total = A[..., -1].exp2()[..., None, None]         # [B,H,N,1,1]
    return across_chunks(o, Q, kv, total, state, scale)
