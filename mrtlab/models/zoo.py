"""Model files: safetensors weights + the recipe's model section (YAML), never pickle."""
from __future__ import annotations

import copy
import functools
import hashlib
import json
from importlib import resources
from pathlib import Path

import torch
import yaml
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..errors import MrtlabError
from .base import neutral_tensors
from .decoders import FIDELITY, decoder_file, decoders_of, load_decoder
from .sides import coder_names, decoder_names

BUNDLED_DIR = Path(str(resources.files("mrtlab.models") / "bundled"))
BUNDLED = {
    "default": "Variable-rate MRT trained on 2 CPU cores on BSDS500; see docs/results.md",
    "cnn2d": "Its 2-D CNN-latent partner, trained the same way (the 1-D vs 2-D comparison)",
    "taef2": "MRT in the latent of the frozen pretrained TAEF2 autoencoder, decoded by its GAN-trained "
             "decoder (needs the TAEF2 weights: mrtlab weights); see docs/results.md",
}
DEFAULT_MODEL = "default"


def fingerprint(model: torch.nn.Module, model_cfg: dict, saved_names: dict[str, str] | None = None) -> bytes:
    """4 bytes that identify what writes a file: the recipe and every coder-side tensor
    (``sides.coder_names``: encoder side, quantizer, entropy model). Written into each file;
    a decoder fine-tuned on frozen coder tensors reads the same files, so its tensors are
    left out.

    Tensors are taken under the names their file stores them by (``saved_names``: a
    name now → the file's name), so a parameter renamed since keeps its files decoding."""
    h = hashlib.sha256(json.dumps(model_cfg, sort_keys=True).encode())
    return tensor_digest(model, coder_names(model), saved_names, h)


def decoder_hash(model: torch.nn.Module) -> str:
    """8 hex digits over the decoder-side tensors: tells decoders apart in listings. Tensors
    still at their neutral value (a part added since, e.g. zero noise) are left out, so a
    decoder keeps its hash."""
    own = model.state_dict()
    neutral = {k for k, v in neutral_tensors(model).items() if torch.equal(own[k], v)}
    return tensor_digest(model, decoder_names(model) - neutral, None, hashlib.sha256()).hex()


