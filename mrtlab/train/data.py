"""Training data: random crops from an image folder, addressed by sample index.

Sample ``i`` is drawn from ``np.random.default_rng((seed, i))``, so the data order depends
only on the seed and the step: a resumed run sees exactly the batches it would have seen,
and with several processes each one takes its own indices (``ShardSampler``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from ..codec.image_io import IMAGE_SUFFIXES, load_rgb
from ..errors import MrtlabError

log = logging.getLogger(__name__)


def image_files(root: str | Path | list) -> list[Path]:
    """The images under a folder, or under each of a list of folders, in a fixed order."""
    files = []
    for folder in map(Path, [root] if isinstance(root, (str, Path)) else root):
        if not folder.is_dir():
            raise MrtlabError(f"image folder {folder} does not exist")
        files += sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return files


class ShardSampler(torch.utils.data.Sampler):
    """Sample indices of one process for optimizer steps ``start … steps-1``, made as drawn.

    Micro-batch ``k`` of step ``s`` on process ``r`` holds samples
    ``((s·accum + k)·processes + r)·batch + j``: every sample is used once, by one process.
    """

    def __init__(self, start: int, steps: int, batch: int, accum: int, rank: int, processes: int):
        self.start, self.steps, self.batch, self.accum = start, steps, batch, accum
        self.rank, self.processes = rank, processes

    def __len__(self) -> int:
        return max(self.steps - self.start, 0) * self.accum * self.batch

    def __iter__(self):
        for m in range(self.start * self.accum, self.steps * self.accum):  # m = s·accum + k
            first = (m * self.processes + self.rank) * self.batch
            yield from range(first, first + self.batch)


class RandomCrops(torch.utils.data.Dataset):
    """Images are decoded when drawn (only their headers are read up front), so a folder
    of any size fits; a file that cannot be read is logged and another image is drawn."""

    def __init__(self, root: str | Path, crop: int, seed: int = 0):
        self.crop, self.seed = crop, seed
        self.files, self.bad = [], set()
        for path in image_files(root):
            try:
                with Image.open(path) as im:
                    w, h = im.size
            except Exception as e:  # PIL raises many kinds on a damaged header
                log.warning("skipping unreadable image %s: %s", path, e)
                continue
            if min(w, h) < crop:
                log.info("skipping %s: smaller than the %d px crop", path, crop)
                continue
            self.files.append(path)
        if not self.files:
            raise MrtlabError(f"no usable training image of at least {crop}×{crop} px in {root}")

    def __len__(self):
        return 2 ** 62  # indices are unbounded; the sampler decides which are used

    def load(self, k: int) -> np.ndarray | None:
        if k in self.bad:
            return None
        try:
            return load_rgb(self.files[k])[0]
        except MrtlabError as e:
            log.warning("skipping unreadable image: %s", e)
            self.bad.add(k)
            return None

    def __getitem__(self, i):
        rng = np.random.default_rng((self.seed, i))
        img = None
        while img is None:  # a bad file is bad every time, so the redraw is deterministic
            if len(self.bad) == len(self.files):
                raise MrtlabError("every training image failed to decode")
            img = self.load(int(rng.integers(len(self.files))))
        y = rng.integers(img.shape[0] - self.crop + 1)
        x = rng.integers(img.shape[1] - self.crop + 1)
        patch = img[y:y + self.crop, x:x + self.crop]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        return torch.from_numpy(patch.copy()).permute(2, 0, 1).float() / 255


def validation_images(root: str | Path, limit: int) -> list[tuple[str, np.ndarray]]:
    """The first ``limit`` readable images of a held-out folder, whole, as uint8 RGB."""
    out = []
    for path in image_files(root):
        if len(out) == limit:
            break
        try:
            out.append((path.name, load_rgb(path)[0]))
        except MrtlabError as e:
            log.warning("skipping validation image: %s", e)
    if not out:
        raise MrtlabError(f"no readable validation image in {root}")
    return out


class LatentCrops(torch.utils.data.Dataset):
    """Crops of the training images' latents under a tokenizer's frozen autoencoder
    (``analysis``: ``train.latent_space``), each image encoded once, whole, and cached in
    ``cache`` (a file named by the images and the autoencoder), so that stage 1 never runs
    the autoencoder. Sample ``i`` is drawn as in ``RandomCrops``; there is no flip (a
    latent's channels do not mirror with the image)."""

    def __init__(self, root, crop: int, seed: int, tokenizer, cache: Path, note: bool = True):
        if not hasattr(tokenizer, "analysis"):
            raise MrtlabError("train.latent_space needs a tokenizer in a pretrained autoencoder's "
                              f"latent (taef2_window), not {type(tokenizer).__name__}")
        self.scale, self.seed = tokenizer.patch, seed
        self.crop = crop // self.scale
        images = RandomCrops(root, crop, seed)   # the usable files, as RandomCrops sees them
        digest = hashlib.sha256(json.dumps([[str(p), p.stat().st_size] for p in images.files]
                                           + [type(tokenizer).__name__, tokenizer.digest()]).encode())
        path = Path(cache) / f"latents-{digest.hexdigest()[:12]}.safetensors"
        if path.is_file():
            self.latents = list(load_file(str(path)).values())
            return
        if note:
            print(f"mrtlab: note: encoding {len(images.files)} training images into the latent once "
                  f"(cached in {path})", file=sys.stderr)
        self.latents = []
        with torch.no_grad():
            for k in range(len(images.files)):
                img = images.load(k)
                if img is None:
                    continue
                h, w = (s // self.scale * self.scale for s in img.shape[:2])
                x = torch.from_numpy(img[:h, :w].copy()).permute(2, 0, 1)[None].float() / 255
                self.latents.append(tokenizer.analysis(x)[0].half().contiguous())
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        save_file({f"{i:06d}": z for i, z in enumerate(self.latents)}, str(tmp))
        os.replace(tmp, path)

    def __len__(self):
        return 2 ** 62

    def __getitem__(self, i):
        rng = np.random.default_rng((self.seed, i))
        z = self.latents[int(rng.integers(len(self.latents)))]
        y = rng.integers(z.shape[1] - self.crop + 1)
        x = rng.integers(z.shape[2] - self.crop + 1)
        return z[:, y:y + self.crop, x:x + self.crop].float()
