"""When to hand an op to flash-linear-attention (fla) instead of the pure-PyTorch form.

fla's Triton kernels run only on CUDA, so they are used only for CUDA tensors, when fla is
installed and ``MRTLAB_NO_FLA`` is not set. fla is imported lazily inside each op, on that
path only: a CPU run never imports it. The tests also run that path on CPU tensors, in
Triton's interpreter (``MRTLAB_FLA_INTERPRET=1``, see ``interpret.py``). fla's ``chunk_*`` kernels take ``[B, T, H, K]``;
mrtlab's ops take fla's reference layout ``[B, H, T, K]``, so the dispatch transposes.
"""
from __future__ import annotations

import importlib.util
import os

import torch

from . import interpret


def use_fla(x: torch.Tensor) -> bool:
    if os.environ.get("MRTLAB_NO_FLA") or importlib.util.find_spec("fla") is None:
        return False
    return x.is_cuda or (interpret.requested() and interpret.install())


def to_fla(*xs: torch.Tensor | None):
    """``[B, H, T, ...]`` → ``[B, T, H, ...]`` (None passes through)."""
    return [x.transpose(1, 2) if x is not None else None for x in xs]
