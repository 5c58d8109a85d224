import numpy as np
import pytest
import torch
from PIL import Image

from mrtlab.config import build_model
from mrtlab.models import identify, save_model

TINY = {
    "dim": 32, "latent_tokens": 2, "encoder_layers": 1, "decoder_layers": 1,
    "tokenizer": {"class_path": "patch_window", "init_args": {"patch": 4, "window": 2, "refine_channels": 8}},
    "local_mixer": {"class_path": "transformer", "init_args": {"heads": 2}},
    "global_mixer": {"class_path": "rwkv6", "init_args": {"heads": 4, "decay_rank": 8}},
    "quantizer": {"class_path": "fsq", "init_args": {"levels": [5, 3, 4]}},
    "entropy_model": {"class_path": "factorized"},
}


def make_tiny(seed=0):
    torch.manual_seed(seed)
    model = build_model(TINY)
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
