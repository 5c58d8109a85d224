"""The schedules a recipe's ``train:`` section implies: the learning rate and the rate weight."""
from __future__ import annotations

import math

from ..config import TrainConfig

__all__ = ["TrainConfig", "lr_factor", "rate_weight"]


def rate_weight(step: int, cfg: TrainConfig) -> float:
    """λ at ``step`` (from 1): a linear warm-up lets every latent token learn to carry its own
    part of the image before the rate term can price copies of the first token at ~0 bits."""
    return cfg.rate_weight * min(1.0, step / cfg.rate_warmup) if cfg.rate_warmup else cfg.rate_weight


def lr_factor(step: int, cfg: TrainConfig, cpu_s: float = 0.0) -> float:
    """Linear warmup, then cosine decay to 5% of the peak (``step`` counts from 0). With a
    ``cpu_budget`` the decay follows the CPU seconds spent instead of the steps, so that runs
    of different cost per step all end their schedule on the same budget. A run continued
    from ``init_step`` warms up again over ``warmup`` steps: its optimizer's moments are new."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    t = cpu_s / cfg.cpu_budget if cfg.cpu_budget else (step - cfg.warmup) / max(cfg.steps - cfg.warmup, 1)
    rewarm = min(1.0, (step - cfg.init_step + 1) / cfg.warmup) if cfg.init_step else 1.0
    return rewarm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))
