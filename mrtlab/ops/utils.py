"""What the chunked ops share: the base-2 constant, the scale default and the loop that
carries the state over chunks."""
from __future__ import annotations

import torch
import torch.nn.functional as F

LOG2E = 1.4426950408889634  # log2(e): exp(x) = exp2(x · LOG2E), and exp2 is the cheaper exp

SEGMENT_ELEMENTS = 1 << 18  # per [B, H, segment, K] tensor: ~1 MB in fp32, cache-sized


def default_scale(scale: float | None, K: int) -> float:
    """Every op's query scale: ``None`` → ``1/sqrt(K)``, as in fla."""
    return K ** -0.5 if scale is None else scale


def start_state(x: torch.Tensor, value_dim: int, initial_state=None) -> torch.Tensor:
    """The state ``[B, H, K, V]`` an op starts from (zeros unless given), for ``x: [B, H, T, K]``."""
    if initial_state is not None:
        return initial_state
    return x.new_zeros(*x.shape[:2], x.shape[-1], value_dim)


def over_segments(chunks, seqs, C: int, scale: float, value_dim: int, initial_state=None,
                  output_final_state: bool = False):
    """The chunk-carry loop of every chunked op.

    Pads ``seqs`` (``[B, H, T, ...]``, the first one ``[B, H, T, K]``) to whole chunks of
    ``C`` with zeros (zero inputs and zero log-decay leave the state untouched) and runs
    ``chunks(*segment, scale, state, C) → (o, state)`` over cache-sized segments of whole
    chunks, carrying the state ``[B, H, K, V]``: a long input then costs the same per token
    as a short one. Returns ``o: [B, H, T, V]`` and the final state (the initial or zero
    state for ``T = 0``) when ``output_final_state``, else ``None``.
    """
    B, H, T, K = seqs[0].shape
    state = start_state(seqs[0], value_dim, initial_state)
    if T == 0:
        return seqs[0].new_zeros(B, H, 0, value_dim), (state if output_final_state else None)
    pad = (-T) % C
    if pad:
        seqs = [F.pad(x, (0, 0) * (x.dim() - 3) + (0, pad)) for x in seqs]
    seg = C * max(1, SEGMENT_ELEMENTS // (B * H * max(K, value_dim) * C))
    outs = []
    for x in zip(*(t.split(seg, dim=2) for t in seqs)):  # split: one node in backward
        o, state = chunks(*x, scale, state, C)
        outs.append(o)
    o = (torch.cat(outs, dim=2) if len(outs) > 1 else outs[0])[:, :, :T]
    return o, (state if output_final_state else None)


def across_chunks(o, Q, kv, decay, state, scale: float):
    """The state's part of a diagonal-decay op (GLA, SSD, WKV-6), one step per chunk.

    ``o: [B, H, N, C, V]`` is the part from inside each chunk, ``Q: [B, H, N, C, K]`` the
    queries as they read the state at their chunk's start, ``kv: [B, H, N, K, V]`` what each
    chunk writes into the state at its end, ``decay: [B, H, N, K or 1, 1]`` each chunk's
    total decay. Returns ``scale · (o + Q S_start)`` as ``[B, H, N·C, V]`` and the state
    after the last chunk.
    """
    B, H, N, C, V = o.shape
    starts = []
    for n in range(N):
        starts.append(state)
        state = torch.addcmul(kv[:, :, n], decay[:, :, n], state)
    starts = torch.stack(starts, dim=2)
    o = torch.baddbmm(o.reshape(-1, C, V), Q.reshape(-1, C, Q.shape[-1]),
                      starts.reshape(-1, *starts.shape[-2:]), beta=scale, alpha=scale)
    return o.reshape(B, H, N * C, V), state
