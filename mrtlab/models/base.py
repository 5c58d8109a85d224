"""What the codec needs of a model; MRT and the 2-D baseline both implement it."""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from ..entropy import EntropyModel, Layout
from ..quantizers import Quantizer
from ..tokenizers import Grid


class CodecModel(nn.Module, ABC):
    """Analysis ``encode`` → ``quantizer`` → ``entropy_model`` → synthesis ``decode``.

    Subclasses give ``encode``/``decode``/``grid``/``layout``; training (``forward``) and
    coding (``compress``/``decompress``) are the same for every model and live here.
    ``latent_tokens`` is written into each file's header (1 for a 2-D latent).
    """
    quantizer: Quantizer
    entropy_model: EntropyModel
    latent_tokens: int

    @abstractmethod
    def grid(self, height: int, width: int) -> Grid:
        """The latent geometry of an image of this size."""

    @abstractmethod
    def layout(self, grid: Grid) -> Layout:
        """Where the symbol sequence of an image lies (what the entropy model sees)."""

    @abstractmethod
    def encode(self, image: torch.Tensor) -> tuple[torch.Tensor, Grid]:
        """``[B,3,H,W]`` in [0,1] → continuous latent ``[B, T, C]`` and its Grid."""

    @abstractmethod
    def decode(self, q: torch.Tensor, grid: Grid) -> torch.Tensor:
        """Symbol positions ``[B, T, C]`` → image ``[B,3,H,W]`` (not clamped)."""

    def forward(self, image: torch.Tensor) -> dict:
        """Training pass: reconstruction and bits per symbol (differentiable)."""
        y, grid = self.encode(image)
        q = self.quantizer(y)
        bits = self.entropy_model(q, self.layout(grid))
        return {"x_hat": self.decode(q, grid), "bits": bits, "symbols": q, "grid": grid}

    def update(self) -> None:
        """Freeze the entropy model's integer coding tables."""
        self.entropy_model.update()

    @torch.no_grad()
    def compress(self, image: torch.Tensor) -> dict:
        """``[1,3,H,W]`` → payload bytes, the symbols and the model's estimate of their bits."""
        y, grid = self.encode(image)
        q = self.quantizer(y)
        symbols = self.quantizer.symbols(q)[0]
        layout = self.layout(grid)
        est = float(self.entropy_model(q, layout).sum())
        return {"payload": self.entropy_model.compress(symbols, layout),
                "symbols": symbols, "grid": grid, "estimated_bits": est}

    @torch.no_grad()
    def decompress(self, payload: bytes, height: int, width: int) -> dict:
        grid = self.grid(height, width)
        symbols = self.entropy_model.decompress(payload, self.layout(grid))
        return {"symbols": symbols, "x_hat": self.reconstruct(symbols, grid)}

    @torch.no_grad()
    def reconstruct(self, symbols: torch.Tensor, grid: Grid) -> torch.Tensor:
        """The decoder's image from integer symbols ``[T, C]``, as uint8 ``[3,H,W]``."""
        x = self.decode(symbols[None].float(), grid)[0]
        return (x.clamp(0, 1) * 255).round().to(torch.uint8)
