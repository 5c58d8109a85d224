"""Fixtures shared by the test files; helpers (functions, the tiny model's section) are in helpers.py."""
import pytest
import torch
from PIL import Image

from mrtlab.config import build_model
from mrtlab.zoo import identify, save_model

from .helpers import TINY, TINY_RCM, make_tiny


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


@pytest.fixture(scope="module")
def rcm_model():
    """The tiny model with a small RCM (autoregressive coding), in coding mode."""
    torch.manual_seed(0)
    model = identify(build_model(TINY_RCM), TINY_RCM, "tiny-rcm")
    model.update()
    return model


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
