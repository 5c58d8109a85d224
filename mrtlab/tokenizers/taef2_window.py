"""MRT's windows in the latent of a frozen pretrained autoencoder (TAEF2): its GAN-trained
decoder draws the texture a decoder trained from scratch on a few CPU cores cannot.

Analysis: the image (padded to whole windows) goes through the frozen TAEF2 encoder to a
32-channel latent at 1/8, a trained 3×3 convolution and residual blocks take it to D
channels, and each latent position is one patch token (8×8 px), cut into windows of S×S.
Synthesis: the decoder's patch tokens are put back into one 2-D map, residual blocks and a
3×3 convolution draw a TAEF2 latent from it (across window boundaries), and the frozen
TAEF2 decoder renders the pixels. The autoencoder's weights are not part of the model's
state (they load from ``mrtlab weights``' folder, pinned by their sha256 in the recipe, so
the fingerprint of every file names them); only the stem and synthesis around them train.
Noise may be added in the synthesis (``NoiseInjection``, zero until ``train.decoder_noise``
trains it in stage 2): the TAEF2 decoder turns latent noise into texture that the few
bits of a window cannot carry.

Stage 1 can train in the latent itself (``latent_io``: tokenize takes and detokenize gives
the TAEF2 latent in its unit scale), from latents of the training images computed once
(``train.latent_space``); stage 2 trains the synthesis through the frozen decoder.
"""
from __future__ import annotations

import contextlib
import copy
import functools
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import MrtlabError
from ..ops.precision import choose
from ..pretrained import taef2
from ..pretrained.files import sha256, weights_dir
from ..registry import register
from .base import Tokenizer, from_windows, to_windows
from .conv_window import NoiseInjection, ResBlock


@functools.lru_cache(maxsize=4)
def _sha256(path: str) -> str:
    """The file's sha256, once per path (checked at every use of the autoencoder)."""
    return sha256(Path(path))


@functools.lru_cache(maxsize=2)
def _bf16(device_type: str) -> bool:
    """Run the autoencoder in bf16 where the device does it fast (train/precision.py's rule:
    3.3× on an AMX CPU, measured; fp32 elsewhere)."""
    return choose("auto", torch.device(device_type))[0] == "bf16"


@register("taef2_window")
class TAEF2WindowTokenizer(Tokenizer):
    """Args:
        dim: token width D.
        window: tokens per window side S (one token per latent position: 8·S px windows).
        blocks: residual blocks at the latent resolution, in the stem and in the synthesis.
        weights: folder holding ``taef2/taef2_{encoder,decoder}.pth`` (empty: ``--weights``,
            ``$MRTLAB_WEIGHTS``, else torch's hub cache, as for LPIPS/DISTS).
        encoder_sha256, decoder_sha256: the files this model was trained with; another
            file is refused in one line (empty: not checked).
    """
    patch = taef2.SCALE
    latent_channels = taef2.CHANNELS   # what ``latent_io`` reads and writes
    analysis_modules = ("stem", "pos_in")

    def __init__(self, dim: int, window: int = 4, blocks: int = 2, weights: str = "",
                 encoder_sha256: str = "", decoder_sha256: str = ""):
        super().__init__()
        self.dim, self.window, self.tokens_per_window = dim, window, window * window
        self.sha256 = {"encoder": encoder_sha256, "decoder": decoder_sha256}
        self.pretrained_folder = weights   # zoo.load_model(weights=…) points it elsewhere
        self.latent_io = False
        self.stem = nn.Sequential(nn.Conv2d(taef2.CHANNELS, dim, 3, padding=1),
                                  *(ResBlock(dim) for _ in range(blocks)))
        self.pos_in = nn.Parameter(torch.randn(window * window, dim) * 0.02)
        self.synthesis = nn.Sequential(*(ResBlock(dim) for _ in range(blocks)), nn.GELU(),
                                       nn.Conv2d(dim, taef2.CHANNELS, 3, padding=1))
        self.noise = NoiseInjection(dim)   # after the synthesis's first layer; zero until trained

    # -- the frozen autoencoder (outside the state dict) -----------------------------------
    def autoencoder(self, part: str, device: torch.device) -> nn.Module:
        folder = str(weights_dir(self.pretrained_folder or None))
        net, want = taef2.load(part, folder), self.sha256[part]
        if want and _sha256(str(taef2.path(part, folder))) != want:
            raise MrtlabError(f"{taef2.path(part, folder)} is not the TAEF2 {part} this model was "
                              f"trained with (sha256 {want[:12]}…)")
        return net if device.type == "cpu" else _on_device(part, folder, device)

    def digest(self) -> str:
        """The sha256 of the encoder file in use (names a cache of its latents)."""
        self.autoencoder("encoder", torch.device("cpu"))
        return _sha256(str(taef2.path("encoder", str(weights_dir(self.pretrained_folder or None)))))

    def run(self, part: str, x: torch.Tensor) -> torch.Tensor:
        """The frozen ``part`` on ``x``; bf16 where fast, unless a caller's autocast decides."""
        net = self.autoencoder(part, x.device)
        x = x.contiguous(memory_format=torch.channels_last)
        if torch.is_autocast_enabled(x.device.type) or not _bf16(x.device.type):
            return net(x).float()
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return net(x).float()

    def analysis(self, image: torch.Tensor) -> torch.Tensor:
        """``[B,3,H,W]`` (sides multiples of 8) → the TAEF2 latent in its unit scale, what
        ``latent_io`` reads and writes (MSE and the rate weight then mean about what they
        mean on pixels)."""
        return self.run("encoder", image) / taef2.UNIT

    @contextlib.contextmanager
    def in_latent_space(self):
        """Within: ``tokenize`` takes, and ``detokenize`` gives, TAEF2 latents (unit scale)."""
        self.latent_io = True
        try:
            yield
        finally:
            self.latent_io = False

    # -- the tokenizer -----------------------------------------------------------------
    def tokenize(self, image):
        if self.latent_io:                                   # image: latent [B, 32, h, w]
            B, _, h, w = image.shape
            g = self.grid(h * self.patch, w * self.patch)
            z = F.pad(image * taef2.UNIT, (0, g.windows_w * self.window - w, 0, g.windows_h * self.window - h),
                      mode="replicate")
        else:
            B, _, H, W = image.shape
            g = self.grid(H, W)
            x = F.pad(image, (0, g.windows_w * g.window_px - W, 0, g.windows_h * g.window_px - H),
                      mode="replicate")
            z = self.run("encoder", x)
        return to_windows(self.stem(z), g, self.window) + self.pos_in, g   # [B, nWh, nWw, S², D]

    def detokenize(self, tokens, grid):
        x = self.noise(self.synthesis[:1](from_windows(tokens, self.window)))
        z = self.synthesis[1:](x)                                # raw TAEF2 latent, padded
        if self.latent_io:
            h, w = -(-grid.height // self.patch), -(-grid.width // self.patch)
            return z[:, :, :h, :w] / taef2.UNIT
        return self.run("decoder", z)[:, :, :grid.height, :grid.width]


@functools.lru_cache(maxsize=4)
def _on_device(part: str, folder: str, device: torch.device) -> nn.Module:
    return copy.deepcopy(taef2.load(part, folder)).to(device)
