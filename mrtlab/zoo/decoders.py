"""Decoder files: other decoders of a model, read from the same files as its own.

A model ``X.safetensors`` (+ ``X.yaml``) may have decoders beside it,
``X.decoder-NAME.safetensors``: only decoder-side tensors (``sides.decoder_names``), as
float16, trained with the model's coder side frozen (stage 2). Its safetensors metadata
holds the coder fingerprint it was trained on, where it came from and, when known, the
training settings. The model's own decoder is ``fidelity``.
"""
from __future__ import annotations

import json
from pathlib import Path

import safetensors.torch
from safetensors import SafetensorError, safe_open

from ..errors import MrtlabError
from ..files import write_atomic
from ..models.sides import decoder_hash, decoder_names
from .catalog import FIDELITY, decoder_file
from .migrate import upgrade


def load_decoder(model, path: Path, what: str) -> str | None:
    """Lay the tensors of a decoder file over ``model``, its base; a file made for another
    coder, unreadable, or whose tensors do not fit the model's decoder side is one line.
    Returns the decoder hash stored in the file (``None`` in a file written before)."""
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise MrtlabError(f"cannot read {what} ({path}): {e}") from None
    made_for = meta.get("coder_fingerprint")
    if made_for != model.fingerprint.hex():
        raise MrtlabError(f"{what} was trained for coder fingerprint {made_for}, the model's is "
                          f"{model.fingerprint.hex()} ({path} is stale or misplaced)")
    if "decoder_hash" not in meta:  # written before identities were stored
        state = {k: v for k, v in upgrade(model, state, {})[0].items() if k in state or k in decoder_names(model)}
    own, names = model.state_dict(), decoder_names(model)
    missing = sorted(names - set(state))
    unexpected = sorted(set(state) - names)
    reshaped = sorted(k for k in set(state) & names if state[k].shape != own[k].shape)
    if missing or unexpected or reshaped:
        first = (missing or unexpected or reshaped)[0]
        raise MrtlabError(f"{what} does not fit the model's decoder side ({len(missing)} missing, "
                          f"{len(unexpected)} unexpected, {len(reshaped)} of another shape, "
                          f"e.g. {first}): {path}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)
    return meta.get("decoder_hash")


def save_decoder(model, path: Path, about: str, training: dict | None = None, force: bool = False) -> Path:
    """Write the decoder side of ``model`` as float16, with the coder fingerprint it reads
    and its own decoder hash (that of the model it loads as)."""
    names = decoder_names(model)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k in names}
    state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    meta = {"coder_fingerprint": model.fingerprint.hex(), "about": about,
            "decoder_hash": decoder_hash(model, state)}
    if training is not None:
        meta["training"] = json.dumps(training, sort_keys=True)
    write_atomic(path, safetensors.torch.save(state, metadata=meta), force=force)
    return path


def write_decoder(base, base_weights: str | Path, tuned, name: str, force: bool = False,
                  base_label: str | None = None) -> Path:
    """Put the decoder of ``tuned`` (a stage-2 model fine-tuned from ``base``) beside the
    base's file ``base_weights`` as decoder ``name``; refuses a model whose coder side is
    not the base's, and an existing decoder file without ``force``."""
    path = decoder_file(Path(base_weights), name)
    if name == FIDELITY:
        raise MrtlabError(f"{FIDELITY!r} is the model's own decoder; give another name")
    if tuned.fingerprint != base.fingerprint:
        raise MrtlabError(f"{tuned.source} was not fine-tuned from {base_label or base.source}: its "
                          f"coder fingerprint {tuned.fingerprint.hex()} differs from {base.fingerprint.hex()}")
    if path.exists() and not force:
        raise MrtlabError(f"{path} exists; pass --force to replace it")
    return save_decoder(tuned, path, f"decoder of {tuned.source}", run_settings(Path(tuned.source)), force)


def run_settings(weights: Path) -> dict | None:
    """The training settings of the run that exported ``weights`` (``state/recipe.json``
    beside a run's ``model.safetensors``), if it is there."""
    recipe = weights.parent / "state" / "recipe.json"
    if weights.suffix != ".safetensors":   # a bundled model's name, not a run's file
        return None
    try:
        return json.loads(recipe.read_text()).get("train")
    except (OSError, ValueError, AttributeError):
        return None
