"""GLA: gated linear attention (Yang et al. 2023) with a per-key-channel, data-dependent decay.

Layout follows fla (``[B, H, T, K]``); ``g`` is the *log* forget gate (``g <= 0``), the
state ``S`` is ``[B, H, K, V]`` (fla's ``initial_state``/``final_state``)::

    S_t = diag(exp(g_t)) S_{t-1} + k_t^T v_t
    o_t = scale * q_t S_t          (the current token included, no bonus term)

``gla`` dispatches to fla on CUDA, else to ``gla_chunk``, the chunked form (matrix
products inside chunks, a loop over chunks only). The naive form, one step per token, is
:func:`mrtlab.ops.naive.gla_recurrent`, the tests' reference.
"""
from __future__ import annotations

import functools

import torch

from .dispatch import same_dtype, to_fla, use_fla
from .utils import LOG2E, across_chunks, default_scale, over_segments


def gla(q, k, v, g, scale: float | None = None, initial_state=None,
        output_final_state: bool = False, chunk_size: int = 64):
    """GLA for training and encoding: fla's ``chunk_gla`` on CUDA, else :func:`gla_chunk`.

    Args:
        q, k: queries and keys ``[B, H, T, K]``.
        v: values ``[B, H, T, V]``.
        g: log forget gate ``[B, H, T, K]``, ``<= 0``.
        scale: query scale; ``None`` (default) is ``1/sqrt(K)``.
        initial_state: state ``[B, H, K, V]`` before the first token; ``None`` (default) is zeros.
        output_final_state: also return the state after the last token (default False).
        chunk_size: tokens per chunk of the PyTorch form, a power of two (default 64).

    Returns:
        ``o: [B, H, T, V]`` and the final state ``[B, H, K, V]`` (``None`` unless
        ``output_final_state``).
    """
    scale = default_scale(scale, q.shape[-1])
    if use_fla(q):
        from fla.ops.gla import chunk_gla
        q, k, v = same_dtype(q, k, v)
        o, state = chunk_gla(*to_fla(q, k, v, g), scale=scale, initial_state=initial_state,
                             output_final_state=output_final_state)
        return o.transpose(1, 2), state
    return gla_chunk(q, k, v, g, scale, initial_state, output_final_state, chunk_size)


MAX_LEAF_DECAY = 40.0  # exp(±40) and exp(-80) (the gradient of k / P) stay normal fp32 numbers


def gla_chunk(q, k, v, g, scale: float | None = None, initial_state=None,
              output_final_state: bool = False, chunk_size: int = 64, exclusive: bool = False):
    """Chunked parallel form of :func:`gla` (same arguments and returns), plus ``exclusive``.

    Inside a chunk, ``exp(A_t - A_s)`` (``A`` the cumulative log decay) is computed two ways:

    * in *leaf* blocks whose total decay stays within ``MAX_LEAF_DECAY`` (checked on the
      input), factored as ``exp(A_t - A_0) · exp(A_0 - A_s)``: one masked matrix product
      per block;
    * between leaves, by halving: the queries of each second half meet the keys of the first
      half through the boundary ``b`` between them, ``exp(A_t - A_b) · exp(A_b - A_s)``, two
      factors ``<= 1``: one matrix product per block, ``log2(chunk / leaf)`` levels.

    Weak decays give one leaf per chunk (no halving); strong ones shrink the leaves, never the
    chunk, so the loop stays over chunks and the result stays exact and stable for any
    ``g <= 0``. The factors are products of ``exp`` of sums of gates (never a difference of
    cumulative sums), so their rounding is relative to their own size.

    Chunks are processed in segments of about ``utils.SEGMENT_ELEMENTS`` per tensor, the state
    carried between them (:func:`~mrtlab.ops.utils.over_segments`): a long input then costs
    the same per token as a short one (no cache misses, no page faults of huge temporaries).

    ``exclusive``: ``o_t = scale * q_t S_{t-1}``, the state *before* token t (WKV-6 reads
    it so): the queries take the decay up to ``t-1`` and the diagonal is left out.
    """
    T, K, V = q.shape[2], q.shape[-1], v.shape[-1]
    if chunk_size < 1 or chunk_size & (chunk_size - 1):
        raise ValueError(f"chunk_size must be a power of two, got {chunk_size}")
    scale = default_scale(scale, K)
    C = min(chunk_size, 1 << (T - 1).bit_length())  # a short input is not padded to a long chunk
    chunks = functools.partial(_gla_chunks, exclusive=exclusive)
    return over_segments(chunks, (q, k, v, g), C, scale, V, initial_state, output_final_state)


