"""The 2-D latent baseline: a convolutional codec for the paper's 1-D vs 2-D comparison.

Analysis and synthesis transforms in the style of the hyperprior/GLC family (strided
5×5 convolutions down, 3×3 convolutions + pixel shuffle up, residual blocks between),
with the same Quantizer and EntropyModel plugins as MRT. The latent is a feature map
downsampled ``downsample``× (16 or 32); its symbol sequence is the map in raster order,
``Layout(latent_tokens, rows, cols)``: every cell is a window of ``latent_tokens``.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..entropy import EntropyModel
from ..quantizers import Quantizer
from ..registry import register, register_architecture
from ..tokenizers import Grid, Tokenizer
from ..tokenizers.base import from_windows, to_windows
from ..tokenizers.conv_window import ResBlock
from ..tokenizers.conv_window import Upsample as up
from .base import CodecModel


def down(c_in: int, c_out: int) -> nn.Module:
    return nn.Conv2d(c_in, c_out, 5, stride=2, padding=2)


@register("baseline2d")
class Baseline2D(CodecModel):
    """A convolutional codec whose latent is a 2-D feature map (the 1-D vs 2-D comparison).

    Args:
        quantizer: the quantizer; ``latent_tokens × channels`` feature maps leave the analysis.
        entropy_model: builds the entropy model from the quantizer's levels.
        channels: width of the convolutions.
        downsample: 16 or 32, the side in pixels of one latent cell.
        blocks: residual blocks per resolution.
        latent_tokens: L, latent tokens per cell (each of the quantizer's channels).
        nested_dropout: train with a random number k of leading tokens kept per cell
            (1…L, uniform), the others replaced by the learned ``dropped_token`` (one per
            position), so that one model codes at L rates.
        tokenizer: MRT's stem and synthesis (e.g. ``conv_window``), so that a 1-D and a 2-D
            model differ only in the latent; the convolutions here then work between its
            patch grid and the cells. ``None``: strided convolutions from the pixels.
    """
    def __init__(self,
                 quantizer: Quantizer,
                 entropy_model: Callable[[list[int]], EntropyModel],
                 channels: int = 96,
                 downsample: int = 16,
                 blocks: int = 1,
                 latent_tokens: int = 1,
                 nested_dropout: bool = False,
                 tokenizer: Callable[[int], Tokenizer] | None = None):
        super().__init__()
        if downsample not in (16, 32):
            raise ValueError(f"downsample must be 16 or 32, got {downsample}")
        self.downsample, self.latent_tokens = downsample, latent_tokens
        self.quantizer = quantizer
        self.entropy_model = entropy_model(quantizer.levels)
        ch, C = channels, quantizer.channels * latent_tokens
        self.tokenizer = tokenizer(ch) if tokenizer is not None else None
        patch = self.tokenizer.patch if self.tokenizer is not None else 1
        if self.tokenizer is not None and (downsample % patch or self.tokenizer.grid(1, 1).window_px % downsample):
            raise ValueError(f"cells of {downsample} px must tile the tokenizer's {patch}-px patches "
                             f"and {self.tokenizer.grid(1, 1).window_px}-px windows")
        stages = (downsample // patch).bit_length() - 1
        self.variable_rate = nested_dropout
        if nested_dropout:
            self.dropped_token = nn.Parameter(torch.zeros(latent_tokens, quantizer.channels))

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

    def coder_modules(self) -> tuple[str, ...]:
        tokenizer = self.tokenizer.analysis_modules if self.tokenizer is not None else ()
        return (*(f"tokenizer.{m}" for m in tokenizer), "analysis")

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
        y = self.analysis(x)                       # [B, L·C, rows, cols]
        # raster order of cells, then their L tokens: [B, rows·cols·L, C]
        return y.flatten(2).transpose(1, 2).reshape(B, -1, self.quantizer.channels), g

    def decode(self, q: torch.Tensor, grid: Grid) -> torch.Tensor:
        B, L, cells = q.shape[0], self.latent_tokens, grid.windows
        # [B, cells·k, C] → [B, cells, k, C]
        y = self.quantizer.dequantize(q.float()).reshape(B, cells, -1, q.shape[-1])
        if y.shape[2] < L:                         # dropped trailing tokens → [B, cells, L, C]
            y = torch.cat([y, self.dropped_token[y.shape[2]:].expand(B, cells, -1, -1)], dim=2)
        y = y.reshape(B, cells, -1).transpose(1, 2)  # [B, L·C, cells]
        x = self.synthesis(y.reshape(B, -1, grid.windows_h, grid.windows_w))
        if self.tokenizer is not None:             # [B, D, H/P, W/P] → the shared synthesis
            tg = self.tokenizer.grid(grid.height, grid.width)
            return self.tokenizer.detokenize(to_windows(x, tg, self.tokenizer.window), tg)
        return (x[:, :, :grid.height, :grid.width] + 1) / 2


# -- named architectures (mrtlab.create_model / list_models) --------------------------
register_architecture("cnn2d", dict(
    class_path="baseline2d", channels=128, downsample=16, blocks=1, latent_tokens=4, nested_dropout=True,
    tokenizer={"class_path": "conv_window",
               "init_args": {"patch": 8, "window": 4, "widths": [32, 64], "blocks": [0, 1, 2]}},
    quantizer={"class_path": "fsq", "init_args": {"levels": [5, 5]}},
    entropy_model={"class_path": "rcm", "init_args": {"dim": 64, "layers": 2, "heads": 4, "max_slots": 4}}),
    "the bundled cnn2d: 16×16-pixel cells of 4 tokens (1–4 kept), MRT's rate per pixel, "
    "the stem and synthesis of mrt_default")
register_architecture("cnn2d_paper", dict(
    class_path="baseline2d", channels=192, downsample=32, blocks=2,
    quantizer={"class_path": "fsq", "init_args": {"levels": [5] * 8}},
    entropy_model={"class_path": "rcm", "init_args": {"dim": 256, "layers": 4, "heads": 4}}),
    "the 2-D tokenizer of the paper's setting: 32×32-pixel cells of one 8-channel token")
