from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from ..registry import interface


@interface("global_mixer")
class GlobalMixer(nn.Module, ABC):
    """Mixes one token per window across the window grid: ``[B, nWh, nWw, D]`` → same.

    Knows the 2-D grid (so it can scan rows and columns); must cost O(number of windows)
    unless it is an ablation baseline. Includes its own residual connection.
    """

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor: ...


@interface("local_mixer")
class LocalMixer(nn.Module, ABC):
    """Mixes the tokens inside each window: ``[N_windows, T, D]`` → same (with residual)."""

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor: ...
