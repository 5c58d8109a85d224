"""The ``train:`` section of a recipe, and the learning-rate schedule it implies."""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class TrainConfig:
    """Training settings; docs/training.md explains each one.

    ``batch_size`` is per process and micro-batch: one optimizer step sees
    ``batch_size × grad_accum × processes`` crops. ``steps`` counts optimizer steps.
    """
    # data
    data: str | list[str] = ""   # a folder or a list of folders (required)
    crop: int = 256
    batch_size: int = 8
    workers: int = 0
    val_data: str = ""
    val_every: int = 0
    val_images: int = 8
    # optimisation
    steps: int = 6000
    cpu_budget: float = 0.0  # process CPU seconds after which the run ends (0: none)
    lr: float = 6e-4
    warmup: int = 300
    weight_decay: float = 0.01
    grad_accum: int = 1
    grad_clip: float = 1.0
    ema: float = 0.0
    mixed_precision: str = "auto"  # bf16 where the device runs it fast (train/precision.py)
    channels_last: bool = True  # convolutions in channels-last memory (1.10× the default recipe's crops/s)
    seed: int = 0
    # stages and losses: loss = rate_weight·bpp + Σ weight·term
    stage: int = 1
    latent_space: bool = False  # stage 1 in a pretrained autoencoder's latent (tokenizers/taef2_window.py)
    latent_cache: str = ""  # folder for the training images' latents, computed once (default: out)
    init: str = ""
    decoder_noise: bool = False  # train the strengths of the noise the synthesis adds (tokenizers/conv_window.py)
    keep: list[str] = field(default_factory=list)  # stage 2: decoder tensors (fnmatch names) kept as initialised
    init_partial: bool = False  # stage 1: load only the tensors of ``init`` that fit (warm start)
    init_step: int = 0  # a lost run's step at which ``init`` was exported: the schedule goes on from there
    init_cpu_s: float = 0.0  # and the process CPU seconds it had spent (counts towards ``cpu_budget``)
    rate_weight: float = 0.0
    rate_warmup: int = 0  # steps over which the rate weight grows linearly from 0
    nested_dropout_start: int = 0  # steps during which a variable-rate model keeps all L tokens
    token_decorrelation: float = 0.0  # weight of the latent tokens' likeness (losses.token_similarity)
    mse: float = 1.0
    msssim: float = 0.0
    lpips: float = 0.0
    dists: float = 0.0
    window_pattern: float = 0.0  # weight of the error repeated in every window (losses.window_pattern)
    phase_pattern: float = 0.0  # weight of a fine mesh in the error, window by window (losses.phase_pattern)
    phase_period: int = 4  # its period in pixels (4: the phases of the last two ×2 pixel-shuffles; 8: all three)
    perceptual_weights: str = ""
    adv: float = 0.0
    adv_start: int = 0
    disc_lr: float = 2e-4
    disc_width: int = 64
    teacher: str = ""
    align: float = 0.0
    # output
    out: str = "runs/model"
    force: bool = False  # a fresh run may overwrite the log and model of another run in ``out``
    save_every: int = 200
    log_every: int = 10
    tensorboard: bool = True


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
