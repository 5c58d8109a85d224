"""MRT: windows → {local Transformer, global RWKV} encoder → 1-D latent → mirrored decoder."""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..entropy import EntropyModel
from ..mixers import GlobalMixer, LocalMixer
from ..quantizers import Quantizer
from ..tokenizers import Grid, Tokenizer
from ..tokenizers.conv_window import from_windows, to_windows
from .base import CodecModel


class MixerStack(nn.Module):
    """N × {local mixer over each window's tokens, global mixer over windows per latent slot}.

    ``shift``: every second local mixer works on the patch tokens of a window grid shifted
    by half a window (Swin's shifted windows; the grid is padded by half a window of zero
    tokens on each side, so nothing wraps around the image), so that patch tokens also mix
    across window boundaries; the latent slots skip those layers.
    """

    def __init__(self, layers: int, dim: int, local_mixer, global_mixer, slots: int,
                 shift: bool = False):
        super().__init__()
        self.slots, self.shift = slots, shift
        self.local = nn.ModuleList(local_mixer(dim) for _ in range(layers))
        self.glob = nn.ModuleList(global_mixer(dim) for _ in range(layers))

    def shifted(self, local, patches):
        """``local`` over the windows of the grid shifted by half a window:
        ``[B, nWh, nWw, S², D]`` → same."""
        B, h, w, T, D = patches.shape
        S = math.isqrt(T)
        m = F.pad(from_windows(patches, S), (S // 2, S - S // 2) * 2)    # [B, D, (h+1)·S, (w+1)·S]
        grid = Grid(0, 0, h + 1, w + 1, 0)
        m = local(to_windows(m, grid, S).reshape(-1, T, D)).reshape(B, h + 1, w + 1, T, D)
        m = from_windows(m, S)[:, :, S // 2:S // 2 + h * S, S // 2:S // 2 + w * S]
        return to_windows(m, Grid(0, 0, h, w, 0), S)

    def forward(self, x):  # [B, nWh, nWw, S²+L, D]; the last L tokens are the latent slots
        B, h, w, T, D = x.shape
        L = self.slots
        for i, (local, glob) in enumerate(zip(self.local, self.glob)):
            if self.shift and i % 2:
                x = torch.cat([self.shifted(local, x[:, :, :, :T - L]), x[:, :, :, T - L:]], dim=3)
            else:
                x = local(x.reshape(B * h * w, T, D)).reshape(B, h, w, T, D)
            lat = x[:, :, :, T - L:].permute(0, 3, 1, 2, 4).reshape(B * L, h, w, D)
            lat = glob(lat).reshape(B, L, h, w, D).permute(0, 2, 3, 1, 4)
            x = torch.cat([x[:, :, :, :T - L], lat], dim=3)
        return x


class MRT(CodecModel):
    """The Mixed RWKV-Transformer codec model; every part is a recipe-chosen plugin.

    Symbols are ordered window-major: ``[B, windows·latent_tokens, channels]``.
    ``nested_dropout``: train with a random number of leading tokens kept per window
    (1…L, uniform), the rest replaced by a learned "dropped" token in the decoder, so that
    one model codes at L rates (``compress(tokens=k)``). ``shift_windows``: every second
    local mixer of both stacks works on a grid shifted by half a window (``MixerStack``).
    """

    def __init__(self,
                 tokenizer: Callable[[int], Tokenizer],
                 local_mixer: Callable[[int], LocalMixer],
                 global_mixer: Callable[[int], GlobalMixer],
                 quantizer: Quantizer,
                 entropy_model: Callable[[list[int]], EntropyModel],
                 dim: int = 128,
                 latent_tokens: int = 4,
                 encoder_layers: int = 3,
                 decoder_layers: int = 3,
                 nested_dropout: bool = False,
                 shift_windows: bool = False):
        super().__init__()
        self.dim, self.latent_tokens = dim, latent_tokens
        self.tokenizer = tokenizer(dim)
        self.quantizer = quantizer
        self.entropy_model = entropy_model(quantizer.levels)
        S2, L, C = self.tokenizer.tokens_per_window, latent_tokens, quantizer.channels
        self.latent_queries = nn.Parameter(torch.randn(L, dim) * 0.02)
        self.encoder = MixerStack(encoder_layers, dim, local_mixer, global_mixer, L, shift_windows)
        self.to_latent = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, C))
        self.from_latent = nn.Linear(C, dim)
        self.latent_slots = nn.Parameter(torch.randn(L, dim) * 0.02)
        self.mask_tokens = nn.Parameter(torch.randn(S2, dim) * 0.02)
        self.decoder = MixerStack(decoder_layers, dim, local_mixer, global_mixer, L, shift_windows)
        self.out_norm = nn.LayerNorm(dim)
        self.variable_rate = nested_dropout
        if nested_dropout:
            self.dropped_token = nn.Parameter(torch.zeros(dim))

    def grid(self, height: int, width: int) -> Grid:
        return self.tokenizer.grid(height, width)

    def periods(self) -> dict[str, int]:
        return {"window": self.grid(1, 1).window_px, "patch": self.tokenizer.patch}

    # -- analysis / synthesis ---------------------------------------------------------
    def encode(self, image: torch.Tensor) -> tuple[torch.Tensor, Grid]:
        tokens, grid = self.tokenizer.tokenize(image)
        B, h, w = tokens.shape[:3]
        lat = self.latent_queries.expand(B, h, w, -1, -1)
        x = self.encoder(torch.cat([tokens, lat], dim=3))
        y = self.to_latent(x[:, :, :, -self.latent_tokens:])
        return y.reshape(B, h * w * self.latent_tokens, -1), grid

    def decode(self, q: torch.Tensor, grid: Grid) -> torch.Tensor:
        B, h, w, L = q.shape[0], grid.windows_h, grid.windows_w, self.latent_tokens
        k = q.shape[1] // grid.windows                    # tokens kept per window
        lat = self.from_latent(self.quantizer.dequantize(q.float())).reshape(B, h, w, k, -1)
        if k < L:
            lat = torch.cat([lat, self.dropped_token.expand(B, h, w, L - k, -1)], dim=3)
        mask = self.mask_tokens.expand(B, h, w, -1, -1)
        x = self.decoder(torch.cat([mask, lat + self.latent_slots], dim=3))
        return self.tokenizer.detokenize(self.out_norm(x[:, :, :, :-L]), grid)
