"""Losses: MS-SSIM, LPIPS/DISTS from local weights only, the PatchGAN, EMA weights."""
import pytest
import torch

from mrtlab.errors import MrtlabError
from mrtlab.train import TrainConfig
from mrtlab.train.discriminator import PatchGAN, hinge_d_loss, hinge_g_loss
from mrtlab.train.ema import EMA
from mrtlab.train.losses import Distortion, ms_ssim_loss


@pytest.fixture
def no_downloads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("something tried to download")
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)


@pytest.mark.parametrize("loss,file", [("lpips", "alexnet-owt-7be5be79.pth"), ("dists", "vgg16-397923af.pth")])
def test_missing_backbone_is_one_line_naming_the_file(loss, file, tmp_path, monkeypatch, no_downloads):
    monkeypatch.delenv("MRTLAB_WEIGHTS", raising=False)
    with pytest.raises(MrtlabError) as e:
        Distortion(TrainConfig(**{loss: 1.0}, perceptual_weights=str(tmp_path)))
    assert str(tmp_path / file) in str(e.value) and "\n" not in str(e.value)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # the default: torch's hub cache
    with pytest.raises(MrtlabError, match=str(tmp_path / "torch" / "hub" / "checkpoints" / file)):
        Distortion(TrainConfig(**{loss: 1.0}))


def test_perceptual_losses_from_local_weights(perceptual_weights, no_downloads):  # noqa: F811
    d = Distortion(TrainConfig(mse=1.0, msssim=0.5, lpips=0.25, dists=0.125,
                               perceptual_weights=str(perceptual_weights)))
    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 64)
    x_hat = (x + 0.2 * torch.randn_like(x)).requires_grad_()
    total, terms = d(x_hat, x)
    assert set(terms) == {"mse", "msssim", "lpips", "dists"}
    weighted = terms["mse"] + 0.5 * terms["msssim"] + 0.25 * terms["lpips"] + 0.125 * terms["dists"]
    assert torch.allclose(total, weighted)
    total.backward()
    assert torch.isfinite(x_hat.grad).all() and x_hat.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in d.parameters())  # the metrics stay frozen
    _, same = d(x, x)
    assert same["lpips"] < 1e-6 and same["dists"] < 1e-3 and same["msssim"] < 1e-4


def test_ms_ssim_falls_back_to_ssim_on_small_crops():
    x = torch.rand(1, 3, 170, 170)
    assert ms_ssim_loss(x, x) < 1e-5 and ms_ssim_loss(x[..., :64, :64], x[..., :64, :64]) < 1e-5
    assert ms_ssim_loss(x.flip(-1), x) > 0.1 and ms_ssim_loss(x[..., :64, :64].flip(-1), x[..., :64, :64]) > 0.1


def test_missing_pytorch_msssim_is_one_line(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pytorch_msssim", None)  # as if not installed
    with pytest.raises(MrtlabError, match=r"pip install pytorch-msssim \(in the extras mrtlab\[train\]"):
        Distortion(TrainConfig(msssim=1.0))
    with pytest.raises(MrtlabError, match="pytorch-msssim"):
        ms_ssim_loss(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))


def test_optional_packages_name_the_extras_that_install_them():
    """errors.OPTIONAL says which extras of setup.cfg hold each package; it must agree."""
    import configparser
    from pathlib import Path

    from mrtlab.errors import OPTIONAL

    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    extras = {k: {p.strip() for p in v.split(";")} for k, v in cfg["options.extras_require"].items()}
    for pip, named in OPTIONAL.values():
        assert set(named) == {x for x, pkgs in extras.items() if pip in pkgs and x != "test"}, pip
        assert pip in extras["test"], pip


def test_only_weighted_terms_are_built():
    d = Distortion(TrainConfig())  # MSE only: no network, no weights needed
    assert d.lpips is None and d.dists is None and list(d.parameters()) == []


