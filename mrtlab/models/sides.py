"""The two sides of a model: the coder side writes a file's bits, the decoder side only reads them.

The coder side is every tensor an image's symbols and their coding depend on: the
encoder side (found by tracing ``encode``), the quantizer and the entropy model. Stage 2
freezes it, the fingerprint in each file hashes it, and a decoder file holds the rest.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn


def trace_size(model: nn.Module) -> int:
    """Side in pixels of the image traced: 2×2 windows. With one window a global mixer's
    decay weights have no effect on the latent (RWKV-6's, measured), so they would be
    missed."""
    return 2 * model.grid(1, 1).window_px


def encoder_side(model: nn.Module, size: int | None = None) -> list[torch.Tensor]:
    """The parameters and floating-point buffers in the graph of ``encode`` (traced on a
    ``size``-px image, by default :func:`trace_size`), whatever their ``requires_grad``;
    the model's modes, flags and random state are left as they were. A tokenizer in a
    frozen autoencoder's latent (``latent_channels``) is traced from that latent: the
    autoencoder is not part of the model (its recipe pins its files), and a machine that
    only decodes need not have its encoder."""
    tensors = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    flags = [t.requires_grad for t in tensors]
    modes = [(m, m.training) for m in model.modules()]
    size = size or trace_size(model)
    tokenizer = getattr(model, "tokenizer", None)
    latent = getattr(tokenizer, "latent_channels", 0)   # traced in the latent of a frozen autoencoder
    shape = (1, latent, size // tokenizer.patch, size // tokenizer.patch) if latent else (1, 3, size, size)
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0)).to(tensors[0].device)
    try:
        model.eval()
        for t in tensors:
            t.requires_grad_(True)
        with torch.enable_grad(), (tokenizer.in_latent_space() if latent else contextlib.nullcontext()):
            y, _ = model.encode(x)
            grads = torch.autograd.grad(y.float().sum(), tensors, allow_unused=True)
    finally:
        for t, flag in zip(tensors, flags):
            t.requires_grad_(flag)
        for m, training in modes:
            m.training = training
    return [t for t, g in zip(tensors, grads) if g is not None]


def coder_side(model: nn.Module) -> list[torch.Tensor]:
    """The tensors of the coder side: the encoder side, everything of the quantizer and the
    entropy model, and any integer tensor of the state dict (no trace sees one; counting
    it in can only refuse a file, never misdecode one)."""
    tensors = {id(t): t for t in encoder_side(model)}
    for part in (model.quantizer, model.entropy_model):
        tensors |= {id(t): t for t in part.state_dict(keep_vars=True).values()}
    tensors |= {id(t): t for t in model.state_dict(keep_vars=True).values() if not t.is_floating_point()}
    return list(tensors.values())


def coder_names(model: nn.Module) -> set[str]:
    """The state-dict names of the coder side."""
    coder = {id(t) for t in coder_side(model)}
    return {name for name, t in model.state_dict(keep_vars=True).items() if id(t) in coder}


def decoder_names(model: nn.Module) -> set[str]:
    """The state-dict names of the decoder side: what only reads the symbols."""
    return set(model.state_dict()) - coder_names(model)
