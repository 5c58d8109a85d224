"""The two sides of a model: the coder side writes a file's bits, the decoder side only reads them.

The coder side is every tensor an image's symbols and their coding depend on: the
encoder side (the modules each model and tokenizer declare in ``coder_modules`` and
``analysis_modules``), the quantizer and the entropy model. Stage 2 freezes it, the
fingerprint in each file hashes it, and a decoder file holds the rest. The test suite checks
each declaration against a trace of ``encode`` (tests/helpers.py ``traced_encoder_side``).
"""
from __future__ import annotations

import hashlib
import json

import torch
from torch import nn


def coder_names(model: nn.Module) -> set[str]:
    """The state-dict names of the coder side: under the model's ``coder_modules()``, the
    quantizer and the entropy model, and any integer tensor (counting one in can only refuse
    a file, never misdecode one)."""
    prefixes = (*model.coder_modules(), "quantizer", "entropy_model")
    state = model.state_dict(keep_vars=True)
    return {name for name, t in state.items()
            if any(name == p or name.startswith(p + ".") for p in prefixes) or not t.is_floating_point()}


def decoder_names(model: nn.Module) -> set[str]:
    """The state-dict names of the decoder side: what only reads the symbols."""
    return set(model.state_dict()) - coder_names(model)


def coder_side(model: nn.Module) -> list[torch.Tensor]:
    """The tensors of the coder side (what stage 2 freezes)."""
    names, state = coder_names(model), model.state_dict(keep_vars=True)
    return [state[n] for n in sorted(names)]


def digest(tensors: dict[str, torch.Tensor], h=None) -> bytes:
    """4 bytes of SHA-256 over each tensor's name and bytes, in name order, after what ``h``
    already holds: the fingerprint (``h`` holding the recipe) and the decoder hash."""
    h = h or hashlib.sha256()
    for name, t in sorted(tensors.items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.digest()[:4]


def fingerprint(model: nn.Module, model_cfg: dict) -> bytes:
    """4 bytes that identify what writes a file: the recipe's model section (as its file
    holds it) and every coder-side tensor. Computed once, when a model file is written, and
    stored in it (``zoo``); a decoder fine-tuned on frozen coder tensors reads the same files,
    so its tensors are left out."""
    state = model.state_dict()
    h = hashlib.sha256(json.dumps(model_cfg, sort_keys=True).encode())
    return digest({n: state[n] for n in coder_names(model)}, h)


def decoder_hash(model: nn.Module, state: dict[str, torch.Tensor] | None = None) -> str:
    """8 hex digits over the decoder-side tensors (of ``state`` if given, in the model's
    dtypes: a float16 file hashes as it loads): tells decoders apart in listings."""
    own = model.state_dict()
    state = own if state is None else state
    return digest({n: state[n].to(own[n].dtype) for n in decoder_names(model)}).hex()
