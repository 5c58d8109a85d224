"""Model files: safetensors weights + the recipe's model section (YAML), never pickle."""
from __future__ import annotations

import copy
import functools
import json
import warnings
from pathlib import Path

import safetensors.torch
import torch
import yaml
from safetensors import SafetensorError, safe_open

from .. import plugins
from ..config import build_model, load_recipe
from ..errors import MrtlabError, MrtlabWarning
from ..files import write_atomic
from ..models.sides import decoder_hash, fingerprint
from .catalog import DEFAULT_MODEL, FIDELITY, IDENTITY, decoder_file, decoders_of, model_files, stored_identity
from .decoders import load_decoder
from .migrate import upgrade, upgrade_section


def save_model(model: torch.nn.Module, model_cfg: dict, stem: str | Path, half: bool = False,
               trained: dict | None = None) -> Path:
    """Write ``stem.safetensors`` and ``stem.yaml`` (each whole or not at all); returns the
    weights path. The weights' metadata holds the model's identity (``fingerprint``,
    ``decoder_hash``), so loading never recomputes it. ``half`` stores floating-point tensors
    as float16 (half the size, e.g. for a bundled model); they load back into float32, and the
    identity is that of the loaded model. ``trained`` (e.g. the step and process CPU seconds
    of a run's export) goes into the metadata too, so that the weights say how far they
    were trained wherever they go."""
    stem = Path(stem)
    if half:
        model = half_rounded(model)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    identity = {"fingerprint": fingerprint(model, model_cfg).hex(), "decoder_hash": decoder_hash(model)}
    if parts := plugins.recorded(model):   # the plugin modules it needs, and their sources
        identity["plugins"] = parts
    # one metadata key: safetensors writes several in no fixed order, and exports must be
    # byte-identical when the weights are (a resumed run's, e.g.)
    meta = {IDENTITY: json.dumps(identity | ({"trained": trained} if trained else {}), sort_keys=True)}
    weights = stem.with_suffix(".safetensors")
    write_atomic(weights, safetensors.torch.save(state, metadata=meta), force=True)
    write_atomic(stem.with_suffix(".yaml"), yaml.safe_dump({"model": model_cfg}, sort_keys=False), force=True)
    return weights


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


def load_model(name_or_path: str | None = None, decoder: str | None = None, weights: str | None = None):
    """Build the model from its recipe and load its weights (the bundled default when
    no name is given); sets ``.fingerprint``, ``.config`` (the recipe's model section),
    ``.decoder_name`` and ``.decoder_hash`` from the file. ``decoder``: ``fidelity`` (or
    None) is the model's own, another name a decoder file beside it (``decoders.py``) laid
    over it. ``weights``: the folder of the pretrained networks a model wraps (TAEF2;
    default: ``mrtlab weights``' folder). Each call returns a model of its own (the files are
    read once and cached)."""
    model = copy.deepcopy(_load_model(name_or_path or DEFAULT_MODEL, decoder or FIDELITY))
    if weights:
        use_pretrained_folder(model, weights)
    return model


def use_pretrained_folder(model: torch.nn.Module, folder: str | Path) -> None:
    """Point every part that wraps pretrained networks (``pretrained_folder``) at ``folder``."""
    for m in model.modules():
        if hasattr(m, "pretrained_folder"):
            m.pretrained_folder = str(folder)


@functools.lru_cache(maxsize=8)
def _load_model(name_or_path: str, decoder: str):
    weights, recipe = model_files(name_or_path)
    if decoder != FIDELITY:
        model = copy.deepcopy(_load_model(name_or_path, FIDELITY))
        path = decoder_file(weights, decoder)
        if not path.is_file():
            raise MrtlabError(f"model {name_or_path} has no decoder {decoder!r} "
                              f"(it has: {', '.join(decoders_of(weights))})")
        stored = load_decoder(model, path, f"decoder {decoder!r} of model {name_or_path}")
        model.decoder_name, model.decoder_hash = decoder, stored or decoder_hash(model)
        return model
    section = load_recipe(recipe, expand=False).get("model")  # as written: the fingerprint's
    if not isinstance(section, dict):
        raise MrtlabError(f"recipe {recipe} has no 'model' section")
    stored = stored_identity(weights)
    for warning in plugins.require((stored or {}).get("plugins", {}), f"model {name_or_path}"):
        warnings.warn(warning, MrtlabWarning, stacklevel=2)
    model = build_model(section if stored else upgrade_section(section))
    identity, _ = load_weights(model, weights, section=section)
    model.eval()
    model.fingerprint = bytes.fromhex(identity["fingerprint"])
    model.config, model.source = section, str(name_or_path)
    model.decoder_name, model.decoder_hash = FIDELITY, identity["decoder_hash"]
    return model


def load_weights(model: torch.nn.Module, weights: str | Path, what: str = "model weights",
                 prefix: str = "", partial: bool = False, section: dict | None = None) -> tuple[dict, list[str]]:
    """Load a safetensors file into ``model`` (names starting with ``prefix`` lose it);
    an unreadable file, or one that does not fit the model, is a one-line MrtlabError. A
    file written before identities were stored is upgraded (``migrate.upgrade``).
    ``partial``: a warm start from a related model, only the tensors whose name and shape fit
    load. Returns the file's identity (``section``: the recipe section an old file was
    written with) and the names of the model's tensors the file left as they were."""
    try:
        with safe_open(str(weights), "pt") as f:
            meta = f.metadata() or {}
            state = {k.removeprefix(prefix): f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise MrtlabError(f"cannot read {what} {weights}: {e}") from None
    if IDENTITY in meta:
        identity = json.loads(meta[IDENTITY])
    else:
        state, identity = upgrade(model, state, section or {})
    own = model.state_dict()
    if partial:
        fits = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        if not fits:
            raise MrtlabError(f"{what} {weights} share no tensor with the recipe's model")
        model.load_state_dict(fits, strict=False)
        return identity, [k for k in own if k not in fits]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    reshaped = [k for k in state if k in own and own[k].shape != state[k].shape]
    if missing or unexpected or reshaped:
        first = (f"; {reshaped[0]} is {list(state[reshaped[0]].shape)} in the file, "
                 f"{list(own[reshaped[0]].shape)} in the model" if reshaped else "")
        raise MrtlabError(f"{what} {weights} do not fit the recipe's model ({len(missing)} missing, "
                          f"{len(unexpected)} unexpected, {len(reshaped)} of another shape{first})")
    model.load_state_dict(state)
    return identity, []


def identify(model, model_cfg: dict, source: str):
    """Put a model built in memory (not loaded from a file) in coding mode and give it the
    fingerprint its files will carry; its decoder is its own (``fidelity``)."""
    model.eval()
    model.fingerprint = fingerprint(model, model_cfg)
    model.config, model.source = model_cfg, source
    model.decoder_name, model.decoder_hash = FIDELITY, decoder_hash(model)
    return model
