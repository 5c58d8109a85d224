"""The distortion side of the loss: pixel, structural and perceptual terms, weighted."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import need
from ..eval.metrics import MS_SSIM_MIN_SIDE
from .settings import TrainConfig


def ms_ssim_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """1 − MS-SSIM; crops too small for 5 scales use single-scale SSIM instead."""
    lib = need("pytorch_msssim")
    fn = lib.ms_ssim if min(x.shape[-2:]) >= MS_SSIM_MIN_SIDE else lib.ssim
    with torch.autocast(x.device.type, enabled=False):  # bf16 would round SSIM's statistics
        return 1 - fn(x_hat.float(), x.float(), data_range=1.0)


class Distortion(nn.Module):
    """``Σ weight·term`` over MSE, 1−MS-SSIM, LPIPS and DISTS; zero weights cost nothing
    (their networks are not even built, so their weights are only needed when used)."""

    def __init__(self, cfg: TrainConfig):
        super().__init__()
        from .perceptual import PerceptualLoss

        self.weights = {k: w for k in ("mse", "msssim", "lpips", "dists") if (w := getattr(cfg, k))}
        if cfg.msssim:
            need("pytorch_msssim")  # a missing package stops the run before the first step
        folder = cfg.perceptual_weights or None
        self.lpips = PerceptualLoss("lpips", folder) if cfg.lpips else None
        self.dists = PerceptualLoss("dists", folder) if cfg.dists else None

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        x_hat, x = x_hat.float(), x.float()
        terms = {"mse": F.mse_loss(x_hat, x)}  # always reported (PSNR)
        if "msssim" in self.weights:
            terms["msssim"] = ms_ssim_loss(x_hat, x)
        if self.lpips is not None:
            terms["lpips"] = self.lpips(x_hat, x)
        if self.dists is not None:
            terms["dists"] = self.dists(x_hat, x)
        total = sum(w * terms[k] for k, w in self.weights.items())
        return torch.as_tensor(total, device=x.device), terms
