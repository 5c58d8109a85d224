"""bench codec: real files on a folder, times split into parts, compressai rows when present."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from mrtlab.bench import codec as bench
from mrtlab.cli import main
from mrtlab.config import build_model
from mrtlab.errors import MrtlabError
from mrtlab.models import save_model

from .conftest import TINY, noise_image


@pytest.fixture(scope="module")
def rcm_model_file(tmp_path_factory):
    cfg = dict(TINY, entropy_model={"class_path": "rcm", "init_args": {"dim": 16, "max_slots": 2}})
    torch.manual_seed(0)
    model = build_model(cfg)
    model.update()
    return save_model(model, cfg, tmp_path_factory.mktemp("m") / "tiny_rcm")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("images")
    for i, (h, w) in enumerate([(40, 56), (33, 17)]):
        Image.fromarray(noise_image(h, w, seed=i)).save(d / f"img{i}.png")
    (d / "notes.txt").write_text("not an image")
    return d


def test_rows_per_image_and_mean(rcm_model_file, folder):
    rows = bench.run(str(rcm_model_file), str(folder), None, 1, None, False, lambda line: None)
    per_image = [r for r in rows if r["image"] != "mean"]
    assert [r["image"] for r in per_image] == ["img0.png", "img1.png"]
    for r in per_image:
        parts = r["encode_network_s"] + r["encode_entropy_model_s"] + r["encode_entropy_coding_s"]
        assert r["encode_s"] == pytest.approx(parts) and r["encode_entropy_coding_s"] > 0
        parts = r["decode_network_s"] + r["decode_entropy_model_s"] + r["decode_entropy_coding_s"]
        assert r["decode_s"] == pytest.approx(parts) and r["decode_entropy_coding_s"] > 0
        assert r["bpp"] > 0 and r["payload_bits"] <= r["bpp"] * 40 * 56
    mean = rows[-1]
    assert mean["image"] == "mean"
    assert mean["bpp"] == pytest.approx(np.mean([r["bpp"] for r in per_image]))


def test_cli_writes_json_and_a_table(rcm_model_file, folder, tmp_path, capsys):
    out = tmp_path / "codec.json"
    code = main(["bench", "codec", "--model", str(rcm_model_file), "--data", str(folder),
                 "--no-compressai", "--threads", "1", "--json", str(out)])
    assert code == 0
    rows = json.loads(out.read_text())
    assert {"model", "image", "encode_s", "decode_s", "bpp"} <= set(rows[0])
    assert "payload/estimate" in capsys.readouterr().out


def test_missing_folder_and_missing_compressai(rcm_model_file, folder, monkeypatch):
    with pytest.raises(MrtlabError, match="does not exist"):
        bench.run(str(rcm_model_file), str(folder / "nope"), None, 1, None, False, print)
    monkeypatch.setattr(bench, "find_compressai", lambda python: None)
    with pytest.raises(MrtlabError, match="make compressai-venv"):
        bench.run(str(rcm_model_file), str(folder), 1, 1, None, True, lambda line: None)


@pytest.mark.slow
def test_compressai_reference_in_the_same_run(rcm_model_file, folder):
    if bench.find_compressai(None) is None:
        pytest.skip("compressai is not installed (make compressai-venv)")
    rows = bench.run(str(rcm_model_file), str(folder), 1, 1, None, True, lambda line: None)
    names = {r["model"] for r in rows}
    assert {"compressai:mbt2018", "compressai:bmshj2018-hyperprior"} <= names
    ratios = [r for r in rows if r["image"] == "ratio"]
    assert len(ratios) == 2 and all(r["decode_speedup"] > 0 for r in ratios)
