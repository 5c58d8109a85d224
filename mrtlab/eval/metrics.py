"""Per-image quality metrics on 8-bit RGB: PSNR, MS-SSIM, LPIPS (AlexNet), DISTS (VGG-16).

LPIPS and DISTS need ImageNet backbones, which evaluation never downloads. Each is built only
from a local file (see ``weights.py``); when the file is missing the metric is *skipped* with
the path where it was expected, so a number is never reported without its real weights."""
from __future__ import annotations

import warnings
from types import SimpleNamespace
from unittest import mock

import numpy as np
import torch

from ..errors import MrtlabError, need
from ..pretrained import weights

MS_SSIM_MIN_SIDE = 161  # 5 scales of an 11-px window: pytorch-msssim needs a side > 160
PSNR_MAX = 100.0  # dB, the cap: identical images would have an infinite PSNR, which JSON cannot hold


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """``HxWx3`` uint8 → ``[1,3,H,W]`` float in [0, 1]."""
    return torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB, capped at ``PSNR_MAX`` (an exact reconstruction would be infinite)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return PSNR_MAX if mse == 0 else min(PSNR_MAX, float(10 * np.log10(255.0 ** 2 / mse)))


LOWPASS_FACTOR = 16  # px: colour and layout, without the texture a perceptual codec may invent


