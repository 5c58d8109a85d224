"""What the codec needs of a model; MRT and the 2-D baseline both implement it."""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch
from torch import nn

from ..entropy import EntropyModel, Layout
from ..errors import MrtlabError
from ..quantizers import Quantizer
from ..registry import interface
from ..tokenizers import Grid


@interface("model")
class CodecModel(nn.Module, ABC):
    """Analysis ``encode`` → ``quantizer`` → ``entropy_model`` → synthesis ``decode``.

    Subclasses give ``encode``/``decode``/``grid``; training (``forward``) and coding
    (``compress``/``decompress``) are the same for every model and live here.
    ``latent_tokens`` (L) is the number of latent tokens per window (1 for a 2-D latent).
    A model with ``variable_rate`` can keep fewer, ``tokens`` ≤ L (the first ones of each
    window); the number kept is written into each file's header.
    """
    quantizer: Quantizer
    entropy_model: EntropyModel
    latent_tokens: int

    @abstractmethod
    def coder_modules(self) -> tuple[str, ...]:
        """The attribute paths (state-dict prefixes) of the encoder side: the modules and
        parameters ``encode`` runs. With the quantizer and the entropy model they are the coder
        side (``sides.py``), which the fingerprint hashes and stage 2 freezes."""

    @abstractmethod
    def grid(self, height: int, width: int) -> Grid:
        """The latent geometry of an image of this size."""

    variable_rate: bool = False

    def periods(self) -> dict[str, int]:
        """The pixel periods of the model's own grids (window, patch, cell…): where a codec
        that draws each unit on its own would leave seams (``mrtlab eval`` measures there)."""
        return {}

    def layout(self, grid: Grid, tokens: int | None = None) -> Layout:
        """Where the symbol sequence of an image lies: windows × tokens kept per window."""
        return Layout(tokens or self.latent_tokens, grid.windows_h, grid.windows_w)

    def check_tokens(self, tokens: int | None) -> int:
        """The number of tokens to keep per window, or a one-line error."""
        if tokens is None or tokens == self.latent_tokens:
            return self.latent_tokens
        if not self.variable_rate:
            raise MrtlabError(f"this model has a fixed rate: it codes all {self.latent_tokens} "
                              f"latent tokens per window, not {tokens}")
        if not 1 <= tokens <= self.latent_tokens:
            raise MrtlabError(f"tokens per window must be between 1 and {self.latent_tokens}, "
                              f"got {tokens}")
        return tokens

    def training_tokens(self) -> int:
        """Tokens kept per window in a training step: a variable-rate model draws 1…L
        uniformly (nested dropout: every prefix of a window's tokens learns to decode)."""
        if not self.variable_rate:
            return self.latent_tokens
        return int(torch.randint(1, self.latent_tokens + 1, ()))

    def keep(self, y: torch.Tensor, tokens: int) -> torch.Tensor:
        """``[B, windows·L, C]`` → the first ``tokens`` of each window ``[B, windows·tokens, C]``."""
        if tokens == self.latent_tokens:
            return y
        B, _, C = y.shape
        return y.reshape(B, -1, self.latent_tokens, C)[:, :, :tokens].reshape(B, -1, C)

    @abstractmethod
    def encode(self, image: torch.Tensor) -> tuple[torch.Tensor, Grid]:
        """``[B,3,H,W]`` in [0,1] → continuous latent ``[B, T, C]`` and its Grid."""

    @abstractmethod
    def decode(self, q: torch.Tensor, grid: Grid) -> torch.Tensor:
        """Symbol positions ``[B, T, C]`` → image ``[B,3,H,W]`` (not clamped)."""

    def forward(self, image: torch.Tensor, tokens: int | None = None) -> dict:
        """Training pass: reconstruction and bits per symbol (differentiable)."""
        y, grid = self.encode(image)
        k = self.check_tokens(tokens) if tokens else (
            self.training_tokens() if self.training else self.latent_tokens)
        q = self.quantizer(self.keep(y, k))
        bits = self.entropy_model(q, self.layout(grid, k))
        return {"x_hat": self.decode(q, grid), "bits": bits, "symbols": q, "grid": grid,
                "tokens": k}

    def update(self) -> None:
        """Freeze the entropy model's integer coding tables."""
        self.entropy_model.update()

    @torch.no_grad()
    def encode_rgb(self, rgb) -> tuple[torch.Tensor, Grid]:
        """``encode`` of one ``H×W×3`` uint8 image (what the codec calls; a model may code a
        large image in strips here, in bounded memory)."""
        x = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255
        return self.encode(x.to(next(self.parameters()).device))

    @torch.no_grad()
    def compress(self, image: torch.Tensor, tokens: int | None = None) -> dict:
        """``[1,3,H,W]`` → payload bytes, the symbols and the model's estimate of their bits."""
        return self.compress_latent(*self.encode(image), tokens)

    @torch.no_grad()
    def compress_latent(self, y: torch.Tensor, grid: Grid, tokens: int | None = None) -> dict:
        """The coding half of :meth:`compress`, from the analysis output (reused across rates);
        ``bits`` ``[T, C]`` are the entropy model's price of each symbol."""
        k = self.check_tokens(tokens)
        q = self.quantizer(self.keep(y, k))
        symbols = self.quantizer.symbols(q)[0]
        layout = self.layout(grid, k)
        bits = self.entropy_model(q, layout)[0]
        return {"payload": self.entropy_model.compress(symbols, layout), "tokens": k, "symbols": symbols,
                "grid": grid, "bits": bits, "estimated_bits": float(bits.sum())}

    @torch.no_grad()
    def decompress(self, payload: bytes, height: int, width: int, tokens: int | None = None) -> dict:
        grid, k = self.grid(height, width), self.check_tokens(tokens)
        symbols = self.entropy_model.decompress(payload, self.layout(grid, k))
        return {"symbols": symbols, "x_hat": self.reconstruct(symbols, grid)}

    @torch.no_grad()
    def reconstruct(self, symbols: torch.Tensor, grid: Grid) -> torch.Tensor:
        """The decoder's image from integer symbols ``[T, C]``, as uint8 ``[3,H,W]``."""
        return to_uint8(self.decode(symbols[None].float(), grid)[0])


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """A decoder's image in [0, 1] (not clamped) → uint8 levels."""
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)
