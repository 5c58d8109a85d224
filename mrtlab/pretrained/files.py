"""Where the pretrained networks' files are, and reading one safely (no code runs from a file).

The folder is ``--weights DIR`` where a command takes it, else ``$MRTLAB_WEIGHTS``, else
torch's hub cache; the file names are those the packages would download themselves.
"""
from __future__ import annotations

import hashlib
import os
import re
import warnings
from pathlib import Path

import torch

from ..errors import MrtlabError

ENV = "MRTLAB_WEIGHTS"
# The file names the packages would download into torch's hub cache.
FILES = {
    "alexnet": "alexnet-owt-7be5be79.pth",                    # LPIPS (torchvision AlexNet)
    "vgg16": "vgg16-397923af.pth",                            # DISTS (torchvision VGG-16)
    "inception": "weights-inception-2015-12-05-6726825d.pth",  # FID/KID (torch-fidelity)
    "taef2_encoder": "taef2/taef2_encoder.pth",               # models in TAEF2's latent (taef2_window)
    "taef2_decoder": "taef2/taef2_decoder.pth",
}
METRICS = {"alexnet": "lpips", "vgg16": "dists", "inception": "fid, kid",
           "taef2_encoder": "taef2 models", "taef2_decoder": "taef2 models"}


def weights_dir(given: str | Path | None = None) -> Path:
    """``--weights DIR``, else ``$MRTLAB_WEIGHTS``, else torch's hub cache (``…/hub/checkpoints``)."""
    if given:
        return Path(given).expanduser()
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    return Path(torch.hub.get_dir()) / "checkpoints"


def weights_source(given: str | Path | None = None) -> str:
    """Which rule of ``weights_dir`` chose the folder."""
    return "--weights" if given else f"${ENV}" if os.environ.get(ENV) else "torch's hub cache"


def weights_file(backbone: str, folder: str | Path | None = None) -> Path:
    return weights_dir(folder) / FILES[backbone]


def missing(backbone: str, path: Path) -> str:
    """The reason a metric is skipped for want of its file: the path, and how to get the file."""
    return (f"weights not found: {path} ({backbone}; get it with `mrtlab weights download "
            f"{backbone}` or `mrtlab weights import FILE`, or point --weights / ${ENV} to its folder)")


def first_line(e: Exception) -> str:
    """torch's errors run over many lines; the one that says what is wrong."""
    text = str(e)
    m = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
    lines = [s.strip() for s in text.splitlines() if s.strip()]
    boilerplate = ("Weights only load failed", "Check the documentation", "Error(s) in loading")
    useful = [s for s in lines if not s.startswith(boilerplate)]
    line = m.group(1) if m else (useful or lines or [""])[0]
    return line.split(". Please")[0][:200] or type(e).__name__


def load_state(path: Path) -> dict:
    """A plain tensor state dict (``weights_only``: no code runs from the file)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4"
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same problem for the user
        raise MrtlabError(f"cannot read weights {path}: not a plain tensor file ({first_line(e)})") from None
    if not isinstance(state, dict):
        raise MrtlabError(f"weights {path} are not a state dict (a {type(state).__name__})")
    return state


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
