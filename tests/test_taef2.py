"""MRT in TAEF2's latent: the frozen autoencoder, the tokenizer around it, the latent cache
of stage 1, and ``mrtlab weights`` knowing its files.

Most tests use TAEF2's architecture with random weights written to a temporary folder (the
real files are not on a fresh machine); the test of the real weights skips without them."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from mrtlab.config import build_model
from mrtlab.errors import MrtlabError
from mrtlab.pretrained import taef2
from mrtlab.zoo import identify

from .helpers import TINY, image_folder, read_log, tiny_train

SHARED = Path(__file__).resolve().parents[2] / "shared" / "weights"
TAEF2_TINY = dict(TINY, tokenizer={"class_path": "taef2_window", "init_args": {"window": 2, "blocks": 1}})


@pytest.fixture(scope="session")
def taef2_folder(tmp_path_factory):
    """A weights folder with TAEF2's two networks, randomly initialised, under taef2/."""
    folder = tmp_path_factory.mktemp("taef2-weights")
    (folder / "taef2").mkdir()
    torch.manual_seed(0)
    for part, build in taef2.BUILD.items():
        torch.save(build().state_dict(), folder / "taef2" / f"taef2_{part}.pth")
    return folder


@pytest.fixture
def taef2_weights(taef2_folder, monkeypatch):
    monkeypatch.setenv("MRTLAB_WEIGHTS", str(taef2_folder))
    return taef2_folder


def tiny_taef2(seed: int = 0):
    torch.manual_seed(seed)
    return build_model(TAEF2_TINY)


def test_networks_have_the_layout_of_the_published_files(taef2_folder):
    """The state-dict names and shapes are those of taef2_{encoder,decoder}.pth: 79 tensors
    each, and the layer indices the files use (decoder: 0 is the clamp, no weights)."""
    enc, dec = (torch.load(taef2_folder / "taef2" / f"taef2_{p}.pth", weights_only=True)
                for p in ("encoder", "decoder"))
    assert len(enc) == len(dec) == 79
    assert sorted({int(k.split(".")[0]) for k in dec}) == [1, 3, 4, 5, 7, 8, 9, 10, 12, 13, 14, 15, 17, 18, 19]
    assert enc["14.weight"].shape == (32, 64, 3, 3) and dec["1.weight"].shape == (64, 32, 3, 3)
    x = torch.rand(1, 3, 40, 56)
    z = taef2.encoder()(x)
    assert z.shape == (1, 32, 5, 7) and taef2.decoder()(z).shape == (1, 3, 40, 56)


@pytest.mark.skipif(not taef2.path("decoder", str(SHARED)).is_file(),
                    reason="the TAEF2 weights are not on this machine (../shared/weights/taef2)")
