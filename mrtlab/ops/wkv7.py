"""WKV-7: the RWKV-7 recurrence, a generalized delta rule with a diagonal-plus-low-rank transition.

Layout follows fla's reference (``[B, H, T, K]``); ``w`` is the *log* decay (``w <= 0``).
The state is key-major, ``S: [B, H, K, V]``, as fla's ``initial_state`` / ``final_state``
(the official RWKV-7 kernels keep its transpose, ``[V, K]``)::

    S_t = diag(exp(w_t)) S_{t-1} + b_t (a_t^T S_{t-1}) + k_t v_t^T
    o_t = S_t^T (scale * r_t)

In RWKV-7, ``a = -kk`` and ``b = kk * iclr`` (``kk`` the L2-normalised key, ``iclr`` in
``[0, 1]``), which keeps ``diag(exp(w)) + b a^T`` contractive. These are exactly the semantics
of fla's ``chunk_rwkv7`` (its dplr op with ``q=r, gk=w``), the reference
``dplr_recurrence`` up to its fixed ``K ** -0.5`` query scale.

``wkv7`` dispatches to fla on CUDA, else to ``wkv7_chunk``, the chunked form (matrix
products inside chunks, a loop over chunks only). The naive form, one step per token, is
:func:`mrtlab.ops.naive.wkv7_recurrent`, the tests' reference.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .dispatch import same_dtype, to_fla, use_fla
from .utils import default_scale, over_segments


def wkv7(r, w, k, v, a, b, scale: float | None = None, initial_state=None,
         output_final_state: bool = False, chunk_size: int = 64):
    """WKV-7 for training and encoding: fla's ``chunk_rwkv7`` on CUDA, else :func:`wkv7_chunk`.

    Args:
        r, k: receptance and keys ``[B, H, T, K]``.
        w: log decay ``[B, H, T, K]``, ``<= 0``.
        v: values ``[B, H, T, V]``.
        a, b: the low-rank transition ``[B, H, T, K]`` (RWKV-7: ``-kk`` and ``kk * iclr``).
        scale: receptance scale; ``None`` (default) is ``1/sqrt(K)`` (RWKV-7 uses 1.0).
        initial_state: state ``[B, H, K, V]`` before the first token; ``None`` (default) is zeros.
        output_final_state: also return the state after the last token (default False).
        chunk_size: tokens per chunk of the PyTorch form (default 64); fla picks its own.

    Returns:
        ``o: [B, H, T, V]`` and the final state ``[B, H, K, V]`` (``None`` unless
        ``output_final_state``).
    """
    scale = default_scale(scale, r.shape[-1])
    if use_fla(r):
        from fla.ops.rwkv7 import chunk_rwkv7
        r_, k_, v_, a_, b_ = to_fla(*same_dtype(r, k, v, a, b))
        w_, = to_fla(w)
        o, state = chunk_rwkv7(r=r_, w=w_, k=k_, v=v_, a=a_, b=b_, scale=scale,
                               initial_state=initial_state,
                               output_final_state=output_final_state)
        return o.transpose(1, 2), state
    return wkv7_chunk(r, w, k, v, a, b, scale, initial_state, output_final_state, chunk_size)


MAX_CHUNK_DECAY = 60.0  # exp(±30) factors, pair products within exp(60): well inside fp32
LOG_TINY = -86.0        # decays below exp(-86) ~ 4e-38 (near fp32's smallest normal) flush to 0


def _flushed_exp(x):
    """``exp(min(x, 0))``, with results below ``exp(LOG_TINY)`` flushed to zero, as on GPUs:
    on CPUs, denormals and the exp of large negatives take a slow path."""
    return F.threshold(x.clamp(LOG_TINY - 1.0, 0.0).exp(), math.exp(LOG_TINY), 0.0)


def wkv7_chunk(r, w, k, v, a, b, scale: float | None = None, initial_state=None,
               output_final_state: bool = False, chunk_size: int = 64):
    """Chunked parallel form of :func:`wkv7` (same arguments and returns).

    Inside a chunk, the reads ``u_t = S_{t-1}^T a_t`` of the low-rank term satisfy a unit
    lower-triangular system (the WY / UT form of the product of DPLR transitions), solved for
    all chunks at once; the chunk-to-chunk state map ``S -> M S + H`` is then one matrix
    product per chunk.

    Decays are prefix sums ``G`` of ``w`` in float64, so their differences lose nothing to
    cancellation, even after very strong decays. The decay between positions ``s <= t`` of a
    chunk, ``exp(G_t - G_s)``, is factored around the chunk's middle into two matrix-product
    operands when the chunk's total decay stays within ``MAX_CHUNK_DECAY`` (always, for
    RWKV-7's ``w >= -0.61`` and chunks up to 64). Otherwise it is taken pairwise, as a
    ``[C, C, K]`` tensor of ``exp(<= 0)`` (about ``2 C`` times the input's memory) with
    underflow flushed to zero: nothing can overflow for any decay, and the chunk keeps its
    size, where shrinking it would end in a loop over tokens. Chunks are processed in
    cache-sized segments, the state carried between them
    (:func:`~mrtlab.ops.utils.over_segments`).
    """
    C = max(1, min(chunk_size, r.shape[2]))
    return over_segments(_wkv7_chunks, (r, w, k, v, a, b), C, default_scale(scale, r.shape[-1]),
                         v.shape[-1], initial_state, output_final_state)


def _wkv7_chunks(r, w, k, v, a, b, scale: float, state, C: int):
    """:func:`wkv7_chunk` on a whole number of chunks, from ``state`` → (o, state)."""
    B, H, T, K = r.shape
    V = v.shape[-1]
    N = T // C
    r, w, k, v, a, b = (x.reshape(B * H * N, C, x.shape[-1])       # Z = B * H * N chunks
                        for x in (r * scale, w, k, v, a, b))
    w64 = w.double()
    G = w64.cumsum(-2)                                  # sum_{j<=t} w_j, float64
    G_last = G[:, -1:]

    # Row t of A reads S_t: for r directly; the low-rank reads a_t^T S_{t-1} use a shifted
    # up by one row, moved back down below (strictly causal, s < t).
    x = torch.stack((r, F.pad(a[:, 1:], (0, 0, 0, 1))), dim=1)     # [Z, 2, C, K]
    y = torch.stack((k, b), dim=1)                                  # [Z, 2, C, K]
    causal = torch.ones(C, C, dtype=torch.bool, device=r.device).tril()
    factored = float(-G_last.detach().min()) <= MAX_CHUNK_DECAY

    def exp(x):  # strong decays: flushed (all x <= 0 then); else plain, for the factored products
        x = x.to(r.dtype)
        return x.exp() if factored else _flushed_exp(x)

    if factored:
        mid = G_last / 2
        xg = (x * exp(G - mid).unsqueeze(1)).flatten(1, 2)
        yg = (y * exp(mid - G).unsqueeze(1)).flatten(1, 2)
        A = (xg @ yg.transpose(-1, -2)).view(-1, 2, C, 2, C)
    else:
        # exp(G_t - G_s), with G = hi + lo split into two float32 parts: as exact as float64
        # but cheaper on [C, C, K]. Clamped to <= 0: s > t then gives 1, masked below.
        hi = G.to(r.dtype)
        lo = (G - hi).to(r.dtype)
        D = (hi.unsqueeze(-2) - hi.unsqueeze(-3)).add_(lo.unsqueeze(-2)).sub_(lo.unsqueeze(-3))
        D = _flushed_exp(D)                                         # [Z, C(t), C(s), K]
        Dy = (D.unsqueeze(-3) * y.unsqueeze(1)).flatten(2, 3)      # [Z, C(t), 2*C(s), K]
        A = (x.transpose(1, 2) @ Dy.transpose(-1, -2)).view(-1, C, 2, 2, C).transpose(1, 2)
    A = A.masked_fill(~causal[:, None], 0.0)            # [Z, 2 (r, a), C (t), 2 (k, b), C (s)]
    A_r = A[:, 0].reshape(-1, C, 2 * C)                             # [A_rk | A_rb], s <= t
    A_a = F.pad(A[:, 1, :-1], (0, 0, 0, 0, 1, 0))                   # s < t
    A_ak, A_ab = A_a[:, :, 0], A_a[:, :, 1]

    # (I - A_ab) [U~ | W~] = [A_ak V | a * exp(G_{t-1})]; then u_t = U~_t + W~_t S_chunk_start.
    rhs = torch.cat((A_ak @ v, a * exp(G - w64)), dim=-1)
    UW = _unit_lower_inverse(A_ab) @ rhs
    U, W = UW[..., :V], UW[..., V:]
    vu = torch.cat((v, U), dim=1)                    # the values of the keys [k; b]

    o_in = A_r @ vu                                  # all but the chunk-start state
    r_start = torch.baddbmm(r * exp(G), A_r[:, :, C:], W)          # reads the chunk-start state
    kb_end = (y * exp(G_last - G).unsqueeze(1)).flatten(1, 2).transpose(-1, -2)  # into the end
    Hs = kb_end @ vu                                                # [Z, K, V]
    M = kb_end[:, :, C:] @ W                                        # [Z, K, K]
    M.diagonal(dim1=-2, dim2=-1).add_(exp(G_last[:, 0]))

    M, Hs, o_in, r_start = (t.unflatten(0, (B * H, N)) for t in (M, Hs, o_in, r_start))
    state = state.reshape(B * H, K, V)
    outs = []
    for n in range(N):
        outs.append(torch.baddbmm(o_in[:, n], r_start[:, n], state))
        state = torch.baddbmm(Hs[:, n], M[:, n], state)
    return torch.stack(outs, dim=1).view(B, H, T, V), state.view(B, H, K, V)


def _unit_lower_inverse(L):
    """``(I - L)^{-1}`` for strictly lower-triangular ``L: [..., C, C]``.

    Block forward substitution that doubles the solved block size (``log2 C`` batched matrix
    products): as stable as ``solve_triangular`` on these well-conditioned systems, but a
    few large products instead of one small LAPACK call per chunk, which is several times
    faster on CPU and does not stall when the cores are oversubscribed.
    """
    C = L.shape[-1]
    P = 1 << (C - 1).bit_length()
    if P != C:
        L = F.pad(L, (0, P - C, 0, P - C))
    X = L.new_ones(*L.shape[:-2], P, 1, 1)      # inverses of the diagonal blocks of size m
    m = 1
    while m < P:
        nb = P // (2 * m)
        Ld = L.reshape(*L.shape[:-2], nb, 2 * m, nb, 2 * m).diagonal(dim1=-4, dim2=-2)
        Ld = Ld.movedim(-1, -3)                  # the diagonal blocks of size 2m
        X11, X22 = X[..., 0::2, :, :], X[..., 1::2, :, :]
        X21 = X22 @ Ld[..., m:, :m] @ X11
        X = torch.cat((torch.cat((X11, torch.zeros_like(X11)), -1),
                       torch.cat((X21, X22), -1)), -2)
        m *= 2
    return X[..., 0, :C, :C]
