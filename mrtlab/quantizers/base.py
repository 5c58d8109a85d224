from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from ..registry import interface


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Round in the forward pass, identity in the backward pass."""
    return x + (x.round() - x).detach()


@interface("quantizer")
class Quantizer(nn.Module, ABC):
    """Continuous latent ⇄ symbols.

    ``forward(y)`` gives *symbol positions* ``q`` in ``[0, levels[c] - 1]`` per channel:
    integers at evaluation, a relaxation while training (straight-through or noise), so
    that entropy models can price them and pass gradients back. ``dequantize(q)`` gives the
    values the decoder sees. Every quantizer therefore speaks one alphabet per channel:
    ``levels``.
    """
    levels: list[int]

    @property
    def channels(self) -> int:
        return len(self.levels)

    @abstractmethod
    def forward(self, y: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def dequantize(self, q: torch.Tensor) -> torch.Tensor: ...

    def symbols(self, q: torch.Tensor) -> torch.Tensor:
        return q.round().long()
