"""Exponential moving average of a model's weights (the weights that get exported)."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA(nn.Module):
    """A shadow copy updated by ``shadow ← shadow + (1−d)(weights − shadow)``.

    The decay ramps up as ``min(decay, (1+n)/(10+n))`` so early weights do not linger.
    Frozen parameters and buffers are copied exactly: a frozen encoder stays bit-identical.
    An ``nn.Module``, so Accelerate checkpoints it with ``register_for_checkpointing``.
    """

    def __init__(self, model: nn.Module, decay: float):
        super().__init__()
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        n = int(self.updates)
        d = min(self.decay, (1 + n) / (10 + n))
        for e, p in zip(self.model.parameters(), model.parameters()):
            if p.requires_grad:
                e.lerp_(p, 1 - d)
            else:
                e.copy_(p)
        for e, b in zip(self.model.buffers(), model.buffers()):
            e.copy_(b)
        self.updates += 1