def area_downsampled(a: np.ndarray, factor: int = LOWPASS_FACTOR) -> np.ndarray:
    """``HxWx3`` → the means of its ``factor``×``factor`` blocks (float64); the last partial
    row and column of blocks are left out, an image smaller than one block is one block."""
    h, w = max(1, a.shape[0] // factor), max(1, a.shape[1] // factor)
    fh, fw = min(factor, a.shape[0]), min(factor, a.shape[1])
    blocks = a[:h * fh, :w * fw].astype(np.float64).reshape(h, fh, w, fw, -1)
    return blocks.mean(axis=(1, 3))


def lowpass_psnr(a: np.ndarray, b: np.ndarray, factor: int = LOWPASS_FACTOR) -> float:
    """PSNR of both images area-downsampled by ``factor``: a colour cast or a shifted layout
    lowers it, texture drawn in place of the original's does not (DISTS forgives both)."""
    mse = np.mean((area_downsampled(a, factor) - area_downsampled(b, factor)) ** 2)
    return PSNR_MAX if mse == 0 else min(PSNR_MAX, float(10 * np.log10(255.0 ** 2 / mse)))


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float | None:
    """MS-SSIM on RGB in [0, 255] (as CompressAI reports it); ``None`` for images too small."""
    msssim = need("pytorch_msssim").ms_ssim
    if min(a.shape[:2]) < MS_SSIM_MIN_SIDE:
        return None
    with torch.no_grad():
        return float(msssim(to_tensor(a) * 255, to_tensor(b) * 255, data_range=255))


class Skipped(str):
    """The reason a metric could not be computed (always names the missing file)."""


def _backbone(name: str, folder):
    """A torchvision AlexNet/VGG-16 with ImageNet weights from a local file, or ``Skipped``."""
    import torchvision

    path = weights.weights_file(name, folder)
    if not path.is_file():
        return Skipped(weights.missing(name, path))
    try:
        state = weights.load_state(path)
    except MrtlabError as e:  # not a tensor file: skipped like a file of the wrong network
        return Skipped(str(e))
    net = getattr(torchvision.models, name)(weights=None)
    feats = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    try:
        net.features.load_state_dict(feats)
    except RuntimeError as e:
        return Skipped(f"{path} does not hold torchvision {name} weights ({str(e).splitlines()[0]})")
    return net.eval()


def _copy_features(slices: torch.nn.Module, features: torch.nn.Sequential) -> None:
    """lpips regroups ``features[i]`` into ``sliceK.i``: copy each layer by its index."""
    for sl in slices.children():
        for idx, layer in sl.named_children():
            layer.load_state_dict(features[int(idx)].state_dict())


def build_lpips(folder=None):
    """LPIPS v0.1 with AlexNet (the lpips default, used by HiFiC, MS-ILLM and GLC)."""
    alex = _backbone("alexnet", folder)  # the weights first: a missing file is skipped, package or not
    if isinstance(alex, Skipped):
        return alex
    lpips = need("lpips")
    with weights.offline(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's "pretrained is deprecated"
        net = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)  # linear heads ship in lpips
    _copy_features(net.net, alex.features)
    return net.eval()


def build_dists(folder=None):
    """DISTS (Ding et al.) from DISTS_pytorch, its VGG-16 from a local file, its α/β from the
    package (it would otherwise call ``vgg16(pretrained=True)`` and read ``sys.prefix``)."""
    from pathlib import Path

    vgg = _backbone("vgg16", folder)
    if isinstance(vgg, Skipped):
        return vgg
    DISTS_pt = need("DISTS_pytorch.DISTS_pt")
    with weights.offline(), torch.random.fork_rng(), \
         mock.patch.object(DISTS_pt, "models", SimpleNamespace(vgg16=lambda **_: vgg)):
        net = DISTS_pt.DISTS(load_weights=False)
    ab = weights.load_state(Path(DISTS_pt.__file__).with_name("weights.pt"))
    net.alpha.data, net.beta.data = ab["alpha"], ab["beta"]
    return net.eval().to(memory_format=torch.channels_last)  # ~15% faster VGG on CPU


def reuse_features(features):
    """Wrap a backbone's ``features(x)`` so that the last two distinct inputs are not run again.

    An eval compares one original with a reconstruction at every rate point (and with JPEG and
    WebP in a report): the original's features are then computed once per image, not once per
    comparison. Inputs are matched by value (a cheap ``torch.equal`` beside a VGG-16 pass)."""
    memory: list[tuple[torch.Tensor, object]] = []

    def cached(x, *args, **kwargs):
        for i, (seen, out) in enumerate(memory):
            if seen.shape == x.shape and seen.dtype == x.dtype and torch.equal(seen, x):
                memory.append(memory.pop(i))  # most recently used last
                return out
        out = features(x, *args, **kwargs)
        memory.append((x.detach().clone(), out))
        del memory[:-2]
        return out
    return cached


class Perceptual:
    """LPIPS and DISTS, each a network (built once) or the reason it is skipped."""

    def __init__(self, names=("lpips", "dists"), folder=None):
        build = {"lpips": build_lpips, "dists": build_dists}
        self.nets = {n: build[n](folder) for n in names}
        self.skipped = {n: str(v) for n, v in self.nets.items() if isinstance(v, Skipped)}
        if "lpips" in self.nets and not isinstance(self.nets["lpips"], Skipped):
            self.nets["lpips"].net.forward = reuse_features(self.nets["lpips"].net.forward)
        if "dists" in self.nets and not isinstance(self.nets["dists"], Skipped):
            self.nets["dists"].forward_once = reuse_features(self.nets["dists"].forward_once)

    @torch.inference_mode()
    def __call__(self, a: np.ndarray, b: np.ndarray) -> dict:
        x, y = to_tensor(a), to_tensor(b)
        out = {}
        for name, net in self.nets.items():
            if isinstance(net, Skipped):
                continue
            if name == "lpips":  # images in [0, 1]; normalize=True maps them to lpips' [-1, 1]
                out[name] = float(net(x, y, normalize=True))
            else:
                cl = torch.channels_last
                out[name] = float(net(x.contiguous(memory_format=cl), y.contiguous(memory_format=cl)))
        return out


def check_names(names: list[str], known) -> list[str]:
    bad = [n for n in names if n not in known]
    if bad:
        raise MrtlabError(f"unknown metric {bad[0]!r} (known: {', '.join(known)})")
    return names