def _gla_chunks(q, k, v, g, scale: float, state, C: int, exclusive: bool = False):
    """:func:`gla_chunk` on a whole number of chunks, from ``state`` → (o, state)."""
    B, H, T, K = q.shape
    V = v.shape[-1]
    N = T // C
    g = g * LOG2E                                      # base 2: exp2 is the cheaper exp
    A = g.reshape(B, H, N, C, K).cumsum(-2)            # usually one leaf per chunk
    bound = MAX_LEAF_DECAY * LOG2E
    L = C if float(A.detach()[..., -1, :].min()) >= -bound else _leaf_size(g, C // 2, bound)

    # leaves: Q = q_t exp(A_t - A_0), K = k_s exp(A_L - A_s), D = exp(A_L - A_0); the scale
    # is applied once, at the end
    q, k, v, g = (x.reshape(B, H, N, C // L, L, x.shape[-1]) for x in (q, k, v, g))
    if L == 1:
        o = v * 0 if exclusive else (q * k).sum(-1, keepdim=True) * v
        D = g.exp2()
        Q, Kf = (q, k) if exclusive else (q * D, k)
    else:
        cum = A.unsqueeze(3) if L == C else g.cumsum(-2)
        P = cum.exp2()                                 # >= exp(-MAX_LEAF_DECAY)
        Q, kl = q * ((cum - g).exp2() if exclusive else P), k / P
        o = (Q @ kl.transpose(-1, -2)).tril_(-1 if exclusive else 0) @ v
        D = P[..., -1:, :]
        Kf = kl * D
    o = o.reshape(B, H, N, C, V)
    Q, Kf, v = (x.reshape(B, H, N, C, x.shape[-1]) for x in (Q, Kf, v))

    m = L
    while m < C:                                       # blocks of 2m = [keys | queries]
        nb = C // (2 * m)
        Qb, Kb = Q.view(B, H, N, nb, 2, m, K), Kf.view(B, H, N, nb, 2, m, K)
        Db = D.view(B, H, N, nb, 2, 1, K)
        qb, kb = Qb[..., 1, :, :], Kb[..., 0, :, :]
        vb = v.reshape(B, H, N, nb, 2, m, V)[..., 0, :, :]
        ob = o.view(B, H, N, nb, 2, m, V)[..., 1, :, :]
        if m == 1:
            ob += (qb * kb).sum(-1, keepdim=True) * vb
        elif m * (K + V) <= 2 * K * V:
            ob += (qb @ kb.transpose(-1, -2)) @ vb
        else:
            ob += qb @ (kb.transpose(-1, -2) @ vb)
        # merge the halves: queries of the second half now start at the first half's start,
        # keys of the first half now end at the second half's end
        one = torch.ones_like(Db[..., :1, :, :])
        Q = (Qb * torch.cat([one, Db[..., :1, :, :]], dim=-3)).view(B, H, N, C, K)
        Kf = (Kb * torch.cat([Db[..., 1:, :, :], one], dim=-3)).view(B, H, N, C, K)
        D = Db[..., 0, :, :] * Db[..., 1, :, :]
        m *= 2

    # across chunks: Q reads the state at the chunk's start, K writes into its end
    kv = Kf.transpose(-1, -2) @ v                      # [B,H,N,K,V]
    decay = D.reshape(B, H, N, K, 1)
    return across_chunks(o, Q, kv, decay, state, scale)


def _leaf_size(g, C: int, bound: float) -> int:
    """The longest power-of-two block (up to ``C``) whose total decay stays within ``bound``."""
    with torch.no_grad():
        s, L = g.detach().flatten(0, -3), 1            # [..., T, K]
        while L < C:
            s = s.unflatten(-2, (-1, 2)).sum(-2)
            if float(s.min()) < -bound:
                break
            L *= 2
    return L
