"""The 2-D latent baseline: a convolutional codec for the paper's 1-D vs 2-D comparison.

Analysis and synthesis transforms in the style of the hyperprior/GLC family (strided
5×5 convolutions down, 3×3 convolutions + pixel shuffle up, residual blocks between),
with the same Quantizer and EntropyModel plugins as MRT. The latent is a feature map
downsampled ``downsample``× (16 or 32); its symbol sequence is the map in raster order,
``Layout(slots=1, rows, cols)`` (``latent_tokens = 1``): every cell is a one-token window.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..entropy import EntropyModel
from ..quantizers import Quantizer
from ..registry import register
from ..tokenizers import Grid, Tokenizer
from ..tokenizers.conv_window import ResBlock, from_windows, to_windows
from ..tokenizers.conv_window import upsample as up
from .base import CodecModel


def down(c_in: int, c_out: int) -> nn.Module:
    return nn.Conv2d(c_in, c_out, 5, stride=2, padding=2)


@register("baseline2d")
class Baseline2D(CodecModel):
    """Args:
        quantizer, entropy_model: the same plugins as MRT's.
        channels: width of the convolutional transforms.
        downsample: pixels per latent cell side (16 or 32).
        blocks: residual blocks per resolution.
        slots: latent tokens per cell (MRT's ``latent_tokens``).
        nested_dropout: variable rate: keep the first k of the ``slots`` tokens.
        tokenizer: MRT's stem and synthesis (e.g. ``conv_window``), so that the 1-D and the
            2-D model differ only in the latent; the convolutions here then work between its
            patch grid and the cells. ``None``: strided convolutions from the pixels.
    """

    def __init__(self,
                 quantizer: Quantizer,
                 entropy_model: Callable[[list[int]], EntropyModel],
                 channels: int = 96,
                 downsample: int = 16,
                 blocks: int = 1,
                 slots: int = 1,
                 nested_dropout: bool = False,
                 tokenizer: Callable[[int], Tokenizer] | None = None):
        super().__init__()
        if downsample not in (16, 32):
            raise ValueError(f"downsample must be 16 or 32, got {downsample}")
        self.downsample, self.latent_tokens = downsample, slots
        self.quantizer = quantizer
        self.entropy_model = entropy_model(quantizer.levels)
        ch, C = channels, quantizer.channels * slots
        self.tokenizer = tokenizer(ch) if tokenizer is not None else None
        patch = self.tokenizer.patch if self.tokenizer is not None else 1
        if self.tokenizer is not None and (downsample % patch or self.tokenizer.grid(1, 1).window_px % downsample):
            raise ValueError(f"cells of {downsample} px must tile the tokenizer's {patch}-px patches "
                             f"and {self.tokenizer.grid(1, 1).window_px}-px windows")
        stages = (downsample // patch).bit_length() - 1
        self.variable_rate = nested_dropout
        if nested_dropout:
            self.dropped = nn.Parameter(torch.zeros(slots, quantizer.channels))

        def res():
            return [ResBlock(ch) for _ in range(blocks)]
        enc = [down(3, ch)] if self.tokenizer is None else [*res(), nn.GELU(), down(ch, ch)]
        for _ in range(stages - 1):
            enc += [*res(), nn.GELU(), down(ch, ch)]
        self.analysis = nn.Sequential(*enc, *res(), nn.GELU(), nn.Conv2d(ch, C, 3, padding=1))
        dec = [nn.Conv2d(C, ch, 3, padding=1)]
        for _ in range(stages - 1):
            dec += [*res(), nn.GELU(), up(ch, ch)]
        dec += [*res(), nn.GELU(), up(ch, 3 if self.tokenizer is None else ch)]
        self.synthesis = nn.Sequential(*dec, *(res() if self.tokenizer is not None else []))

    def grid(self, height: int, width: int) -> Grid:
        s = self.downsample
        if self.tokenizer is None:
            return Grid(height, width, -(-height // s), -(-width // s), s)
        g = self.tokenizer.grid(height, width)                # cells tile the padded windows
        per = g.window_px // s
        return Grid(height, width, g.windows_h * per, g.windows_w * per, s)

    def periods(self) -> dict[str, int]:
        return {"cell": self.downsample} | ({"patch": self.tokenizer.patch} if self.tokenizer else {})

    def encode(self, image: torch.Tensor) -> tuple[torch.Tensor, Grid]:
        B, _, H, W = image.shape
        g = self.grid(H, W)
        if self.tokenizer is None:
            x = F.pad(image * 2 - 1, (0, g.windows_w * g.window_px - W, 0, g.windows_h * g.window_px - H),
                      mode="replicate")
        else:
            tokens, _ = self.tokenizer.tokenize(image)        # [B, nWh, nWw, S², D]
            x = from_windows(tokens, self.tokenizer.window)   # [B, D, H/P, W/P] (padded)
        y = self.analysis(x)                       # [B, slots·C, rows, cols]
        # raster order of cells, then slots: [B, rows·cols·slots, C]
        return y.flatten(2).transpose(1, 2).reshape(B, -1, self.quantizer.channels), g

    def decode(self, q: torch.Tensor, grid: Grid) -> torch.Tensor:
        B, S, cells = q.shape[0], self.latent_tokens, grid.windows
        y = self.quantizer.dequantize(q.float()).reshape(B, cells, -1, q.shape[-1])
        if y.shape[2] < S:                         # dropped trailing tokens
            y = torch.cat([y, self.dropped[y.shape[2]:].expand(B, cells, -1, -1)], dim=2)
        y = y.reshape(B, cells, -1).transpose(1, 2)
        x = self.synthesis(y.reshape(B, -1, grid.windows_h, grid.windows_w))
        if self.tokenizer is not None:             # [B, D, H/P, W/P] → the shared synthesis
            tg = self.tokenizer.grid(grid.height, grid.width)
            return self.tokenizer.detokenize(to_windows(x, tg, self.tokenizer.window), tg)
        return (x[:, :, :grid.height, :grid.width] + 1) / 2
