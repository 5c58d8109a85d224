"""When to hand an op to flash-linear-attention (fla) instead of the pure-PyTorch form.

fla's Triton kernels run only on CUDA, so they are used only for CUDA tensors, when fla is
installed and ``MRTLAB_NO_FLA`` is not set. fla is imported lazily inside each op, on that
path only: a CPU run never imports it. fla's ``chunk_*`` kernels take ``[B, T, H, K]``;
mrtlab's ops take fla's reference layout ``[B, H, T, K]``, so the dispatch transposes.
"""
from __future__ import annotations

import importlib.util
import os

import torch
import torch.nn.functional as F


def use_fla(x: torch.Tensor) -> bool:
    return (x.is_cuda and not os.environ.get("MRTLAB_NO_FLA")
            and importlib.util.find_spec("fla") is not None)


def to_fla(*xs: torch.Tensor | None):
    """``[B, H, T, ...]`` → ``[B, T, H, ...]`` (None passes through)."""
    return [x.transpose(1, 2) if x is not None else None for x in xs]


def step_through(step, seqs, value_dim: int, initial_state=None, output_final_state: bool = False):
    """The step form of every op: ``step(tokens, state) → (state, o)`` over dim 2 of ``seqs``
    (``[B, H, T, ...]``, the first one ``[B, H, T, K]``); the state is ``[B, H, K, V]``."""
    B, H, T, K = seqs[0].shape
    state = seqs[0].new_zeros(B, H, K, value_dim) if initial_state is None else initial_state
    outs = []
    for t in range(T):
        state, o = step([x[:, :, t] for x in seqs], state)
        outs.append(o)
    o = torch.stack(outs, dim=2) if outs else seqs[0].new_zeros(B, H, 0, value_dim)
    return o, (state if output_final_state else None)


SEGMENT_ELEMENTS = 1 << 18  # per [B, H, segment, K] tensor: ~1 MB in fp32, cache-sized


def over_segments(chunks, seqs, C: int, scale: float, value_dim: int, initial_state=None,
                  output_final_state: bool = False):
    """Pad ``seqs`` (``[B, H, T, ...]``) to whole chunks of ``C`` and run
    ``chunks(*segment, scale, state, C) → (o, state)`` over cache-sized segments, carrying
    the state: a long input then costs the same per token as a short one."""
    B, H, T, K = seqs[0].shape
    pad = (-T) % C
    if pad:  # zero keys and zero log-decay leave the state untouched
        seqs = [F.pad(x, (0, 0) * (x.dim() - 3) + (0, pad)) for x in seqs]
    seg = C * max(1, SEGMENT_ELEMENTS // (B * H * max(K, value_dim) * C))
    state = seqs[0].new_zeros(B, H, K, value_dim) if initial_state is None else initial_state
    outs = []
    for x in zip(*(t.split(seg, dim=2) for t in seqs)):  # split: one node in backward
        o, state = chunks(*x, scale, state, C)
        outs.append(o)
    o = (torch.cat(outs, dim=2) if len(outs) > 1 else outs[0])[:, :, :T]
    return o, (state if output_final_state else None)
