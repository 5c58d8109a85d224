"""Training data: random crops from an image folder, addressed by sample index.

Sample ``i`` is drawn from ``np.random.default_rng((seed, i))``, so the data order depends
only on the seed and the step: a resumed run sees exactly the batches it would have seen,
and with several processes each one takes its own indices (``ShardSampler``).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

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
