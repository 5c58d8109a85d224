from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import nn

from ..registry import interface


@dataclass(frozen=True)
class Grid:
    """Where the windows of one image lie: original size, padded size, window counts."""
    height: int
    width: int
    windows_h: int
    windows_w: int
    window_px: int

    @property
    def windows(self) -> int:
        return self.windows_h * self.windows_w


@interface("tokenizer")
class Tokenizer(nn.Module, ABC):
    """Image ⇄ windowed tokens.

    ``tokenize``: ``[B,3,H,W]`` in [0,1] → ``[B, nWh, nWw, S², D]`` patch tokens and a Grid.
    ``detokenize``: ``[B, nWh, nWw, S², D]`` → ``[B,3,H,W]`` cropped back to the Grid.
    The model appends the latent (encoder) or mask (decoder) tokens it owns.
    """
    tokens_per_window: int
    patch: int  # pixels per patch side (one token)

    @abstractmethod
    def grid(self, height: int, width: int) -> Grid: ...

    @abstractmethod
    def tokenize(self, image: torch.Tensor) -> tuple[torch.Tensor, Grid]: ...

    @abstractmethod
    def detokenize(self, tokens: torch.Tensor, grid: Grid) -> torch.Tensor: ...
