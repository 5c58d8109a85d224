"""Metrics: PSNR/MS-SSIM values, LPIPS/DISTS/FID skipped with the exact expected path when their
ImageNet weights are missing, never downloaded, and computed from local files when present
(random-init backbones saved by the test stand in for the real ones)."""
import json
import sys
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image

from mrtlab.cli import main
from mrtlab.errors import MrtlabError
from mrtlab.eval import fid as F
from mrtlab.eval import metrics as M
from mrtlab.pretrained import weights as W

from .helpers import noise_image


@pytest.fixture(scope="session")
def photo():
    from skimage import data
    return data.astronaut()[100:292, 150:406]  # 192×256, big enough for MS-SSIM


@pytest.fixture(scope="session")
def fake_weights(tmp_path_factory):
    """Randomly initialised AlexNet/VGG-16 features and Inception-v3 under the real file names."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe
    import torchvision

    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    for name in ("alexnet", "vgg16"):
        feats = getattr(torchvision.models, name)(weights=None).features.state_dict()
        torch.save({f"features.{k}": v for k, v in feats.items()}, folder / W.FILES[name])
    with mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: {}), \
         mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda *a, **k: None):
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    torch.save(net.state_dict(), folder / W.FILES["inception"])
    return folder


def test_psnr_and_ms_ssim(photo):
    noisy = np.clip(photo.astype(int) + 10, 0, 255).astype(np.uint8)  # bright areas clip
    mse = np.mean((photo.astype(float) - noisy) ** 2)
    assert M.psnr(photo, noisy) == pytest.approx(10 * np.log10(255 ** 2 / mse))
    assert M.psnr(photo, photo) == M.PSNR_MAX == 100  # capped: JSON has no infinity
    assert M.ms_ssim(photo, photo) == pytest.approx(1.0, abs=1e-6)
    assert 0 < M.ms_ssim(photo, noise_image(*photo.shape[:2])) < 0.5
    assert M.ms_ssim(photo[:160], photo[:160]) is None  # 5 scales need a side > 160


def test_weights_folder_order(tmp_path, monkeypatch):
    monkeypatch.delenv(W.ENV, raising=False)
    assert W.weights_dir() == W.Path(torch.hub.get_dir()) / "checkpoints"
    monkeypatch.setenv(W.ENV, str(tmp_path / "env"))
    assert W.weights_dir() == tmp_path / "env"
    assert W.weights_file("vgg16", tmp_path) == tmp_path / "vgg16-397923af.pth"


def test_missing_weights_are_skipped_with_the_expected_path(tmp_path):
    p = M.Perceptual(folder=tmp_path)
    assert set(p.skipped) == {"lpips", "dists"}
    assert str(tmp_path / "alexnet-owt-7be5be79.pth") in p.skipped["lpips"]
    assert str(tmp_path / "vgg16-397923af.pth") in p.skipped["dists"]
    assert p(noise_image(32, 32), noise_image(32, 32, 1)) == {}  # no number, ever
    fid = F.PatchFID(tmp_path)
    assert str(tmp_path / "weights-inception-2015-12-05-6726825d.pth") in fid.skipped


@pytest.mark.parametrize("metric,modules", [("lpips", ["lpips"]),
                                            ("dists", ["DISTS_pytorch", "DISTS_pytorch.DISTS_pt"])])
def test_a_missing_package(fake_weights, tmp_path, monkeypatch, metric, modules):
    for m in modules:
        monkeypatch.setitem(sys.modules, m, None)
    # no weights file: skipped for that reason, whether the package is there or not
    assert "weights not found" in M.Perceptual([metric], tmp_path).skipped[metric]
    extras = r"\(in the extras mrtlab\[train\], mrtlab\[eval\]\)"
    with pytest.raises(MrtlabError, match=rf"{modules[0]} is not installed: pip install {modules[0]} {extras}"):
        M.Perceptual([metric], fake_weights)


def test_nothing_is_downloaded(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path))  # an empty cache
    with W.offline(), pytest.raises(MrtlabError, match="never downloads"):
        torchvision.models.alexnet(weights="IMAGENET1K_V1")


def test_a_wrong_weights_file_is_skipped(tmp_path):
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / W.FILES["alexnet"])
    assert "does not hold torchvision alexnet" in M.Perceptual(["lpips"], tmp_path).skipped["lpips"]


def test_lpips_and_dists_from_local_files(fake_weights, photo):
    p = M.Perceptual(folder=fake_weights)
    assert p.skipped == {}
    saved = torch.load(fake_weights / W.FILES["alexnet"])["features.0.weight"]
    assert torch.equal(p.nets["lpips"].net.slice1[0].weight, saved)  # the file's backbone is used
    saved = torch.load(fake_weights / W.FILES["vgg16"])["features.0.weight"]
    assert torch.equal(p.nets["dists"].stage1[0].weight, saved)
    same, other = p(photo, photo), p(photo, photo[::-1].copy())
    assert same["lpips"] == pytest.approx(0, abs=1e-6) and other["lpips"] > 1e-3
    assert same["dists"] == pytest.approx(0, abs=1e-4) and other["dists"] > same["dists"]


def test_patches_grid_and_shifted_grid():
    rgb = noise_image(512, 768)
    p = F.patches(rgb)
    assert p.shape == (6 + 2, 3, 256, 256) and p.dtype == torch.uint8
    assert torch.equal(p[0], torch.from_numpy(rgb[:256, :256]).permute(2, 0, 1))
    assert torch.equal(p[6], torch.from_numpy(rgb[128:384, 128:384]).permute(2, 0, 1))
    assert len(F.patches(noise_image(300, 300))) == 1 and len(F.patches(noise_image(200, 900))) == 0


def test_fid_kid_scores():
    rng = np.random.default_rng(0)
    real, other = rng.normal(size=(200, 8)), rng.normal(size=(200, 8))
    assert F.score(real, real)["fid"] == pytest.approx(0, abs=1e-6)
    same_dist = F.score(real, other)  # KID is unbiased: about 0 (either sign) for one distribution
    shifted = F.score(real, real + 1.0)
    assert shifted["fid"] == pytest.approx(8.0, rel=1e-6)  # |Δμ|² with equal covariances
    assert same_dist["fid"] < 0.5 and abs(same_dist["kid"]) < 0.1 < 1 < shifted["kid"]


def test_fid_features_from_local_inception(fake_weights):
    fid = F.PatchFID(fake_weights)
    assert fid.skipped is None
    f = fid.features(noise_image(256, 300))
    assert f.shape == (1, 2048) and np.isfinite(f).all()


def test_eval_with_every_metric(fake_weights, tmp_path, tiny_model_file, capsys):
    data = tmp_path / "data"
    data.mkdir()
    from skimage import data as skdata
    for i in range(2):  # 256×320: one 256×256 patch each, no shifted one
        Image.fromarray(skdata.astronaut()[64 * i:64 * i + 256, 100:420]).save(data / f"im{i}.png")
    out = tmp_path / "r.json"
    code = main(["eval", "--data", str(data), "--model", str(tiny_model_file), "--out", str(out),
                 "--weights", str(fake_weights), "-q"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads(out.read_text())
    assert summary["skipped"] == {}
    for key in ("bpp", "psnr-rgb", "ms-ssim-rgb", "lpips", "dists", "fid", "kid"):
        assert len(summary["results"][key]) == 1 and np.isfinite(summary["results"][key][0])
    assert summary["results"]["fid_patches"] == [2]


def test_the_originals_features_are_computed_once(fake_weights, photo):
    """An original compared with several reconstructions runs each backbone on it once, and the
    scores equal those of networks without the reuse."""
    calls = []

    def features(x):
        calls.append(x.shape)
        return x * 2
    reused = M.reuse_features(features)
    a, b, c = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4), torch.full((1, 3, 4, 4), 2.0)
    for x in (a, b, a, c, a, b):
        assert torch.equal(reused(x.clone()), x * 2)
    assert len(calls) == 4  # a, b, c, then b again (only the last two inputs are kept)

    p = M.Perceptual(folder=fake_weights)
    plain = {"lpips": M.build_lpips(fake_weights), "dists": M.build_dists(fake_weights)}
    recs = [photo[::-1].copy(), np.ascontiguousarray(photo[:, ::-1]), photo // 2]
    for rec in recs:
        got = p(photo, rec)
        x, y = M.to_tensor(photo), M.to_tensor(rec)
        with torch.no_grad():
            assert got["lpips"] == pytest.approx(float(plain["lpips"](x, y, normalize=True)), rel=1e-6)
            assert got["dists"] == pytest.approx(float(plain["dists"](x, y)), rel=1e-5)


def test_lowpass_psnr_sees_a_colour_cast_and_forgives_texture():
    """A cast of 8 levels on one channel costs the low-pass PSNR what it costs the PSNR; fine
    texture of zero mean per 16-px block (what a generative decoder invents) costs it nothing."""
    from mrtlab.eval.metrics import area_downsampled, lowpass_psnr, psnr

    from .helpers import smooth_image

    rgb = smooth_image(64, 96).astype(np.int16)
    cast = rgb.copy()
    cast[..., 1] = np.clip(cast[..., 1] + 8, 0, 255)
    texture = rgb + np.tile(np.array([[6, -6], [-6, 6]]), (32, 48))[..., None]
    clip = lambda a: np.clip(a, 0, 255).astype(np.uint8)  # noqa: E731
    rgb, cast, texture = clip(rgb), clip(cast), clip(texture)
    assert lowpass_psnr(rgb, cast) < 40 and abs(lowpass_psnr(rgb, cast) - psnr(rgb, cast)) < 1
    assert psnr(rgb, texture) < 35 and lowpass_psnr(rgb, texture) > psnr(rgb, texture) + 15  # clipping at 0, 255
    assert area_downsampled(rgb).shape == (4, 6, 3) and area_downsampled(rgb[:5, :7]).shape == (1, 1, 3)
