import numpy as np
import pytest
import torch
from PIL import Image

from mrtlab import create_model
from mrtlab.models import identify, save_model

TINY = {"architecture": "mrt_tiny"}   # a recipe's model section; dict(TINY, dim=16) changes it


def make_tiny(seed=0):
    torch.manual_seed(seed)
    model = create_model("mrt_tiny")
    with torch.no_grad():  # a non-uniform prior, so coding is not trivially uniform
        model.entropy_model.logits.normal_()
    model.update()
    return identify(model, TINY, f"tiny{seed}")


@pytest.fixture(scope="session")
def tiny_model():
    return make_tiny()


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory):
    stem = tmp_path_factory.mktemp("model") / "tiny"
    return save_model(make_tiny(1), TINY, stem)


@pytest.fixture(scope="session")
def astronaut_png(tmp_path_factory):
    from skimage import data
    path = tmp_path_factory.mktemp("img") / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


def noise_image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
