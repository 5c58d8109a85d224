"""What differs between the two stages: the forward pass, which weights train, where they start.

Stage 1 trains everything on λ·R + D. Stage 2 freezes the encoder side and the quantizer,
so the symbols of an image (its bitstream) no longer change, and trains the decoder and
the entropy model on those fixed symbols.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import MrtlabError
from ..models.zoo import load_weights


class CodecStep(nn.Module):
    """The one module that DDP wraps, so every trained weight is in one forward pass.

    ``CodecModel.forward`` with what training adds: a frozen encoder side in stage 2 (no
    gradient, evaluation mode), and the bits of the symbols as the entropy model prices
    them with gradient to the encoder (``bits``, only when the rate is weighted) and on
    detached symbols (``em_bits``: the entropy model always learns the distribution of
    the symbols the encoder makes). A variable-rate model keeps a random number of tokens.
    """

    def __init__(self, codec: nn.Module, stage: int, rate_weighted: bool):
        super().__init__()
        if stage not in (1, 2):
            raise MrtlabError(f"train.stage must be 1 or 2, got {stage}")
        self.codec, self.stage, self.rate_weighted = codec, stage, rate_weighted
        self.frozen = frozen_modules(codec) if stage == 2 else []

    def forward(self, x: torch.Tensor) -> dict:
        codec, k = self.codec, self.codec.training_tokens()
        for m in self.frozen:  # every call: a ``train()`` anywhere (validation, export) resets them
            m.eval()
        with torch.set_grad_enabled(self.stage == 1 and torch.is_grad_enabled()):
            y, grid = codec.encode(x)
            q = codec.quantizer(codec.keep(y, k))
        layout = codec.layout(grid, k)
        out = {"x_hat": codec.decode(q, grid), "q": q, "tokens": k,
               "em_bits": codec.entropy_model(q.detach(), layout)}
        if self.stage == 1 and self.rate_weighted:
            out["bits"] = codec.entropy_model(q, layout)
        return out


def frozen_modules(model: nn.Module) -> list[nn.Module]:
    """The quantizer and the outermost modules whose weights are all frozen (stage 2's
    encoder side): they run in evaluation mode."""
    def outermost(m: nn.Module) -> list[nn.Module]:
        params = list(m.parameters())
        if params and not any(p.requires_grad for p in params):
            return [m]
        return [f for child in m.children() for f in outermost(child)]

    return [model.quantizer] + [m for m in outermost(model) if m is not model.quantizer]


def encoder_side(model: nn.Module, crop: int) -> list[nn.Parameter]:
    """The parameters the symbols depend on: those in the graph of ``encode`` (traced on
    one crop, so any model and tokenizer is covered), plus the quantizer's."""
    params = [p for p in model.parameters() if p.requires_grad]
    y, _ = model.encode(torch.rand(1, 3, crop, crop, device=params[0].device))
    grads = torch.autograd.grad(y.float().sum(), params, allow_unused=True)
    ids = {id(p) for p, g in zip(params, grads) if g is not None}
    ids |= {id(p) for p in model.quantizer.parameters()}
    return [p for p in model.parameters() if id(p) in ids]


def freeze_encoder(model: nn.Module, crop: int) -> int:
    """Stage 2: stop every encoder-side weight; returns how many tensors were frozen."""
    frozen = encoder_side(model, crop)
    for p in frozen:
        p.requires_grad_(False)
    return len(frozen)


def start_stage(model: nn.Module, cfg) -> list[str]:
    """Load ``train.init`` if given; in stage 2 (which needs it) freeze the encoder side.
    Returns the tensors a warm start (``init_partial``) left fresh."""
    fresh = load_init(model, cfg.init, cfg.init_partial) if cfg.init else []
    if cfg.stage == 2:
        if not cfg.init:
            raise MrtlabError("stage 2 starts from a stage-1 model: set train.init")
        if cfg.align:
            raise MrtlabError("train.align is a stage-1 loss (stage 2 freezes the encoder)")
        freeze_encoder(model, cfg.crop)
    return fresh


def load_init(model: nn.Module, path: str | Path, partial: bool = False) -> list[str]:
    """Start from an exported model (``x.safetensors``), a run folder (its exported
    ``model.safetensors``) or a checkpoint folder (``state/``: the raw weights).
    ``partial``: a warm start; tensors the file lacks (e.g. a new entropy model) start fresh."""
    path = Path(path)
    weights = path / "model.safetensors" if path.is_dir() else path.with_suffix(".safetensors")
    return load_weights(model, weights, "initial weights", prefix="codec.",  # checkpoints wrap the codec
                        partial=partial)
