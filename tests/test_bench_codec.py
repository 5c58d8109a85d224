"""bench codec: real files on a folder, times split into parts, compressai rows when present."""
import json
import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from mrtlab.bench import codec as bench
from mrtlab.cli import main
from mrtlab.codec import HEADER_BYTES
from mrtlab.config import build_model
from mrtlab.errors import MrtlabError
from mrtlab.zoo import save_model

from .helpers import TINY_RCM, noise_image, one_error_line, run

SIZES = {"img0.png": (40, 56), "img1.png": (33, 17), "img2.ppm": (24, 20)}  # (h, w)


@pytest.fixture(scope="module")
def rcm_model_file(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model(TINY_RCM)
    model.update()
    return save_model(model, TINY_RCM, tmp_path_factory.mktemp("m") / "tiny_rcm")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("images")
    for i, (name, (h, w)) in enumerate(SIZES.items()):  # .ppm: the image suffixes of eval
        Image.fromarray(noise_image(h, w, seed=i)).save(d / name)
    (d / "notes.txt").write_text("not an image")
    return d


def test_rows_per_image_and_mean(rcm_model_file, folder):
    rows = bench.run(str(rcm_model_file), str(folder), None, 1, None, False, lambda line: None)
    per_image = [r for r in rows if r["image"] != "mean"]
    assert [r["image"] for r in per_image] == list(SIZES)
    for r in per_image:
        for part in ("encode", "decode"):
            assert all(r[f"{part}_{k}_s"] >= 0 for k in ("network", "entropy_model", "entropy_coding"))
            assert r[f"{part}_network_s"] > 0 and r[f"{part}_entropy_coding_s"] > 0
        h, w = SIZES[r["image"]]
        file_bytes = r["bpp"] * h * w / 8
        assert file_bytes == pytest.approx(round(file_bytes))
        assert r["payload_bits"] == 8 * (round(file_bytes) - HEADER_BYTES) > 0
        assert r["tokens"] == -(-h // 8) * -(-w // 8) * 2  # mrt_tiny: 8-px windows of 2 tokens
        assert r["bits_per_token"] == pytest.approx(r["payload_bits"] / r["tokens"])
    mean = rows[-1]
    assert mean["image"] == "mean"
    assert mean["bpp"] == pytest.approx(np.mean([r["bpp"] for r in per_image]))


def test_several_models_in_one_run_get_a_ratio_to_the_first(rcm_model_file, tiny_model_file, folder):
    rows = bench.run(f"{rcm_model_file},{tiny_model_file}", str(folder), 1, 1, None, False, lambda line: None)
    means = [r for r in rows if r["image"] == "mean"]
    assert [r["model"] for r in means] == [str(rcm_model_file), str(tiny_model_file)]
    (ratio,) = [r for r in rows if r["image"] == "ratio"]
    assert ratio["model"] == str(tiny_model_file) and ratio["versus"] == str(rcm_model_file)
    assert ratio["decode_speedup"] == pytest.approx(means[0]["decode_s"] / means[1]["decode_s"])


def test_cli_writes_json_and_a_table(rcm_model_file, folder, tmp_path, capsys):
    out = tmp_path / "codec.json"
    out.write_text("precious")
    argv = ["bench", "codec", "--model", rcm_model_file, "--data", folder, "--no-compressai",
            "--threads", "1", "--json", out]
    code, _, err = run(capsys, *argv)
    assert code == 1 and "exists (use --force" in one_error_line(err)
    assert out.read_text() == "precious"
    code = main([str(a) for a in argv + ["--force"]])
    assert code == 0
    rows = json.loads(out.read_text())
    assert {"model", "image", "encode_s", "decode_s", "bpp"} <= set(rows[0])
    assert "payload/estimate" in capsys.readouterr().out


def test_json_output_is_checked_before_the_work(rcm_model_file, folder, tmp_path, capsys, monkeypatch):
    argv = ["bench", "codec", "--model", rcm_model_file, "--data", folder, "--no-compressai",
            "--threads", "1", "--json"]
    code, _, err = run(capsys, *argv, tmp_path / "new" / "folder" / "x.json")
    assert code == 0, err
    assert (tmp_path / "new" / "folder" / "x.json").is_file()  # its folders made, as compress does
    (tmp_path / "file").write_text("")
    monkeypatch.setattr(bench, "run", lambda *a: pytest.fail("the benchmark ran"))
    code, _, err = run(capsys, *argv, tmp_path / "file" / "x.json")
    assert code == 1 and "is a file, not a folder" in one_error_line(err)


def test_missing_folder_and_missing_compressai(rcm_model_file, folder, monkeypatch):
    with pytest.raises(MrtlabError, match="no such folder"):
        bench.run(str(rcm_model_file), str(folder / "nope"), None, 1, None, False, print)
    monkeypatch.setattr(bench, "find_compressai", lambda python: None)
    with pytest.raises(MrtlabError, match="make compressai-venv"):
        bench.run(str(rcm_model_file), str(folder), 1, 1, None, True, lambda line: None)


FAKE_REFERENCE = r"""
import json, os, sys, time
open(os.environ["PID_FILE"], "w").write(str(os.getpid()))
sys.stderr.write("chatter " * int(os.environ.get("CHATTER", 20000)) + "\n")  # 160 KB > a pipe
sys.stderr.flush()
print("not a row", flush=True)
for path in sys.argv[2:]:
    print(json.dumps({"model": "compressai:fake", "image": path, "encode_s": 0.1, "decode_s": 0.2}),
          flush=True)
time.sleep(float(os.environ.get("SLEEP", "0")))
sys.stderr.write("the last line\n")
sys.exit(int(os.environ.get("EXIT", "0")))
"""


@pytest.fixture
def fake_reference(tmp_path, monkeypatch):
    """compressai_ref.py replaced by a script that is chatty on stderr; gives its pid file."""
    script = tmp_path / "fake_ref.py"
    script.write_text(FAKE_REFERENCE)
    monkeypatch.setattr(bench, "REFERENCE_SCRIPT", script)
    monkeypatch.setenv("PID_FILE", str(tmp_path / "pid"))
    return tmp_path / "pid"


def test_compressai_rows_from_a_chatty_child(fake_reference, folder, monkeypatch):
    images = sorted(folder.glob("img*"))
    rows = bench.run_compressai(sys.executable, images, 1, lambda line: None)
    assert [r["image"] for r in rows] == [p.name for p in images]  # the non-JSON line is skipped
    monkeypatch.setenv("EXIT", "3")
    with pytest.raises(MrtlabError, match=r"failed \(exit code 3\): the last line$"):
        bench.run_compressai(sys.executable, images, 1, lambda line: None)


def test_compressai_child_is_killed_on_an_error(fake_reference, folder, monkeypatch):
    monkeypatch.setenv("SLEEP", "60")
    monkeypatch.setenv("CHATTER", "0")

    def progress(line):
        raise RuntimeError("a bad row")
    with pytest.raises(RuntimeError, match="a bad row"):
        bench.run_compressai(sys.executable, sorted(folder.glob("img*")), 1, progress)
    pid = int(fake_reference.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return  # killed and reaped
    os.kill(pid, 9)
    pytest.fail("the compressai child was left running")


def test_compressai_venv_in_the_project_root(tmp_path, monkeypatch):
    venv_python = tmp_path / "root" / bench.COMPRESSAI_VENV
    venv_python.parent.mkdir(parents=True)
    venv_python.write_text("")
    monkeypatch.setattr(bench, "PROJECT_ROOT", tmp_path / "root")
    monkeypatch.delenv("MRTLAB_COMPRESSAI_PYTHON", raising=False)
    monkeypatch.chdir(tmp_path)  # no .venv-compressai in the current folder
    assert bench.find_compressai(None) == str(venv_python)
    assert bench.find_compressai(sys.executable) == sys.executable


@pytest.mark.slow
def test_compressai_reference_in_the_same_run(rcm_model_file, folder):
    if bench.find_compressai(None) is None:
        pytest.skip("compressai is not installed (make compressai-venv)")
    rows = bench.run(str(rcm_model_file), str(folder), 1, 1, None, True, lambda line: None)
    names = {r["model"] for r in rows}
    assert {"compressai:mbt2018", "compressai:bmshj2018-hyperprior"} <= names
    ratios = [r for r in rows if r["image"] == "ratio"]
    assert len(ratios) == 2 and all(r["decode_speedup"] > 0 for r in ratios)


def test_a_given_compressai_interpreter_must_exist(tmp_path):
    with pytest.raises(MrtlabError, match="no such interpreter"):
        bench.find_compressai(str(tmp_path / "python"))
