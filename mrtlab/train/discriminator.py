"""PatchGAN discriminator with hinge losses, for stage 2's adversarial term."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchGAN(nn.Module):
    """Strided convolutions → one real/fake score per ~70×70-pixel patch (pix2pix's
    receptive field). Spectral norm instead of batch norm: no running statistics to
    keep in step across processes, and a well-behaved hinge game."""

    def __init__(self, width: int = 64, layers: int = 3):
        super().__init__()
        mods, c_in = [], 3
        for i in range(layers + 1):
            c_out = width * 2 ** min(i, 3)
            mods += [spectral_norm(nn.Conv2d(c_in, c_out, 4, stride=2 if i < layers else 1, padding=1)),
                     nn.LeakyReLU(0.2)]
            c_in = c_out
        mods.append(spectral_norm(nn.Conv2d(c_in, 1, 4, padding=1)))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)


def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def hinge_g_loss(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()
