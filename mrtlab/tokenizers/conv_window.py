"""Convolutional stem and synthesis around the window grid: windows organise attention,
never synthesis.

Analysis: strided 3×3 convolutions take the image to the patch grid (one token per P×P
pixels, P = 2^stages), then the map is cut into windows of S×S tokens. Synthesis: the
decoder's patch tokens are put back into one 2-D map and drawn by residual blocks and
×2 pixel-shuffle upsamplings (VQGAN/TiTok-style pixel decoder), so every pixel depends on
tokens of the neighbouring patches and windows: no edge at window or patch boundaries.
Channels taper as the resolution grows (``widths``, finest first): a 3×3 layer at full
resolution costs ~9·C_in·C_out multiply-adds per pixel, so the widest layers work at 1/P.

After each upsampling, noise may be added (``NoiseInjection``, StyleGAN-style): a decoder
drawn from smooth latents can only repeat a texture from patch to patch (a mesh at the
upsamplings' phases); noise lets a perceptual decoder draw texture that does not repeat.
Its strengths start at zero (no noise: the fidelity decoder) and train only when asked
(``train.decoder_noise``); decoding draws it from a fixed seed, so a file decodes alike
every time.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import register
from .base import Grid, Tokenizer, from_windows, to_windows


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


class Upsample(nn.Sequential):
    """×2 by a 3×3 convolution to 4·c_out channels and pixel shuffle (no checkerboard)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(nn.Conv2d(c_in, 4 * c_out, 3, padding=1), nn.PixelShuffle(2))


