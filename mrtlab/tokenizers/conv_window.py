"""Convolutional stem and synthesis around the window grid: windows organise attention,
never synthesis.

Analysis: strided 3×3 convolutions take the image to the patch grid (one token per P×P
pixels, P = 2^stages), then the map is cut into windows of S×S tokens. Synthesis: the
decoder's patch tokens are put back into one 2-D map and drawn by residual blocks and
×2 pixel-shuffle upsamplings (VQGAN/TiTok-style pixel decoder), so every pixel depends on
tokens of the neighbouring patches and windows: no edge at window or patch boundaries.
Channels taper as the resolution grows (``widths``, finest first): a 3×3 layer at full
resolution costs ~9·C_in·C_out multiply-adds per pixel, so the widest layers work at 1/P.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import register
from .base import Tokenizer, from_windows, to_windows


class ResBlock(nn.Module):
    """x + conv3×3(GELU(conv3×3(GELU(x)))); the last convolution starts at zero."""

    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.GELU(), nn.Conv2d(ch, ch, 3, padding=1),
                                  nn.GELU(), nn.Conv2d(ch, ch, 3, padding=1))
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x):
        return x + self.body(x)


def upsample(c_in: int, c_out: int) -> nn.Module:
    """×2 by a 3×3 convolution to 4·c_out channels and pixel shuffle (no checkerboard)."""
    return nn.Sequential(nn.Conv2d(c_in, 4 * c_out, 3, padding=1), nn.PixelShuffle(2))


@register("conv_window")
class ConvWindowTokenizer(Tokenizer):
    """Args:
        dim: token width D (the stem's last and the synthesis's first width).
        patch: pixels per token side, a power of 2 (8: three ×2 stages).
        window: tokens per window side S (a window is S·patch pixels).
        widths: channels of the stages finest first, one per ×2 stage below ``dim``
            (``patch=8``: widths at 1/2 and 1/4 resolution).
        blocks: residual blocks per stage, finest first, including the token level
            (``patch=8``: at 1/2, 1/4 and 1/8), used in both stem and synthesis.
    """

    def __init__(self, dim: int, patch: int = 8, window: int = 4,
                 widths: tuple[int, ...] = (32, 64), blocks: tuple[int, ...] = (0, 1, 2)):
        super().__init__()
        stages = patch.bit_length() - 1
        if patch != 1 << stages or stages < 1:
            raise ValueError(f"patch must be a power of 2 ≥ 2, got {patch}")
        if len(widths) != stages - 1 or len(blocks) != stages:
            raise ValueError(f"patch {patch} has {stages} stages: give {stages - 1} widths and "
                             f"{stages} block counts (finest first)")
        self.dim, self.patch, self.window = dim, patch, window
        self.tokens_per_window = window * window
        ch = [*widths, dim]                                   # width at 1/2, 1/4, …, 1/patch
        stem: list[nn.Module] = []
        for i, c in enumerate(ch):
            stem += [nn.Conv2d(3 if i == 0 else ch[i - 1], c, 3, stride=2, padding=1)]
            stem += [ResBlock(c) for _ in range(blocks[i])]
            if i < stages - 1:
                stem += [nn.GELU()]
        self.stem = nn.Sequential(*stem)
        self.pos_in = nn.Parameter(torch.randn(window * window, dim) * 0.02)
        synth: list[nn.Module] = []
        for i in reversed(range(stages)):                     # coarsest first
            synth += [ResBlock(ch[i]) for _ in range(blocks[i])]
            synth += [nn.GELU(), upsample(ch[i], ch[i - 1] if i else 16)]
        synth += [nn.GELU(), nn.Conv2d(16, 3, 3, padding=1)]
        self.synthesis = nn.Sequential(*synth)

    def tokenize(self, image):
        B, _, H, W = image.shape
        g = self.grid(H, W)
        x = F.pad(image * 2 - 1, (0, g.windows_w * g.window_px - W, 0, g.windows_h * g.window_px - H),
                  mode="replicate")
        return to_windows(self.stem(x), g, self.window) + self.pos_in, g   # [B, nWh, nWw, S², D]

    def detokenize(self, tokens, grid):
        x = self.synthesis(from_windows(tokens, self.window))             # [B, 3, padded H, W]
        return (x[:, :, :grid.height, :grid.width] + 1) / 2