def test_real_weights_reconstruct_a_photo():
    """The published weights load strictly and round-trip skimage's astronaut at about the
    quality their README states for Kodak (PSNR 30 dB)."""
    from skimage import data

    enc, dec = taef2.load("encoder", str(SHARED)), taef2.load("decoder", str(SHARED))
    x = torch.from_numpy(data.astronaut()[:256, :256].copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        y = dec(enc(x)).clamp(0, 1)
    psnr = -10 * torch.log10(((y - x) ** 2).mean())
    assert 26 < psnr < 40, psnr


def test_missing_and_wrong_files_are_one_line(tmp_path):
    with pytest.raises(MrtlabError, match=r"weights not found: .*taef2_encoder.pth \(taef2_encoder"):
        taef2.load("encoder", str(tmp_path))
    (tmp_path / "taef2").mkdir()
    torch.save(taef2.decoder().state_dict(), tmp_path / "taef2" / "taef2_encoder.pth")
    with pytest.raises(MrtlabError, match="does not hold TAEF2 encoder weights") as e:
        taef2.load("encoder", str(tmp_path))
    assert "\n" not in str(e.value)


def test_autoencoder_is_not_in_the_model_state(taef2_weights):
    model = tiny_taef2()
    model(torch.rand(1, 3, 32, 32))      # the autoencoder is loaded by now
    assert not [k for k in model.state_dict() if "autoencoder" in k or k.startswith("tokenizer.ae")]
    assert {k.split(".")[1] for k in model.state_dict() if k.startswith("tokenizer.")} == \
        {"stem", "pos_in", "synthesis", "noise"}


def test_any_size_round_trips_through_a_file(taef2_weights):
    """Odd sizes are padded to whole windows and cropped back; decoding the payload gives
    the encoder's symbols and the same picture as the encoder's own reconstruction."""
    model = identify(tiny_taef2(), TAEF2_TINY, "taef2-tiny")
    model.update()
    x = torch.rand(1, 3, 37, 53)
    res = model.compress(x)
    out = model.decompress(res["payload"], 37, 53)
    assert torch.equal(out["symbols"], res["symbols"])
    assert out["x_hat"].shape == (3, 37, 53)
    assert torch.equal(out["x_hat"], model.reconstruct(res["symbols"], res["grid"]))


def test_latent_io_reads_and_writes_the_latent(taef2_weights):
    """In latent space, tokenize takes the TAEF2 latent (unit scale) and detokenize gives one
    of the same size; the grid counts the image's pixels (8 per latent position)."""
    model = tiny_taef2()
    z = torch.randn(2, 32, 5, 7) / taef2.UNIT
    with model.tokenizer.in_latent_space():
        out = model(z, tokens=2)
    assert out["x_hat"].shape == z.shape
    assert (out["grid"].height, out["grid"].width) == (40, 56)
    assert not model.tokenizer.latent_io        # left as it was
    assert model(torch.rand(1, 3, 40, 56))["x_hat"].shape == (1, 3, 40, 56)


def test_a_pinned_sha256_refuses_other_files(taef2_weights):
    section = dict(TAEF2_TINY, tokenizer={"class_path": "taef2_window",
                                          "init_args": {"window": 2, "blocks": 1, "encoder_sha256": "0" * 64}})
    model = build_model(section)
    with pytest.raises(MrtlabError, match="is not the TAEF2 encoder this model was trained with"):
        model(torch.rand(1, 3, 32, 32))


def test_stage2_gradients_cross_the_frozen_decoder(taef2_weights):
    """The synthesis learns through the TAEF2 decoder; the decoder itself has no weights to train."""
    model = tiny_taef2()
    loss = model(torch.rand(1, 3, 32, 32))["x_hat"].square().mean()
    loss.backward()
    assert model.tokenizer.synthesis[-1].weight.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in taef2.load("decoder", str(taef2_weights)).parameters())


def test_latent_crops_are_cached_once_and_reproducible(taef2_weights, tmp_path, capsys):
    from mrtlab.train.data import LatentCrops

    data = image_folder(tmp_path / "imgs", size=48, n=2)
    tok = tiny_taef2().tokenizer
    a = LatentCrops(data, 32, 0, tok, tmp_path / "cache")
    assert "encoding 2 training images into the latent once" in capsys.readouterr().err
    cached = list((tmp_path / "cache").glob("latents-*.safetensors"))
    assert len(cached) == 1
    b = LatentCrops(data, 32, 0, tok, tmp_path / "cache")
    assert "encoding" not in capsys.readouterr().err
    assert a[5].shape == (32, 4, 4) and torch.equal(a[5], b[5]) and not torch.equal(a[5], a[6])
    with torch.no_grad():   # crop (0, 0) of an image's latent is the latent of the whole image there
        whole = tok.analysis(torch.rand(1, 3, 48, 48))
    assert whole.shape == (1, 32, 6, 6)


def test_latent_crops_need_an_autoencoder_tokenizer(tmp_path, tiny_model):
    from mrtlab.train.data import LatentCrops

    data = image_folder(tmp_path / "imgs", size=48, n=1)
    with pytest.raises(MrtlabError, match="train.latent_space needs a tokenizer in a pretrained"):
        LatentCrops(data, 32, 0, tiny_model.tokenizer, tmp_path / "cache")


