"""The bundled models and where a model's files are: read without building any model, so that
``mrtlab info`` and finding the model that wrote a file cost no more than reading metadata."""
from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

from safetensors import SafetensorError, safe_open

from ..errors import MrtlabError

BUNDLED_DIR = Path(str(resources.files("mrtlab.zoo") / "bundled"))
BUNDLED = {
    "default": "Variable-rate MRT trained on 2 CPU cores on BSDS500; see docs/results.md",
    "cnn2d": "Its 2-D CNN-latent partner, trained the same way (the 1-D vs 2-D comparison)",
    "taef2": "MRT in the latent of the frozen pretrained TAEF2 autoencoder, decoded by its GAN-trained "
             "decoder (needs the TAEF2 weights: mrtlab weights); see docs/results.md",
}
DEFAULT_MODEL = "default"
IDENTITY = "identity"  # the metadata key of a model file's identity: JSON {fingerprint, decoder_hash[, trained]}


FIDELITY = "fidelity"
NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def decoder_file(weights: Path, name: str) -> Path:
    """Where decoder ``name`` of the model ``weights`` is: beside it."""
    if not NAME.fullmatch(name):
        raise MrtlabError(f"bad decoder name {name!r}: lowercase letters, digits, '-' and '_'")
    return weights.with_name(f"{weights.stem}.decoder-{name}.safetensors")


def decoders_of(weights: Path) -> list[str]:
    """The model's own decoder, then the names of the decoder files beside it."""
    prefix, suffix = f"{weights.stem}.decoder-", ".safetensors"
    found = (p.name[len(prefix):-len(suffix)] for p in weights.parent.iterdir()
             if p.name.startswith(prefix) and p.name.endswith(suffix)) if weights.parent.is_dir() else ()
    return [FIDELITY, *sorted(n for n in found if NAME.fullmatch(n) and n != FIDELITY)]


def model_files(name_or_path: str) -> tuple[Path, Path]:
    """Bundled name, ``x.safetensors`` or a stem → (weights, recipe)."""
    if name_or_path in BUNDLED:
        stem = BUNDLED_DIR / name_or_path
    else:
        p = Path(name_or_path)
        stem = p.with_suffix("") if p.suffix in (".safetensors", ".yaml") else p
    weights, recipe = stem.with_suffix(".safetensors"), stem.with_suffix(".yaml")
    if not weights.is_file():
        known = ", ".join(sorted(BUNDLED))
        raise MrtlabError(f"model {name_or_path!r} not found: no bundled model of that name "
                          f"({known}) and no file {weights}")
    if not recipe.is_file():
        raise MrtlabError(f"model {weights} has no recipe beside it (expected {recipe})")
    return weights, recipe


def metadata(weights: str | Path) -> dict[str, str]:
    """A model file's metadata, without reading its tensors (``{}`` if unreadable)."""
    try:
        with safe_open(str(weights), "numpy") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError, ValueError):
        return {}


def stored_identity(weights: str | Path) -> dict | None:
    """``{"fingerprint", "decoder_hash"}`` as a model file stores them (``None``: a file written
    before identities were stored, which loading upgrades)."""
    text = metadata(weights).get(IDENTITY)
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def trained_of(weights: str | Path) -> dict:
    """What ``save_model`` recorded of the training (``{}`` for files without it)."""
    meta = metadata(weights)
    try:  # files of an earlier release keep it in a key of its own
        return json.loads(meta["trained"]) if "trained" in meta else (stored_identity(weights) or {}).get("trained", {})
    except ValueError:
        return {}


def bundled_reader(fp: bytes) -> str | None:
    """The name of the bundled model whose coder wrote files of fingerprint ``fp``, if any
    (bundled files always store their identity)."""
    for name in BUNDLED:
        identity = stored_identity(BUNDLED_DIR / f"{name}.safetensors")
        if identity is not None and identity["fingerprint"] == fp.hex():
            return name
    return None


def list_decoders(name_or_path: str | None = None) -> list[str]:
    """The decoders of a model: ``fidelity`` (its own), then those beside its file."""
    return decoders_of(model_files(name_or_path or DEFAULT_MODEL)[0])
