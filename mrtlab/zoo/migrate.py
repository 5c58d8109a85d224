"""The one upgrade of a model file written before its identity was stored in it.

A model file now holds its fingerprint and decoder hash in its metadata (``zoo.save_model``).
Files written before hold neither, and some hold tensors under names since changed or lack
tensors of parts added since. :func:`upgrade` brings such a file's tensors, recipe section
and identity to what a file written now holds, computing the identity exactly as it was
computed when the file was written (so that its ``.mrt`` files keep decoding). Nothing else
in mrtlab knows of earlier names.
"""
from __future__ import annotations

import copy
import hashlib
import json

import torch

from ..config import expand_model_section
from ..models.sides import coder_names, decoder_names, digest

# Parameters renamed since: (model class name, name in old files, name now). The fingerprint
# of an old file hashed these under the file's name.
PARAMETERS = (("MRT", "latent_slots", "latent_positions"), ("Baseline2D", "dropped", "dropped_token"))
# Modules renamed since: a tensor under ``…old.x`` loads as ``…new.x`` when the model has that
# name. The fingerprint of an old file hashed these under the name now.
MODULES = (
    ("ln1", "norm1"), ("ln2", "norm2"), ("out", "proj"),                   # transformer_ar's blocks
    ("norm", "block.norm1"), ("qkv", "block.qkv"), ("out", "block.proj"),  # the attention mixer
)
# Recipe arguments renamed since: (model class name, old, new).
ARGUMENTS = (("Baseline2D", "slots", "latent_tokens"),)
# Tensors of parts added since, and the value that reproduces the files written before them.
ADDED = ("noise.strength", "noise.0.strength", "noise.1.strength", "noise.2.strength")


def upgrade_section(section: dict) -> dict:
    """A model section with the arguments renamed since under their names now."""
    cls = str(expand_model_section(section).get("class_path", "")).rpartition(".")[2]
    section = copy.deepcopy(section)
    args = section.get("init_args")
    for owner, old, new in ARGUMENTS:
        if cls == owner:
            for d in (section, args if isinstance(args, dict) else {}):
                if old in d and new not in d:
                    d[new] = d.pop(old)
    return section


def upgrade(model: torch.nn.Module, state: dict[str, torch.Tensor], written_section: dict) -> tuple[dict, dict]:
    """An old file's tensors ``state`` for ``model`` (built from its upgraded section) →
    (the tensors under the names now, with added parts at their neutral value; the identity
    ``{"fingerprint", "decoder_hash"}`` the file had when written). ``written_section``: the
    recipe's model section as the file holds it (``{}`` where only the tensors matter)."""
    own = model.state_dict()
    cls = type(model).__name__
    params = {old: new for owner, old, new in PARAMETERS if owner == cls}
    out, file_name = {}, {}
    for name, tensor in state.items():
        new = params.get(name) or _module_renamed(name, own)
        out[new] = tensor
        if name in params:
            file_name[new] = name
    for name, value in own.items():
        if name not in out and name.endswith(ADDED):
            out[name] = torch.zeros_like(value)
    # hashed as the model held them when the file was loaded (float16 files as float32)
    loaded = {n: t.to(own[n].dtype) for n, t in out.items() if n in own}
    neutral = {n for n, t in loaded.items() if n.endswith(ADDED) and not t.any()}
    h = hashlib.sha256(json.dumps(written_section, sort_keys=True).encode())
    coder = {file_name.get(n, n): loaded[n] for n in coder_names(model) if n in loaded}
    decoder = {n: loaded[n] for n in decoder_names(model) - neutral if n in loaded}
    return out, {"fingerprint": digest(coder, h).hex(), "decoder_hash": digest(decoder).hex()}


def _module_renamed(name: str, own: dict) -> str:
    if name in own:
        return name
    module, _, param = name.rpartition(".")
    parent, _, attr = module.rpartition(".")
    for old, new in MODULES:
        candidate = ".".join(p for p in (parent, new, param) if p)
        if attr == old and candidate in own:
            return candidate
    return name
