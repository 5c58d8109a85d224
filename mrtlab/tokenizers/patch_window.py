"""Patch/window tokenizer: P×P-pixel patches → tokens, S×S patches → one window."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import register
from .base import Tokenizer


@register("patch_window")
class PatchWindowTokenizer(Tokenizer):
    """A linear embedding of each P×P patch and a linear head back (ViT-style); every window
    is drawn on its own, so it shows seams that ``conv_window`` does not.

    Args:
        dim: token width D.
        patch: P, pixels per patch side (one token).
        window: S, patches per window side (a window is S·P pixels).
        refine_channels: > 0 adds two 3×3 convolutions after unpatchifying, which smooth the
            seams between patches that a per-patch linear head leaves.

    ``[B,3,H,W]`` ⇄ ``[B, nWh, nWw, S², D]``.
    """
    analysis_modules = ("embed", "pos_in")

    def __init__(self, dim: int, patch: int = 8, window: int = 4, refine_channels: int = 32):
        super().__init__()
        self.dim, self.patch, self.window = dim, patch, window
        self.tokens_per_window = window * window
        self.embed = nn.Linear(3 * patch * patch, dim)
        self.pos_in = nn.Parameter(torch.randn(window * window, dim) * 0.02)
        self.head = nn.Linear(dim, 3 * patch * patch)
        self.refine = nn.Sequential(
            nn.Conv2d(3, refine_channels, 3, padding=1), nn.GELU(),
            nn.Conv2d(refine_channels, 3, 3, padding=1),
        ) if refine_channels else None
        if self.refine is not None:
            nn.init.zeros_(self.refine[-1].weight)
            nn.init.zeros_(self.refine[-1].bias)

    def tokenize(self, image):
        B, _, H, W = image.shape
        g = self.grid(H, W)
        x = image * 2 - 1
        x = F.pad(x, (0, g.windows_w * g.window_px - W, 0, g.windows_h * g.window_px - H),
                  mode="replicate")
        P, S = self.patch, self.window
        # [B,3,nWh,S,P,nWw,S,P] → [B,nWh,nWw,S,S,3,P,P]
        x = x.reshape(B, 3, g.windows_h, S, P, g.windows_w, S, P).permute(0, 2, 5, 3, 6, 1, 4, 7)
        x = x.reshape(B, g.windows_h, g.windows_w, S * S, 3 * P * P)
        return self.embed(x) + self.pos_in, g

    def detokenize(self, tokens, grid):
        B = tokens.shape[0]
        P, S = self.patch, self.window
        x = self.head(tokens).reshape(B, grid.windows_h, grid.windows_w, S, S, 3, P, P)
        x = x.permute(0, 5, 1, 3, 6, 2, 4, 7).reshape(
            B, 3, grid.windows_h * S * P, grid.windows_w * S * P)
        if self.refine is not None:
            x = x + self.refine(x)
        return ((x[:, :, :grid.height, :grid.width] + 1) / 2)
