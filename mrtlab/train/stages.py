"""What differs between the two stages: the forward pass, which weights train, where they start.

Stage 1 trains everything on λ·R + D. Stage 2 freezes the coder side (the encoder side,
the quantizer and the entropy model: everything that writes a file), so every image keeps
its bitstream and files of the stage-1 model decode with the stage-2 decoder, and trains
the decoder on those fixed symbols.
"""
from __future__ import annotations

import contextlib
import fnmatch
import json
from pathlib import Path

import torch
from torch import nn

from ..config import full_model_section, load_recipe
from ..errors import MrtlabError
from ..models.sides import coder_side
from ..tokenizers.conv_window import NoiseInjection
from ..zoo.model_files import load_weights
from .losses import pairs, token_similarity


class CodecStep(nn.Module):
    """The one module that DDP wraps, so every trained weight is in one forward pass.

    ``CodecModel.forward`` with what training adds. Stage 1: the bits of the symbols as
    the entropy model prices them, with gradient to the encoder (``bits``, only when the
    rate is weighted) and on detached symbols (``em_bits``: the entropy model learns the
    distribution of the symbols the encoder makes). Stage 2: a frozen coder side (no
    gradient, evaluation mode) and the bits of the fixed symbols for the log
    (``coded_bits``). A variable-rate model keeps a random number of tokens. With
    ``decorrelate``, stage 1 also measures how alike a window's latent tokens are
    (``similarity``, on all L tokens before quantization), for the loss to push down.
    With ``latent_space`` (a tokenizer in a pretrained autoencoder's latent, stage 1), ``x``
    and ``x_hat`` are that latent (``train.latent_space``). ``pixels`` counts the image's
    pixels either way, for bits per pixel.
    """

    def __init__(self, codec: nn.Module, stage: int, rate_weighted: bool, decorrelate: bool = False,
                 latent_space: bool = False):
        super().__init__()
        if stage not in (1, 2):
            raise MrtlabError(f"train.stage must be 1 or 2, got {stage}")
        self.codec, self.stage, self.rate_weighted = codec, stage, rate_weighted
        self.decorrelate = decorrelate and stage == 1 and codec.latent_tokens > 1
        self.frozen = frozen_modules(codec) if stage == 2 else []
        self.latent_space = latent_space

    def forward(self, x: torch.Tensor, keep_all: bool = False) -> dict:
        codec = self.codec
        k = codec.latent_tokens if keep_all else codec.training_tokens()
        for m in self.frozen:  # every call: a ``train()`` anywhere (validation, export) resets them
            m.eval()
        with (codec.tokenizer.in_latent_space() if self.latent_space else contextlib.nullcontext()):
            with torch.set_grad_enabled(self.stage == 1 and torch.is_grad_enabled()):
                y, grid = codec.encode(x)
                q = codec.quantizer(codec.keep(y, k))
            x_hat = codec.decode(q, grid)
        layout = codec.layout(grid, k)
        out = {"x_hat": x_hat, "q": q, "tokens": k, "pixels": x.shape[0] * grid.height * grid.width}
        if self.stage == 2:
            with torch.no_grad():
                out["coded_bits"] = codec.entropy_model(q, layout)
            return out
        if self.decorrelate:
            out["similarity"] = pairs(token_similarity(y, codec.latent_tokens)).mean()
        out["em_bits"] = codec.entropy_model(q.detach(), layout)
        if self.rate_weighted:
            out["bits"] = codec.entropy_model(q, layout)
        return out


def frozen_modules(model: nn.Module) -> list[nn.Module]:
    """The quantizer and the outermost modules whose weights are all frozen (stage 2's
    coder side): they run in evaluation mode."""
    def outermost(m: nn.Module) -> list[nn.Module]:
        params = list(m.parameters())
        if params and not any(p.requires_grad for p in params):
            return [m]
        return [f for child in m.children() for f in outermost(child)]

    return [model.quantizer] + [m for m in outermost(model) if m is not model.quantizer]


