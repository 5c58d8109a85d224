"""The scripts in tools/ that the docs' figures come from: token statistics and side-by-side
crops."""
import json
import runpy
from pathlib import Path

import pytest
import torch
from PIL import Image

from mrtlab.config import build_model
from mrtlab.models import identify, save_model

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
