"""Distributions over each channel's finite alphabet ``{0, …, levels[c]-1}``.

A conditional entropy model predicts ``params`` ``[..., C, P]``. ``log_probs`` (PyTorch,
differentiable) prices symbols in training; ``freq`` (float64 NumPy) builds the integer
coding tables. ``categorical`` suits FSQ/VQ symbols; ``gaussian`` and ``logistic`` are the
discretized densities usual for scalar-quantized latents (bins of width 1 around each
symbol, the tails folded into the end symbols).

``freq`` first rounds the parameters to multiples of 1/GRID. The encoder (one parallel
pass) and the decoder (step by step) compute the parameters along different float64
paths that agree to ~1e-15; after the rounding they hold the same numbers (a difference
survives only if a parameter lies within ~1e-15 of a grid boundary), and the tables are
then computed by one function from identical inputs.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .base import integer_pmfs, level_mask

GRID = 64
LOG_SCALE_RANGE = (-3.0, 5.0)
MIN_PROB = 1e-9


def to_grid(params: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(params, dtype=np.float64) * GRID) / GRID


class Distribution(torch.nn.Module):
    params: int  # P: parameters per channel

    def __init__(self, levels: list[int]):
        super().__init__()
        self.levels = list(levels)
        self.register_buffer("mask", level_mask(levels), persistent=False)
        self.np_mask = self.mask.numpy()   # the coding side's copy (read once per symbol group)

    def log_probs(self, params: torch.Tensor) -> torch.Tensor:
        """``params [..., C, P]`` → log-probabilities ``[..., C, max(levels)]`` (PyTorch)."""
        raise NotImplementedError

    def freq(self, params: np.ndarray, channels: slice = slice(None)) -> np.ndarray:
        """``params [..., C', P]`` of ``channels`` → integer frequency rows ``[N, max(levels)]``."""
        logp = self._np_log_probs(to_grid(params), self.np_mask[channels])
        return integer_pmfs(logp.reshape(-1, logp.shape[-1]))

    def _np_log_probs(self, params: np.ndarray, mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Categorical(Distribution):
    def __init__(self, levels):
        super().__init__(levels)
        self.params = max(levels)

    def log_probs(self, params):
        return params.masked_fill(~self.mask.to(params.device), float("-inf")).log_softmax(-1)

    def _np_log_probs(self, params, mask):
        return np.where(mask, params, -np.inf)   # integer_pmfs normalizes


class Discretized(Distribution):
    """Mean and log-scale per channel, in symbol units; ``cdf`` is the subclass's."""
    params = 2

    def log_probs(self, params):
        return self._log_probs(torch, params, self.mask.to(params.device))

    def _np_log_probs(self, params, mask):
        return self._log_probs(np, params, mask)

    def _log_probs(self, xp, params, mask):
        """Written once for torch and numpy (``xp``): both run the same formula. Every CDF
        is taken at a finite point (an infinite bound would make 0·∞ in the backward pass);
        the tails are set afterwards."""
        mean, log_scale = params[..., 0:1], params[..., 1:2]
        scale = xp.exp(xp.clip(log_scale, *LOG_SCALE_RANGE))
        k = mask.cumsum(-1) - 1.0                    # symbol index (on the mask's device)
        n = mask.sum(-1, keepdims=True)
        cdf = self.cdf_torch if xp is torch else self.cdf_numpy
        # right of the mean, upper-tail probabilities 1 − F(z) = F(−z) keep their precision
        right = mean < k
        sign = 1.0 - 2.0 * right
        lo = cdf(sign * (k - 0.5 - mean) / scale)
        hi = cdf(sign * (k + 0.5 - mean) / scale)
        lo = xp.where(k == 0, right + 0.0 * lo, lo)          # the first symbol takes (−∞, ½)
        hi = xp.where(k == n - 1, ~right + 0.0 * hi, hi)     # the last one (n − 1.5, ∞)
        p = xp.clip(sign * (hi - lo), MIN_PROB, None)
        p = xp.where(mask, p, 0.0 * p)
        total = p.sum(-1, keepdims=True)
        # log of 1 on impossible symbols, then −inf: no 1/0 in the backward pass
        return xp.where(mask, xp.log(xp.where(mask, p, total) / total), -math.inf)


def _ndtr(x):
    from scipy.special import ndtr  # imported when used: 0.13 s of every command's start-up otherwise

    return ndtr(x)


def _expit(x):
    from scipy.special import expit

    return expit(x)


class Gaussian(Discretized):
    cdf_numpy = staticmethod(_ndtr)
    cdf_torch = staticmethod(torch.special.ndtr)


class Logistic(Discretized):
    cdf_numpy = staticmethod(_expit)
    cdf_torch = staticmethod(torch.sigmoid)


DISTRIBUTIONS = {"categorical": Categorical, "gaussian": Gaussian, "logistic": Logistic}


def make_distribution(name: str, levels: list[int]) -> Distribution:
    if name not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {name!r}; choose from {sorted(DISTRIBUTIONS)}")
    return DISTRIBUTIONS[name](levels)
