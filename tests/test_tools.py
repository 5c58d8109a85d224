"""The scripts in tools/ that the docs' figures come from: token statistics and side-by-side
crops."""
import json
import runpy
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mrtlab.config import build_model
from mrtlab.zoo import identify, save_model

from .helpers import TINY, image_folder

TOOLS = Path(__file__).resolve().parents[1] / "tools"
VARIABLE = dict(TINY, nested_dropout=True, latent_tokens=3,
                entropy_model={"class_path": "rcm", "init_args": {"dim": 16, "max_slots": 3}})


def tool(name):
    return runpy.run_path(str(TOOLS / f"{name}.py"))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return image_folder(tmp_path_factory.mktemp("images"), size=48, n=2)


@pytest.fixture(scope="module")
def variable_model(tmp_path_factory):
    torch.manual_seed(0)
    model = identify(build_model(VARIABLE), VARIABLE, "tiny-variable")
    return save_model(model, VARIABLE, tmp_path_factory.mktemp("model") / "variable")


def test_token_stats_give_bits_redundancy_and_every_rate(images, variable_model, capsys):
    assert tool("token_stats")["main"](["--model", str(variable_model), "--data", str(images)]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert {"bits_token1", "bits_token3", "token_redundancy", "k1_bpp", "k3_psnr"} <= stats.keys()
    assert stats["k1_bpp"] < stats["k3_bpp"]
    assert tool("token_stats")["main"](["--model", "nonexistent", "--data", str(images)]) == 1
    assert "token_stats: error: model 'nonexistent' not found" in capsys.readouterr().err


def test_side_by_side_labels_every_tile(tmp_path, images, variable_model, capsys):
    main = tool("side_by_side")["main"]
    image = sorted(images.iterdir())[0]
    out = tmp_path / "crops.png"
    args = [str(image), str(out), "--model", f"tiny={variable_model}:2", "--baseline", "jpeg:0.5",
            "--box", "0,0,32,24", "--zoom", "3"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "original" and lines[1].startswith("tiny k=2 ") and lines[2].startswith("jpeg q=")
    assert Image.open(out).size == (3 * 96 + 2 * 4, 72 + 16)
    assert main(args) == 1 and "exists; pass --force" in capsys.readouterr().err
    assert main([str(image), str(tmp_path / "x.png"), "--box", "40,0,32,24"]) == 1
    assert "is not inside the 48×48 image" in capsys.readouterr().err
    assert main([str(image), str(tmp_path / "x.png"), "--model", "tiny"]) == 1
    assert "expected LABEL=MODEL:K" in capsys.readouterr().err
    assert main([str(image), str(out), "--model", f"tiny={variable_model}:2:fidelity", "--box", "0,0,32,24",
                 "--force"]) == 0                                      # a decoder named after K
    assert capsys.readouterr().out.splitlines()[1] == lines[1]
    assert main([str(image), str(out), "--model", f"tiny={variable_model}:2:realism", "--force"]) == 1
    assert "has no decoder 'realism' (it has: fidelity)" in capsys.readouterr().err


def test_side_by_side_draws_what_a_second_model_changes(tmp_path, images, variable_model, capsys):
    """``--difference``: the same model twice differs nowhere (flat mid-grey); JPEG does."""
    main = tool("side_by_side")["main"]
    image, out = sorted(images.iterdir())[0], tmp_path / "diff.png"
    args = [str(image), str(out), "--model", f"a={variable_model}:2", "--model", f"b={variable_model}:2",
            "--baseline", "jpeg:0.5", "--box", "0,0,32,24", "--zoom", "1", "--difference", "8"]
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[2].endswith("(diff x8)")
    tiles = np.asarray(Image.open(out))[16:, :, 0]
    assert (tiles[:, 2 * 36:2 * 36 + 32] == 128).all() and (tiles[:, 3 * 36:] != 128).any()
    assert main([str(image), str(out), "--model", f"a={variable_model}:2", "--difference", "8", "--force"]) == 1
    assert "--difference needs two --model" in capsys.readouterr().err


def test_decoder_spectrum_tells_a_window_pattern_from_a_hatch_and_from_detail():
    shares = tool("decoder_spectrum")["spectrum_shares"]
    y, x = np.indices((256, 384))
    periods = {"window": 32, "patch": 8}
    s = shares(np.cos(2 * np.pi * y / 32) + np.cos(2 * np.pi * x / 16), periods)   # repeats per window
    assert s["grid_share"] > 0.99 and s["grid_bins"] < 0.01
    s = shares((x + y) % 2 * 1.0 + (x % 4 == 0), periods)                          # periods 2 and 4
    assert s["phase_share"] > 0.99 and s["phase_bins"] < 0.02 and s["phase_peaks"][0] == (-0.5, -0.5)
    s = shares(np.random.default_rng(0).normal(size=(256, 384)), periods)            # spread evenly
    for name in ("grid", "phase", "fine"):
        assert abs(s[f"{name}_share"] - s[f"{name}_bins"]) < 0.02


def test_decoder_spectrum_compares_decoders_of_one_coder(images, variable_model, capsys):
    main = tool("decoder_spectrum")["main"]
    assert main(["--base", str(variable_model), "--tuned", str(variable_model), "--data", str(images)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["images"]) == 2 and out["mean"]["fine_share"] == 0  # the same decoder: no difference
    assert main(["--base", str(variable_model), "--tuned", "nonexistent", "--data", str(images)]) == 1
    assert "decoder_spectrum: error: model 'nonexistent' not found" in capsys.readouterr().err
