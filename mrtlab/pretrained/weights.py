"""The pretrained networks mrtlab reads but does not train: the ImageNet backbones of LPIPS,
DISTS and FID, and the TAEF2 autoencoder that models in its latent wrap. Where they are
looked for, how a file is checked (it must load into the right network), and
``mrtlab weights`` (list, import, download). Evaluation and coding never download: a
missing file is reported with its path, never fetched."""
from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import warnings
from pathlib import Path
from unittest import mock

import torch

from ..errors import MrtlabError, need
from ..files import check_writable, place
from . import taef2
from .files import (  # noqa: F401
    ENV,
    FILES,
    METRICS,
    first_line,
    load_state,
    missing,
    sha256,
    weights_dir,
    weights_file,
    weights_source,
)

TAESD = "https://raw.githubusercontent.com/madebyollin/taesd/5cccb12dc72074a4be35680c3b108548a7c69978/"
# Where torchvision 0.x and torch-fidelity 0.4 download them from (tests check the installed ones).
URLS = {
    "alexnet": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "inception": "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                 "weights-inception-2015-12-05-6726825d.pth",
    "taef2_encoder": TAESD + "taef2_encoder.pth",
    "taef2_decoder": TAESD + "taef2_decoder.pth",
}
# torchvision downloads with check_hash=True: the "-<hex>." in its file names is a sha256 prefix.
# torch-fidelity publishes no hash, so its file is checked by loading it into its network.
# TAEF2's files are pinned to the commit above by their whole sha256 (measured on them).
HASH_PREFIX = {"alexnet": "7be5be79", "vgg16": "397923af", "inception": None,
               "taef2_encoder": "10a4e1021e89d7551eaf161352da8dbd0b1aa83872ae28b150c1df1ce2f147b6",
               "taef2_decoder": "0a44a31e1ae59eb9dbf9359d24942fd3ef5928162c1800d97a28c61d51be0ab5"}
SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")  # the files `import DIR` tries to recognise


def check_file(backbone: str, path: Path) -> None:
    """Refuse (one line) a file whose tensors do not load, strictly, into the backbone's network:
    torchvision's AlexNet/VGG-16 (``features.*`` only, or the whole model) or torch-fidelity's
    Inception-v3 (its own loader). Networks are built on the meta device: no memory, no init."""
    state = load_state(path)  # refuses anything but plain tensors before torch-fidelity loads it
    if backbone.startswith("taef2_"):
        taef2.check_state(backbone.removeprefix("taef2_"), state, path)
        return
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # copying into meta tensors is a no-op, said loudly
            if backbone == "inception":
                fe = need("torch_fidelity.feature_extractor_inceptionv3")
                fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                               feature_extractor_weights_path=str(path))
            else:
                net = getattr(need("torchvision.models"), backbone)(weights=None)
                if all(k.startswith("features.") for k in state):  # the convolutional part only
                    net = torch.nn.ModuleDict({"features": net.features})
                net.load_state_dict(state, strict=True, assign=True)
    except MrtlabError:
        raise
    except Exception as e:  # noqa: BLE001 - wrong keys, shapes or types: all "not these weights"
        raise MrtlabError(f"{path} does not hold {backbone} weights ({first_line(e)})") from None


def identify(path: Path) -> str:
    """The backbone a file is for: by its name, else by which network its tensors load into."""
    for name, file in FILES.items():
        if path.name == Path(file).name:
            check_file(name, path)
            return name
    load_state(path)  # not tensors at all: say so rather than "not alexnet, vgg16, inception"
    for name in FILES:
        try:
            check_file(name, path)
            return name
        except MrtlabError:
            continue
    raise MrtlabError(f"{path}: not weights of any of {', '.join(FILES)} (no network loads its tensors)")


