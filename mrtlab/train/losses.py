"""The distortion side of the loss: pixel, structural and perceptual terms, weighted."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import MrtlabError, need
from ..eval.metrics import MS_SSIM_MIN_SIDE
from .perceptual import PerceptualLoss
from .settings import TrainConfig


def ms_ssim_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """1 − MS-SSIM; crops too small for 5 scales use single-scale SSIM instead."""
    lib = need("pytorch_msssim")
    fn = lib.ms_ssim if min(x.shape[-2:]) >= MS_SSIM_MIN_SIDE else lib.ssim
    with torch.autocast(x.device.type, enabled=False):  # bf16 would round SSIM's statistics
        return 1 - fn(x_hat.float(), x.float(), data_range=1.0)


def centred_tokens(y: torch.Tensor, tokens: int) -> torch.Tensor:
    """``[B, windows·tokens, C]`` (window-major) → each token's channels over the windows of
    the batch, minus their mean: ``[tokens, C, windows]`` in float32."""
    z = y.float().reshape(-1, tokens, y.shape[-1])                     # [windows, tokens, C]
    return (z - z.mean(0)).permute(1, 2, 0)


def token_redundancy(y: torch.Tensor, tokens: int) -> torch.Tensor:
    """How much the latent tokens of a window repeat each other, from the windows of a
    batch: ``[tokens, tokens]``, entry i, j = the share of token j's variance that a linear
    function of token i explains (R²). 1 when token j is a linear map of token i (a copy,
    even through different projections), 0 when they are uncorrelated; the diagonal is 1.

    Args:
        y: ``[B, windows·tokens, C]``, window-major (a window's tokens one after another).
        tokens: latent tokens per window.
    """
    with torch.autocast(y.device.type, enabled=False):
        z = centred_tokens(y, tokens)                                  # [tokens, C, windows]
        C, n = z.shape[1:]
        cov = z @ z.transpose(1, 2) / n                                # [tokens, C, C]
        eps = 1e-4 * cov.diagonal(dim1=1, dim2=2).mean() + 1e-8        # constant channels
        chol = torch.linalg.cholesky(cov + eps * torch.eye(C, device=y.device))
        white = torch.linalg.solve_triangular(chol, z, upper=False)    # identity covariance
        explained = torch.einsum("icn,jdn->ijcd", white, z).pow(2).sum((2, 3)) / n ** 2
        return explained / (z.pow(2).sum((1, 2)) / n + 1e-12)


def token_similarity(y: torch.Tensor, tokens: int) -> torch.Tensor:
    """The RV coefficient of every two latent tokens of a window, from the windows of a
    batch: ``[tokens, tokens]``, ‖Cov(i, j)‖²_F / (‖Cov(i, i)‖_F ‖Cov(j, j)‖_F), a squared
    correlation of vectors (1 for copies up to a rotation and a scale, 0 for uncorrelated
    tokens). Unlike :func:`token_redundancy` it inverts no covariance, so its gradient stays
    tame: the training loss (``train.token_decorrelation``) uses it."""
    with torch.autocast(y.device.type, enabled=False):
        z = centred_tokens(y, tokens)                                  # [tokens, C, windows]
        cross = torch.einsum("icn,jdn->ijcd", z, z).pow(2).sum((2, 3))  # ‖Cov(i, j)‖²_F · n²
        own = cross.diagonal().sqrt()
        return cross / (own[:, None] * own[None, :] + 1e-12)


def pairs(matrix: torch.Tensor) -> torch.Tensor:
    """The off-diagonal entries of a square matrix (every ordered pair i ≠ j)."""
    return matrix[~torch.eye(len(matrix), dtype=torch.bool, device=matrix.device)]


def window_pattern(x_hat: torch.Tensor, x: torch.Tensor, period: int) -> torch.Tensor:
    """The mean square of the error's average over all ``period``-px windows: the part of
    the error that repeats in every window (each window's edges or texture drawn alike).
    MSE holds it once, unweighted; the eye sees a repeated pattern far sooner than noise."""
    B, C, H, W = x.shape
    h, w = H // period, W // period
    r = (x_hat - x)[..., :h * period, :w * period].reshape(B, C, h, period, w, period)
    return r.mean(dim=(2, 4)).square().mean()


def phase_pattern(x_hat: torch.Tensor, x: torch.Tensor, phase: int, region: int) -> torch.Tensor:
    """The mean square of the error's average over the ``phase``-px blocks of each
    ``region``-px window, less that window's mean: a fine mesh of period ``phase`` (the
    upsamplings' phases) that may change in strength and sign from window to window, where
    ``window_pattern`` (one average over the whole crop) lets it cancel out."""
    B, C, H, W = x.shape
    h, w, n = H // region, W // region, region // phase
    r = (x_hat - x)[..., :h * region, :w * region].reshape(B, C, h, n, phase, w, n, phase)
    mesh = r.mean(dim=(3, 6))  # B, C, h, phase, w, phase
    return (mesh - mesh.mean(dim=(3, 5), keepdim=True)).square().mean()


def lowpass_mse(x_hat: torch.Tensor, x: torch.Tensor, factor: int = 16) -> torch.Tensor:
    """MSE of both images area-downsampled by ``factor``: the colour and layout error that
    ``mrtlab eval``'s low-pass PSNR measures, which DISTS and LPIPS forgive."""
    f = min(factor, *x.shape[-2:])
    return F.mse_loss(F.avg_pool2d(x_hat, f), F.avg_pool2d(x, f))


class Distortion(nn.Module):
    """``Σ weight·term`` over MSE, 1−MS-SSIM, LPIPS, DISTS, low-pass MSE, the window and phase patterns; zero
    weights cost nothing (their networks are not even built, so their weights are only
    needed when used). ``period``: the model's largest grid in pixels (MRT: its window; a
    2-D latent: its cell), for ``window_pattern`` and ``phase_pattern``."""

    def __init__(self, cfg: TrainConfig, period: int = 0):
        super().__init__()
        names = ("mse", "msssim", "lpips", "dists", "lowpass", "window_pattern", "phase_pattern")
        self.weights = {k: w for k in names if (w := getattr(cfg, k))}
        for k in ("window_pattern", "phase_pattern"):
            if getattr(cfg, k) and period < 2:
                raise MrtlabError(f"train.{k} needs a model with a grid of windows or cells")
        if cfg.phase_pattern and (cfg.phase_period < 2 or period % cfg.phase_period):
            raise MrtlabError(f"train.phase_period must divide the model's window of {period} px "
                              f"and be at least 2, not {cfg.phase_period}")
        self.period, self.phase = period, cfg.phase_period
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
        if "lowpass" in self.weights:
            terms["lowpass"] = lowpass_mse(x_hat, x)
        if "window_pattern" in self.weights:
            terms["window_pattern"] = window_pattern(x_hat, x, self.period)
        if "phase_pattern" in self.weights:
            terms["phase_pattern"] = phase_pattern(x_hat, x, self.phase, self.period)
        total = sum(w * terms[k] for k, w in self.weights.items())
        return torch.as_tensor(total, device=x.device), terms