class NoiseInjection(nn.Module):
    """``x + GAIN · strength[c] · n``: one map of Gaussian noise ``n`` per image, scaled per
    channel. ``GAIN`` lets the strengths learn at the decoder's learning rate (a stage-2
    lr of 10⁻⁴ moves a plain scale too little in a few hundred steps: measured).

    Training draws new noise at every step when ``drawing`` (set by ``train.decoder_noise``);
    evaluation draws it from a fixed ``seed`` (one per injection, so that the maps of two
    injections are not copies), and not at all while every strength is zero."""
    GAIN = 100.0

    def __init__(self, channels: int, seed: int = 0):
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(channels))
        self.seed, self.drawing = seed, False

    def fixed_noise(self, height: int, width: int) -> torch.Tensor | None:
        """The noise evaluation adds to a ``height×width`` map (``None`` while every strength
        is zero): decoding in strips slices the whole map's rows from it."""
        if not self.strength.any():
            return None
        return torch.randn(1, 1, height, width, generator=torch.Generator().manual_seed(self.seed))

    def forward(self, x, noise: torch.Tensor | None = None):
        """``noise``: the rows of :meth:`fixed_noise` that ``x`` covers (decoding in strips)."""
        B, _, H, W = x.shape
        if self.training and self.drawing:
            n = torch.randn(B, 1, H, W, device=x.device)
        elif not self.training and self.strength.any():
            n = (self.fixed_noise(H, W) if noise is None else noise).to(x.device)
        else:
            return x
        return x + (self.GAIN * self.strength).view(1, -1, 1, 1).to(x.dtype) * n.to(x.dtype)


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

    analysis_modules = ("stem", "pos_in")

    def __init__(self, dim: int, patch: int = 8, window: int = 4,
                 widths: tuple[int, ...] = (32, 64), blocks: tuple[int, ...] = (0, 1, 2)):
        super().__init__()
        stages = patch.bit_length() - 1
        if patch != 1 << stages or stages < 1:
            raise ValueError(f"patch must be a power of 2 ≥ 2, got {patch}")
        if len(widths) != stages - 1 or len(blocks) != stages:
            raise ValueError(f"patch {patch} has {stages} stages: give {stages - 1} widths and "
                             f"{stages} block counts (finest first)")
        self.dim, self.patch, self.window, self.blocks = dim, patch, window, tuple(blocks)
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
            synth += [nn.GELU(), Upsample(ch[i], ch[i - 1] if i else 16)]
        synth += [nn.GELU(), nn.Conv2d(16, 3, 3, padding=1)]
        self.synthesis = nn.Sequential(*synth)
        ups = [m for m in synth if isinstance(m, Upsample)]
        self.noise = nn.ModuleList(NoiseInjection(m[0].out_channels // 4, seed=i) for i, m in enumerate(ups))

    def tokenize(self, image):
        B, _, H, W = image.shape
        g = self.grid(H, W)
        x = F.pad(image * 2 - 1, (0, g.windows_w * g.window_px - W, 0, g.windows_h * g.window_px - H),
                  mode="replicate")
        return to_windows(self.stem(x), g, self.window) + self.pos_in, g   # [B, nWh, nWw, S², D]

    def detokenize(self, tokens, grid):
        x, noise = from_windows(tokens, self.window), iter(self.noise)
        for layer in self.synthesis:
            x = layer(x)
            if isinstance(layer, Upsample):
                x = next(noise)(x)
        return (x[:, :, :grid.height, :grid.width] + 1) / 2                # x: [B, 3, padded H, W]

    # -- strips of window rows: large images in bounded memory (models/mrt.py) --------------
    def halo(self) -> int:
        """Window rows of context a strip needs above and below for its own rows to come out
        as the whole image's: the receptive field of the stem and of the synthesis (3×3
        convolutions at each resolution), rounded up to whole windows."""
        stem = sum(2 ** i + 4 * b * 2 ** i for i, b in enumerate(self.blocks))
        synthesis = sum((2 * b + 1) * 2 ** (i + 1) for i, b in enumerate(self.blocks)) + 1
        return -(-max(stem, synthesis) // (self.patch * self.window))

    def tokenize_rows(self, rgb, grid: Grid, start: int, stop: int) -> torch.Tensor:
        """Window rows ``start…stop-1`` of ``tokenize``, from the ``H×W×3`` uint8 image (with
        ``halo()`` rows of context): ``[1, stop-start, nWw, S², D]``."""
        px, S, halo = grid.window_px, self.window, self.halo()
        lo, hi = max(0, start - halo), min(grid.windows_h, stop + halo)
        rows = torch.arange(lo * px, hi * px).clamp_max(grid.height - 1)   # replicate padding
        cols = torch.arange(grid.windows_w * px).clamp_max(grid.width - 1)
        x = torch.from_numpy(rgb[rows.numpy()][:, cols.numpy()]).permute(2, 0, 1)[None].to(self.pos_in.device) / 255
        t = self.stem(x * 2 - 1)[:, :, (start - lo) * S:(stop - lo) * S]
        return to_windows(t, Grid(0, 0, stop - start, grid.windows_w, px), S) + self.pos_in

    def noise_maps(self, grid: Grid) -> list[torch.Tensor | None]:
        """The whole padded image's evaluation noise after each upsampling (``None`` where there
        is none), for ``detokenize_rows``."""
        h, w = grid.windows_h * self.window, grid.windows_w * self.window
        return [n.fixed_noise(h * 2 ** (i + 1), w * 2 ** (i + 1)) for i, n in enumerate(self.noise)]

    def detokenize_rows(self, tokens, grid: Grid, first: int, start: int, stop: int,
                        noise: list[torch.Tensor | None]) -> torch.Tensor:
        """The pixel rows of window rows ``start…stop-1`` (cropped to the image), from the
        decoder's patch tokens of window rows ``first…`` (``tokens [1, rows, nWw, S², D]``,
        ``halo()`` rows beyond ``start`` and ``stop`` where the image has them):
        ``[1, 3, rows, W]``."""
        S = self.window
        x, injections, scale = from_windows(tokens, S), iter(zip(self.noise, noise)), 1
        top = first * S                                   # x's first row, in token rows
        for layer in self.synthesis:
            x = layer(x)
            if isinstance(layer, Upsample):
                scale *= 2
                inject, n = next(injections)
                x = inject(x, None if n is None else n[:, :, top * scale:top * scale + x.shape[2]])
        P = self.patch
        a, b = (start - first) * S * P, min((stop - first) * S * P, grid.height - first * S * P)
        return (x[:, :, a:b, :grid.width] + 1) / 2