def test_stage1_trains_in_the_latent_and_stage2_on_pixels(taef2_weights, tmp_path):
    """Stage 1 in the latent (bpp counts the image's pixels), then stage 2 through the
    frozen decoder from its export: the coder side, and so every file, stays as it was."""
    from mrtlab.train import train
    from mrtlab.zoo import fingerprint
    from mrtlab.zoo.model_files import load_weights

    data = image_folder(tmp_path / "imgs", size=48, n=2)
    out1 = tmp_path / "s1"
    train(tiny_taef2(), TAEF2_TINY, tiny_train(out1, data, latent_space=True, rate_weight=0.01))
    rows = [r for r in read_log(out1) if "bpp" in r]
    assert len(rows) == 4 and all(0 < r["bpp"] < 1 for r in rows)   # raw capacity: 0.3 bpp per token
    out2 = tmp_path / "s2"
    model = tiny_taef2(1)
    train(model, TAEF2_TINY, tiny_train(out2, data, stage=2, init=str(out1 / "model.safetensors"), steps=2))
    a, b = tiny_taef2(2), tiny_taef2(3)
    load_weights(a, out1 / "model.safetensors")
    load_weights(b, out2 / "model.safetensors")
    assert fingerprint(a, TAEF2_TINY) == fingerprint(b, TAEF2_TINY)
    assert not torch.equal(a.tokenizer.synthesis[-1].weight, b.tokenizer.synthesis[-1].weight)


@pytest.mark.parametrize("bad, why", [
    (dict(stage=2, init="x"), "set train.stage 1"),
    (dict(dists=0.1), "unset dists"),
    (dict(crop=36), "multiple of 8"),
])
def test_latent_space_refuses_what_it_cannot_train(taef2_weights, tmp_path, bad, why):
    from mrtlab.train import train

    data = image_folder(tmp_path / "imgs", size=48, n=1)
    with pytest.raises(MrtlabError, match=why):
        train(tiny_taef2(), TAEF2_TINY, tiny_train(tmp_path / "run", data, latent_space=True, **bad))


def test_weights_command_lists_and_imports_taef2(taef2_folder, tmp_path, capsys):
    from mrtlab.cli import main

    dest = tmp_path / "w"
    assert main(["weights", "import", str(taef2_folder / "taef2"), "--weights", str(dest)]) == 0
    said = capsys.readouterr().out
    assert "(taef2_encoder, for taef2 models)" in said and "(taef2_decoder, for taef2 models)" in said
    assert (dest / "taef2" / "taef2_decoder.pth").is_file()
    main(["weights", "list", "--weights", str(dest)])
    listing = capsys.readouterr().out
    line = next(s for s in listing.splitlines() if s.startswith("taef2_decoder"))
    assert "found" in line
    assert "(not the official download's bytes); loads into its network" in listing  # random weights
    assert "MRTLAB_WEIGHTS" not in os.environ or os.environ["MRTLAB_WEIGHTS"] != str(dest)


def test_the_fingerprint_needs_no_autoencoder_file(taef2_weights, tmp_path, monkeypatch):
    """The coder side is traced in the latent: a machine without the TAEF2 files still loads
    the model and names its files' fingerprint; the same model with them gets the same one."""
    from mrtlab.models.sides import coder_names
    from mrtlab.zoo import fingerprint

    with_files = fingerprint(tiny_taef2(), TAEF2_TINY)
    monkeypatch.setenv("MRTLAB_WEIGHTS", str(tmp_path))
    model = tiny_taef2()
    assert fingerprint(model, TAEF2_TINY) == with_files
    assert {"tokenizer.stem.0.weight", "tokenizer.pos_in"} <= coder_names(model)
    assert not {n for n in coder_names(model) if n.startswith(("tokenizer.synthesis", "tokenizer.noise"))}
    with pytest.raises(MrtlabError, match="weights not found"):
        model(torch.rand(1, 3, 32, 32))
