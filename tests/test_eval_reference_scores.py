"""mrtlab's LPIPS and DISTS reproduce the scores their authors publish for their example pairs,
with the real ImageNet weights of the shared folder beside the project (skipped without it);
and a weights file under the right name but with the wrong contents is refused in one line,
never used."""
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mrtlab.errors import MrtlabError
from mrtlab.eval import fid as F
from mrtlab.eval import metrics as M
from mrtlab.pretrained import weights as W

SHARED = Path(__file__).resolve().parents[2] / "shared" / "weights"  # beside the project's root
needs_shared = pytest.mark.skipif(
    not (all((SHARED / W.FILES[n]).is_file() for n in ("alexnet", "vgg16")) and (SHARED / "reference").is_dir()),
    reason=f"no ImageNet weights and reference pairs at {SHARED} (the shared folder beside the project)")


def rgb(name: str) -> np.ndarray:
    return np.array(Image.open(SHARED / "reference" / name).convert("RGB"))


@pytest.fixture(scope="module")
def perceptual():
    return M.Perceptual(folder=SHARED)


@needs_shared
def test_lpips_reproduces_the_published_distances(perceptual):
    """LPIPS repository, test_network.py: ``Distances: (0.722, 0.138)`` (0.721858 / 0.137554 as a
    spatial mean; mrtlab averages per layer first, 0.72188: the same to 1e-4)."""
    assert perceptual.skipped == {}
    ref = rgb("lpips_ex_ref.png")
    d0 = perceptual(ref, rgb("lpips_ex_p0.png"))["lpips"]
    d1 = perceptual(ref, rgb("lpips_ex_p1.png"))["lpips"]
    assert d0 == pytest.approx(0.722, abs=1e-3) and d1 == pytest.approx(0.138, abs=1e-3)
    assert d0 == pytest.approx(0.721858, abs=1e-4) and d1 == pytest.approx(0.137554, abs=1e-4)


@needs_shared
def test_dists_reproduces_the_published_score(perceptual):
    """DISTS repository, DISTS_pt.py on images/r0.png vs r1.png: ``score: 0.3347``."""
    score = perceptual(rgb("dists_r0.png"), rgb("dists_r1.png"))["dists"]
    assert score == pytest.approx(0.3347, abs=1e-3)
    assert score == pytest.approx(0.334674, abs=1e-5)


def wrong_contents(backbone: str, kind: str, path: Path) -> None:
    """Write, under the backbone's own file name, a file that must not be used."""
    if kind == "random bytes":
        path.write_bytes(os.urandom(4096))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "not a dict":
        torch.save([torch.zeros(3)], path)
    elif kind == "arbitrary pickle":  # would run code on a plain torch.load: weights_only refuses it
        path.write_bytes(pickle.dumps(os.system, protocol=2))
    elif kind == "wrong shapes":
        key = "Conv2d_1a_3x3.conv.weight" if backbone == "inception" else "features.0.weight"
        torch.save({key: torch.zeros(2, 2)}, path)
    elif kind == "other network":  # right keys and shapes, but of VGG-16 under AlexNet's name
        import torchvision
        feats = torchvision.models.vgg16(weights=None).features.state_dict()
        torch.save({f"features.{k}": v for k, v in feats.items()}, path)


KINDS = ["random bytes", "empty", "not a dict", "arbitrary pickle", "wrong shapes"]


@pytest.mark.parametrize("metric,backbone,kind", [
    *[(m, b, k) for m, b in [("lpips", "alexnet"), ("dists", "vgg16"), ("fid", "inception")] for k in KINDS],
    ("lpips", "alexnet", "other network")])
def test_a_file_with_the_wrong_contents_is_refused_in_one_line(tmp_path, metric, backbone, kind):
    path = tmp_path / W.FILES[backbone]
    wrong_contents(backbone, kind, path)
    try:
        built = F.PatchFID(tmp_path) if metric == "fid" else M.Perceptual([metric], tmp_path)
    except MrtlabError as e:
        reason = str(e)
    else:
        reasons = {"fid": built.skipped} if metric == "fid" else built.skipped
        assert metric in reasons and reasons[metric], "a wrong file was used"
        reason = reasons[metric]
    assert "\n" not in reason and str(path) in reason and len(reason) < 400, reason
    with pytest.raises(MrtlabError) as e:  # `weights import` and `list` refuse it the same way
        W.check_file(backbone, path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)
