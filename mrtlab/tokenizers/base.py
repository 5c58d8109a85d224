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
    window: int  # tokens per window side S
    analysis_modules: tuple[str, ...]  # what ``tokenize`` runs: the coder side (models/sides.py)

    def grid(self, height: int, width: int) -> Grid:
        """The image padded up to whole windows of S×S patches."""
        px = self.patch * self.window
        return Grid(height, width, -(-height // px), -(-width // px), px)

    @abstractmethod
    def tokenize(self, image: torch.Tensor) -> tuple[torch.Tensor, Grid]: ...

    @abstractmethod
    def detokenize(self, tokens: torch.Tensor, grid: Grid) -> torch.Tensor: ...


def to_windows(m: torch.Tensor, grid: Grid, S: int) -> torch.Tensor:
    """``[B, D, nWh·S, nWw·S]`` → ``[B, nWh, nWw, S², D]``."""
    B, D = m.shape[:2]
    m = m.reshape(B, D, grid.windows_h, S, grid.windows_w, S).permute(0, 2, 4, 3, 5, 1)
    return m.reshape(B, grid.windows_h, grid.windows_w, S * S, D)


def from_windows(tokens: torch.Tensor, S: int) -> torch.Tensor:
    """``[B, nWh, nWw, S², D]`` → ``[B, D, nWh·S, nWw·S]``."""
    B, h, w, _, D = tokens.shape
    return tokens.reshape(B, h, w, S, S, D).permute(0, 5, 1, 3, 2, 4).reshape(B, D, h * S, w * S)