def tensor_digest(model, names, saved_names, h) -> bytes:
    saved_names = saved_names or {}
    state = {saved_names.get(k, k): v for k, v in model.state_dict().items() if k in names}
    for name, t in sorted(state.items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.digest()[:4]


def save_model(model: torch.nn.Module, model_cfg: dict, stem: str | Path, half: bool = False,
               trained: dict | None = None) -> Path:
    """Write ``stem.safetensors`` and ``stem.yaml``; returns the weights path. ``half``
    stores floating-point tensors as float16 (half the size, e.g. for a bundled model);
    they are loaded back into float32, and the fingerprint is that of the loaded model.
    ``trained`` (e.g. the step and process CPU seconds of a run's export) goes into the
    file's metadata, so that the weights say how far they were trained wherever they go."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    if half:
        model = half_rounded(model)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    weights = stem.with_suffix(".safetensors")
    save_file(state, str(weights), metadata={"trained": json.dumps(trained)} if trained else None)
    stem.with_suffix(".yaml").write_text(yaml.safe_dump({"model": model_cfg}, sort_keys=False))
    return weights


def trained_of(weights: str | Path) -> dict:
    """What ``save_model`` recorded of the training (``{}`` for files without it)."""
    try:
        with safe_open(str(weights), "pt") as f:
            return json.loads((f.metadata() or {}).get("trained", "{}"))
    except (SafetensorError, OSError, ValueError):
        return {}


@torch.no_grad()
def half_rounded(model: torch.nn.Module) -> torch.nn.Module:
    """A copy with its floating-point tensors rounded to float16 values and its coding
    tables rebuilt from them: the model a half file loads as, so that a later ``update()``
    (stage 2's export) leaves its tables, and its fingerprint, as they were."""
    model = copy.deepcopy(model)
    for t in model.state_dict(keep_vars=True).values():
        if t.is_floating_point():
            t.copy_(t.half())
    if hasattr(model, "update"):
        model.update()
    return model


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


def list_decoders(name_or_path: str | None = None) -> list[str]:
    """The decoders of a model: ``fidelity`` (its own), then those beside its file."""
    return decoders_of(model_files(name_or_path or DEFAULT_MODEL)[0])


def bundled_reader(fp: bytes) -> str | None:
    """The name of the bundled model whose coder wrote files of fingerprint ``fp``, if any."""
    for name in BUNDLED:
        try:
            if _load_model(name, FIDELITY).fingerprint == fp:
                return name
        except MrtlabError:  # a bundled model missing from this installation
            continue
    return None


def load_model(name_or_path: str | None = None, decoder: str | None = None):
    """Build the model from its recipe and load its weights (the bundled default when
    no name is given); sets ``.fingerprint``, ``.config`` (the recipe's model section),
    ``.decoder_name`` and ``.decoder_hash``. ``decoder``: ``fidelity`` (or None) is the
    model's own, another name a decoder file beside it (``decoders.py``) laid over it.
    Each call returns a model of its own (the files are read once and cached)."""
    return copy.deepcopy(_load_model(name_or_path or DEFAULT_MODEL, decoder or FIDELITY))


@functools.lru_cache(maxsize=8)
def _load_model(name_or_path: str, decoder: str):
    from ..config import build_model, load_recipe

    weights, recipe = model_files(name_or_path)
    if decoder != FIDELITY:
        model = copy.deepcopy(_load_model(name_or_path, FIDELITY))
        path = decoder_file(weights, decoder)
        if not path.is_file():
            raise MrtlabError(f"model {name_or_path} has no decoder {decoder!r} "
                              f"(it has: {', '.join(decoders_of(weights))})")
        load_decoder(model, path, f"decoder {decoder!r} of model {name_or_path}")
        model.decoder_name, model.decoder_hash = decoder, decoder_hash(model)
        return model
    model_cfg = load_recipe(recipe, expand=False).get("model")  # as written: the fingerprint's
    if not isinstance(model_cfg, dict):
        raise MrtlabError(f"recipe {recipe} has no 'model' section")
    model = build_model(model_cfg)
    saved_names = load_weights(model, weights, names=True)
    return identify(model, model_cfg, str(name_or_path), saved_names)


# Modules renamed since weights were saved, (old, new): a file's tensor whose module the
# model lacks loads into the renamed module when the model has it. No bundled model has any
# of them (the fingerprint hashes the names, so the bundled models' names never change).
RENAMED = (
    ("ln1", "norm1"), ("ln2", "norm2"), ("out", "proj"),                   # transformer_ar's blocks
    ("norm", "block.norm1"), ("qkv", "block.qkv"), ("out", "block.proj"),  # the attention mixer
)


def renamed(state: dict, own: dict) -> dict:
    """``state`` with the modules of :data:`RENAMED` under their new names, for a model whose
    state dict is ``own``."""
    out = {}
    for name, tensor in state.items():
        module, _, param = name.rpartition(".")
        parent, _, attr = module.rpartition(".")
        for old, new in RENAMED if name not in own else ():
            candidate = ".".join(p for p in (parent, new, param) if p)
            if attr == old and candidate in own:
                name = candidate
                break
        out[name] = tensor
    return out


def load_weights(model: torch.nn.Module, weights: str | Path, what: str = "model weights",
                 prefix: str = "", partial: bool = False, names: bool = False):
    """Load a safetensors file into ``model`` (names starting with ``prefix`` lose it);
    an unreadable file, or one that does not fit the model, is a one-line MrtlabError.
    Tensors saved under a parameter's earlier name (``CodecModel.renamed_parameters``) load.
    ``partial``: load only the tensors whose name and shape fit (a warm start from a
    related model) and return the names of the model's tensors left as they were.
    ``names``: return {name now: name in the file} for the renamed tensors."""
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise MrtlabError(f"cannot read {what} {weights}: {e}") from None
    own = model.state_dict()
    state = renamed({k.removeprefix(prefix): v for k, v in state.items()}, own)
    saved = set(state)
    if hasattr(model, "upgrade_state_dict"):
        model.upgrade_state_dict(state)
    if partial:
        fits = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        if not fits:
            raise MrtlabError(f"{what} {weights} share no tensor with the recipe's model")
        model.load_state_dict(fits, strict=False)
        return [k for k in own if k not in fits]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    reshaped = [k for k in state if k in own and own[k].shape != state[k].shape]
    if missing or unexpected or reshaped:
        first = (f"; {reshaped[0]} is {list(state[reshaped[0]].shape)} in the file, "
                 f"{list(own[reshaped[0]].shape)} in the model" if reshaped else "")
        raise MrtlabError(f"{what} {weights} do not fit the recipe's model ({len(missing)} missing, "
                          f"{len(unexpected)} unexpected, {len(reshaped)} of another shape{first})")
    model.load_state_dict(state)
    if names:
        return {new: old for old, new in getattr(model, "renamed_parameters", {}).items()
                if old in saved}
    return []


def identify(model, model_cfg: dict, source: str, saved_names: dict[str, str] | None = None):
    """Put the model in coding mode and give it the fingerprint that files carry; its
    decoder is its own (``fidelity``)."""
    model.eval()
    model.fingerprint = fingerprint(model, model_cfg, saved_names)
    model.config, model.source = model_cfg, source
    model.decoder_name, model.decoder_hash = FIDELITY, decoder_hash(model)
    return model
