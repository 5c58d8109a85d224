"""Small image folders and settings for the training tests (no data outside the test)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mrtlab.train import TrainConfig

SAMPLES = ("astronaut", "coffee", "chelsea", "rocket")


def image_folder(root: Path, size: int = 96, n: int = 4) -> Path:
    """``n`` of skimage's pictures, resized to ``size`` px, as PNG and JPEG."""
    from skimage import data

    root.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(SAMPLES[:n]):
        im = Image.fromarray(getattr(data, name)()).convert("RGB").resize((size, size))
        im.save(root / f"{name}.{'png' if i % 2 else 'jpg'}")
    return root


def tiny_train(root: Path, data: Path, **kw) -> TrainConfig:
    """A few steps on 32-px crops, logging every step, no TensorBoard."""
    cfg = dict(data=str(data), crop=32, batch_size=2, steps=4, warmup=1, log_every=1,
               save_every=100, out=str(root), tensorboard=False)
    cfg.update(kw)
    return TrainConfig(**cfg)


def read_log(out) -> list[dict]:
    import json
    return [json.loads(line) for line in (Path(out) / "log.jsonl").read_text().splitlines()]


def rgb(size=(48, 40), seed=0) -> np.ndarray:
    g = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size[0], 0:size[1]] / max(size)
    img = np.stack([np.sin(6 * xx + g.random() * 3), np.cos(5 * yy), xx * yy], -1)
    return ((img - img.min()) / (np.ptp(img) + 1e-9) * 255).astype(np.uint8)


@pytest.fixture(scope="session")
def perceptual_weights(tmp_path_factory):
    """A folder with AlexNet and VGG-16 feature weights under torchvision's file names,
    randomly initialised (the ImageNet ones cannot be downloaded here)."""
    import torch
    import torchvision

    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    for arch, name in (("alexnet", "alexnet-owt-7be5be79.pth"), ("vgg16", "vgg16-397923af.pth")):
        with torch.device("meta"):
            net = getattr(torchvision.models, arch)(weights=None)
        features = net.features.to_empty(device="cpu")
        for m in features.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight)
                torch.nn.init.zeros_(m.bias)
        torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, folder / name)
    return folder