def freeze_coder(model: nn.Module) -> int:
    """Stage 2: stop every coder-side weight; returns how many tensors were frozen."""
    frozen = {id(t) for t in coder_side(model)}
    params = [p for p in model.parameters() if id(p) in frozen]
    for p in params:
        p.requires_grad_(False)
    return len(params)


def freeze_matching(model: nn.Module, patterns: list[str]) -> None:
    """Stage 2: also stop the decoder tensors whose names match one of ``patterns``
    (``fnmatch``, e.g. ``tokenizer.synthesis.8.*``); a pattern matching no trainable tensor
    is an error (a typo would otherwise train what it meant to keep)."""
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    for pattern in patterns:
        hits = fnmatch.filter(trainable, pattern)
        if not hits:
            raise MrtlabError(f"train.keep: {pattern!r} matches no trainable decoder tensor")
        for name in hits:
            trainable[name].requires_grad_(False)


def noise_injections(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, NoiseInjection)]


def draw_noise(model: nn.Module) -> None:
    """``train.decoder_noise``: the decoder's noise injections draw fresh noise at every
    training step, so that their strengths learn."""
    found = noise_injections(model)
    if not found:
        raise MrtlabError("train.decoder_noise: this model's decoder adds no noise "
                          "(the conv_window and taef2_window tokenizers do)")
    for m in found:
        m.drawing = True


def hold_noise(model: nn.Module) -> None:
    """Without ``train.decoder_noise`` the strengths get no gradient: keep them out of the
    optimizer, so that a checkpoint of a model without noise still resumes."""
    for m in noise_injections(model):
        m.strength.requires_grad_(False)


def start_stage(model: nn.Module, cfg) -> list[str]:
    """Load ``train.init`` if given; let the decoder's noise train if asked; in stage 2
    (which needs ``init``) freeze the coder side and the decoder tensors ``train.keep``
    names. Returns the tensors a warm start (``init_partial``) left fresh."""
    fresh = load_init(model, cfg.init, cfg.init_partial) if cfg.init else []
    if cfg.decoder_noise:
        draw_noise(model)
    else:
        hold_noise(model)
    if cfg.stage == 2:
        if not cfg.init:
            raise MrtlabError("stage 2 starts from a stage-1 model: set train.init")
        if cfg.align:
            raise MrtlabError("train.align is a stage-1 loss (stage 2 freezes the encoder)")
        freeze_coder(model)
        freeze_matching(model, cfg.keep)
    elif cfg.keep:
        raise MrtlabError("train.keep is for stage 2 (stage 1 trains every tensor)")
    return fresh


def exported_section(model_cfg: dict, cfg) -> dict:
    """The model section a run exports its model under: in stage 2, that of ``train.init``'s
    file when both build the same model, so that the export's fingerprint is the stage-1
    model's even where this mrtlab writes the section otherwise (a newer version adds
    arguments with their defaults) and files of the stage-1 model decode with it."""
    if cfg.stage != 2 or not cfg.init:
        return model_cfg
    path = Path(cfg.init)
    recipe = path / "model.yaml" if path.is_dir() else path.with_suffix(".yaml")
    try:
        init_cfg = load_recipe(recipe, expand=False).get("model") if recipe.is_file() else None
        same = isinstance(init_cfg, dict) and (json.dumps(full_model_section(init_cfg), sort_keys=True)
                                               == json.dumps(full_model_section(model_cfg), sort_keys=True))
    except MrtlabError:  # a recipe this mrtlab cannot read: the run's own section
        same = False
    return init_cfg if same else model_cfg


def load_init(model: nn.Module, path: str | Path, partial: bool = False) -> list[str]:
    """Start from an exported model (``x.safetensors``), a run folder (its exported
    ``model.safetensors``) or a checkpoint folder (``state/``: the raw weights).
    ``partial``: a warm start; tensors the file lacks (e.g. a new entropy model) start fresh."""
    path = Path(path)
    weights = path / "model.safetensors" if path.is_dir() else path.with_suffix(".safetensors")
    return load_weights(model, weights, "initial weights", prefix="codec.",  # checkpoints wrap the codec
                        partial=partial)[1]