def status(folder=None) -> list[str]:
    """``mrtlab weights list``: each backbone's expected path, found or missing, the metrics that
    need it, its sha256 and whether it loads into its network (the check that matters: files
    converted elsewhere hold the same tensors in other bytes)."""
    lines = [f"folder: {weights_dir(folder)} (from {weights_source(folder)})"]
    for name in FILES:
        path = weights_file(name, folder)
        lines.append(f"{name:<10} {'found' if path.is_file() else 'missing':<8} "
                     f"for {METRICS[name]:<9} {path}")
        if not path.is_file():
            lines.append(f"{'':<10} get it: mrtlab weights download {name}  (or mrtlab weights import FILE)")
            continue
        try:
            check_file(name, path)
            usable = "loads into its network"
        except MrtlabError as e:
            usable = f"NOT USABLE: {e}"
        digest, prefix = sha256(path), HASH_PREFIX[name]
        origin = ("no published hash" if prefix is None else "the official download"
                  if digest.startswith(prefix) else "not the official download's bytes")
        lines.append(f"{'':<10} sha256 {digest} ({origin}); {usable}")
    return lines


def import_sources(src: Path) -> list[Path]:
    """The files ``import`` tries: SRC itself, or every torch-like file of the folder SRC."""
    if not src.exists():
        raise MrtlabError(f"{src}: no such file or folder")
    if not src.is_dir():
        return [src]
    files = sorted(p for p in src.iterdir() if p.is_file() and p.suffix in SUFFIXES)
    if not files:
        raise MrtlabError(f"{src}: no {', '.join(SUFFIXES)} files in this folder")
    return files


@contextlib.contextmanager
def _staged(dst: Path, force: bool):
    """A temporary name beside ``dst``, put at ``dst`` only if the block succeeds (and, without
    ``force``, only if nothing is there by then): an interrupted or refused copy never leaves
    a file under the final name (``files.place``)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.part")
    try:
        yield tmp
        place(tmp, dst, force)
    finally:
        tmp.unlink(missing_ok=True)


def import_file(src: Path, folder=None, force: bool = False) -> tuple[str, Path]:
    """Copy a checked weights file into the weights folder under the name eval looks for."""
    name = identify(src)
    dst = weights_file(name, folder)
    if dst.exists() and dst.resolve() == src.resolve():
        raise MrtlabError(f"{src} is already the {name} file of {dst.parent}")
    check_writable(dst, force)
    with _staged(dst, force) as tmp:
        shutil.copyfile(src, tmp)
    return name, dst


def download(name: str, folder=None, force: bool = False, mirror: str | None = None,
             progress: bool = False) -> Path:
    """Fetch one backbone with torch.hub's downloader, checked against its published sha256
    prefix (torchvision) or by loading it (torch-fidelity); ``mirror`` replaces the official
    host with a folder URL holding the files under their official names."""
    url = f"{mirror.rstrip('/')}/{FILES[name]}" if mirror else URLS[name]
    dst = weights_file(name, folder)
    check_writable(dst, force)
    with _staged(dst, force) as tmp:
        try:
            torch.hub.download_url_to_file(url, str(tmp), HASH_PREFIX[name], progress=progress)
        except (OSError, ValueError, RuntimeError, http.client.HTTPException) as e:  # offline, URL, hash
            raise MrtlabError(f"cannot download {url}: {first_line(e)}") from None
        if HASH_PREFIX[name] is None:
            try:
                check_file(name, tmp)
            except MrtlabError as e:  # named by its URL: the temporary file is gone
                raise MrtlabError(f"downloaded {url} is not usable: {str(e).replace(str(tmp), 'file')}") from None
    return dst


def _refuse(url, *args, **kwargs):
    raise MrtlabError(f"refusing to download {url}: mrtlab eval never downloads weights; "
                      f"run `mrtlab weights download` or put the file in {weights_dir()}")


@contextlib.contextmanager
def offline():
    """Make any torch.hub download raise instead (torchvision, lpips, piq, torch-fidelity all go
    through ``torch.hub.download_url_to_file``)."""
    with mock.patch("torch.hub.download_url_to_file", _refuse), \
         mock.patch("torch.hub.load_state_dict_from_url", _refuse):
        yield
