"""Where the ImageNet backbones of LPIPS, DISTS and FID are looked for, and a guard so
that nothing is ever downloaded: a missing file is reported with its path, never fetched."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from unittest import mock

import torch

from ..errors import MrtlabError

ENV = "MRTLAB_WEIGHTS"
# The file names the packages would download into torch's hub cache.
FILES = {
    "alexnet": "alexnet-owt-7be5be79.pth",                    # LPIPS (torchvision AlexNet)
    "vgg16": "vgg16-397923af.pth",                            # DISTS (torchvision VGG-16)
    "inception": "weights-inception-2015-12-05-6726825d.pth",  # FID/KID (torch-fidelity)
}


def weights_dir(given: str | Path | None = None) -> Path:
    """``--weights DIR``, else ``$MRTLAB_WEIGHTS``, else torch's hub cache (``…/hub/checkpoints``)."""
    if given:
        return Path(given).expanduser()
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    return Path(torch.hub.get_dir()) / "checkpoints"


def weights_file(backbone: str, folder: str | Path | None = None) -> Path:
    return weights_dir(folder) / FILES[backbone]


def load_state(path: Path) -> dict:
    """A plain tensor state dict (``weights_only``: no code runs from the file)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same problem for the user
        raise MrtlabError(f"cannot read weights {path}: {e}") from None
    if not isinstance(state, dict):
        raise MrtlabError(f"weights {path} are not a state dict")
    return state


def _refuse(url, *args, **kwargs):
    raise MrtlabError(f"refusing to download {url}: mrtlab never downloads weights; "
                      f"put the file in {weights_dir()} (or set ${ENV})")


@contextlib.contextmanager
def offline():
    """Make any torch.hub download raise instead (torchvision, lpips, piq, torch-fidelity all go
    through ``torch.hub.download_url_to_file``)."""
    with mock.patch("torch.hub.download_url_to_file", _refuse), \
         mock.patch("torch.hub.load_state_dict_from_url", _refuse):
        yield
