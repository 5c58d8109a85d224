"""Training data: random crops from an image folder, addressed by sample index.

Sample ``i`` is drawn from ``np.random.default_rng((seed, i))``, so the data order depends
only on the seed and the step: a resumed run sees exactly the batches it would have seen.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def image_files(root: str | Path) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        from ..errors import MrtlabError
        raise MrtlabError(f"training data folder {root} does not exist")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


class RandomCrops(torch.utils.data.Dataset):
    """Decoded images kept in memory as uint8; corrupt or too-small images are skipped."""

    def __init__(self, root: str | Path, crop: int, length: int, seed: int = 0):
        self.crop, self.length, self.seed = crop, length, seed
        self.images = []
        for path in image_files(root):
            try:
                with Image.open(path) as im:
                    arr = np.asarray(im.convert("RGB"))
            except (UnidentifiedImageError, OSError) as e:
                log.warning("skipping unreadable image %s: %s", path, e)
                continue
            if min(arr.shape[:2]) < crop:
                log.info("skipping %s: smaller than the %d px crop", path, crop)
                continue
            self.images.append(arr)
        if not self.images:
            from ..errors import MrtlabError
            raise MrtlabError(f"no usable training image of at least {crop}×{crop} px in {root}")

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        rng = np.random.default_rng((self.seed, i))
        img = self.images[rng.integers(len(self.images))]
        y = rng.integers(img.shape[0] - self.crop + 1)
        x = rng.integers(img.shape[1] - self.crop + 1)
        patch = img[y:y + self.crop, x:x + self.crop]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        return torch.from_numpy(patch.copy()).permute(2, 0, 1).float() / 255