def test_patchgan_scores_patches_and_hinge_losses():
    d = PatchGAN(width=8)
    scores = d(torch.rand(2, 3, 64, 64))
    assert scores.shape == (2, 1, 6, 6)
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert hinge_d_loss(real, fake) == pytest.approx(0.25 + 0.5)
    assert hinge_g_loss(fake) == pytest.approx(1.0)


def test_ema_averages_trained_weights_and_copies_frozen_ones():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    model[0].requires_grad_(False)
    ema = EMA(model, decay=0.99)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)  # first update: decay ramps from (1+0)/(10+0) = 0.1
    assert torch.equal(ema.model[0].weight, model[0].weight)
    assert torch.allclose(ema.model[1].weight, model[1].weight - 0.1)


def test_window_pattern_sees_only_the_error_repeated_in_every_window():
    from mrtlab.train.losses import window_pattern

    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 96)
    tile = 0.1 * torch.randn(1, 3, 32, 32)
    repeated = x + tile.repeat(1, 1, 2, 3)                       # the same error in all 6 windows
    assert torch.allclose(window_pattern(repeated, x, 32), tile.square().mean())
    signs = torch.tensor([1.0, -1.0]).repeat_interleave(32).view(1, 1, 64, 1)
    cancelling = x + tile.repeat(1, 1, 2, 3) * signs            # opposite in alternate rows of windows
    assert window_pattern(cancelling, x, 32) < 1e-12 and torch.nn.functional.mse_loss(cancelling, x) > 1e-3
    d = Distortion(TrainConfig(mse=1.0, window_pattern=10.0), period=32)
    total, terms = d(repeated, x)
    assert torch.allclose(total, terms["mse"] + 10 * terms["window_pattern"])
    with pytest.raises(MrtlabError, match="train.window_pattern needs a model with a grid"):
        Distortion(TrainConfig(window_pattern=1.0))


def test_phase_pattern_sees_a_fine_mesh_that_changes_sign_between_windows():
    from mrtlab.train.losses import phase_pattern, window_pattern

    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 96)
    cell = torch.zeros(4, 4)
    cell[0], cell[:, 0] = 0.05, 0.05                           # a 4-px mesh of lines
    signs = torch.tensor([1.0, -1.0]).repeat_interleave(32).view(1, 1, 64, 1)
    meshed = x + cell.repeat(16, 24) * signs                   # opposite in alternate rows of windows
    want = (cell - cell.mean()).square().mean()
    assert window_pattern(meshed, x, 32) < 1e-12               # the window average cancels it
    assert torch.allclose(phase_pattern(meshed, x, 4, 32), want)
    assert phase_pattern(x + 0.1, x, 4, 32) < 1e-12            # a shift of a window's colour is no mesh
    smooth = x + torch.linspace(0, 0.2, 96).view(1, 1, 1, 96)  # nor is a gentle ramp across the image
    assert phase_pattern(smooth, x, 4, 32) < 0.02 * want
    d = Distortion(TrainConfig(mse=1.0, phase_pattern=100.0), period=32)
    total, terms = d(meshed, x)
    assert torch.allclose(total, terms["mse"] + 100 * terms["phase_pattern"])
    with pytest.raises(MrtlabError, match="train.phase_period must divide the model's window of 32 px"):
        Distortion(TrainConfig(phase_pattern=1.0, phase_period=5), period=32)


def test_lowpass_term_sees_a_colour_shift_and_not_fine_texture():
    import torch

    from mrtlab.train.losses import lowpass_mse

    x = torch.rand(2, 3, 64, 64) * 0.5 + 0.25
    shifted = x + torch.tensor([0.0, 0.05, 0.0]).view(1, 3, 1, 1)
    texture = x + 0.1 * torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(32, 32)
    assert lowpass_mse(shifted, x).item() == pytest.approx(0.05 ** 2 / 3, rel=1e-4)
    assert lowpass_mse(texture, x).item() < 1e-12 < torch.mean((texture - x) ** 2).item()
    cfg = TrainConfig(mse=1.0, lowpass=2.0)
    total, terms = Distortion(cfg)(shifted, x)
    assert total.item() == pytest.approx(terms["mse"].item() + 2 * terms["lowpass"].item())
