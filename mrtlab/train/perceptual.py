"""LPIPS and DISTS as training losses.

The networks are the evaluation's (``mrtlab/eval/metrics.py``): ImageNet backbones read
from local files only (``train.perceptual_weights``, else ``$MRTLAB_WEIGHTS``, else the
torch hub cache ``~/.cache/torch/hub/checkpoints/``), never downloaded. Evaluation skips a
metric whose weights are missing; training cannot train without its loss, so here that is
a one-line MrtlabError naming the missing file.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import MrtlabError
from ..eval import metrics


class PerceptualLoss(nn.Module):
    """``lpips`` (AlexNet, v0.1) or ``dists`` (VGG-16) distance of images in [0, 1], frozen,
    differentiable in the reconstruction."""

    def __init__(self, name: str, folder: str | None = None):
        super().__init__()
        net = {"lpips": metrics.build_lpips, "dists": metrics.build_dists}[name](folder)
        if isinstance(net, metrics.Skipped):
            raise MrtlabError(f"{name.upper()} loss: {net}")
        self.name, self.net = name, net.eval().requires_grad_(False)

    def train(self, mode: bool = True):
        return super().train(False)  # always the metric as calibrated (LPIPS has dropout)

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.name == "lpips":
            return self.net(x_hat, x, normalize=True).mean()
        return self.net(x, x_hat, require_grad=True, batch_average=True)
