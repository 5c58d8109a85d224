"""When to hand an op to flash-linear-attention (fla) instead of the pure-PyTorch form.

fla's Triton kernels run only on CUDA, so they are used only for CUDA tensors, when fla is
installed and ``MRTLAB_NO_FLA`` is not set. fla is imported lazily inside each op, on that
path only: a CPU run never imports it. The tests also run that path on CPU tensors, in
Triton's interpreter (``MRTLAB_FLA_INTERPRET=1``, see ``interpret.py``). fla's ``chunk_*``
kernels take ``[B, T, H, K]``; mrtlab's ops take fla's reference layout ``[B, H, T, K]``, so
the dispatch transposes.
"""
from __future__ import annotations

import functools
import importlib.util
import os

import torch

from . import interpret


def use_fla(x: torch.Tensor) -> bool:
    if os.environ.get("MRTLAB_NO_FLA") or importlib.util.find_spec("fla") is None:
        return False
    return x.is_cuda or (interpret.requested() and interpret.install())


def same_dtype(*xs: torch.Tensor) -> list[torch.Tensor]:
    """fla's kernels multiply q, k, v (and RWKV-7's a, b) in one dtype, which mixed inputs
    under autocast do not share (a Linear's bf16 output times an fp32 gate or step size):
    the autocast dtype inside an autocast region, else the widest of them."""
    device = xs[0].device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
    else:
        dtype = functools.reduce(torch.promote_types, (x.dtype for x in xs))
    return [x.to(dtype) for x in xs]


def to_fla(*xs: torch.Tensor | None):
    """``[B, H, T, ...]`` → ``[B, T, H, ...]`` (None passes through)."""
    return [x.transpose(1, 2) if x is not None else None for x in xs]
