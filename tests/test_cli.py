"""The command line: every bad input ends in one line on stderr and a non-zero exit."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mrtlab.errors import MrtlabError
from mrtlab.zoo.catalog import BUNDLED_DIR

from .helpers import noise_image, one_error_line, run


@pytest.fixture(scope="module")
def small_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("png") / "small.png"
    Image.fromarray(noise_image(40, 56)).save(path)
    return path


@pytest.fixture
def mrt_file(tmp_path, small_png, capsys):
    code, out, _ = run(capsys, "compress", small_png, "-o", tmp_path)
    assert code == 0
    return tmp_path / "small.mrt"


def test_compress_decompress_astronaut(tmp_path, astronaut_png, capsys):
    code, out, _ = run(capsys, "compress", astronaut_png, "-o", tmp_path)
    assert code == 0 and "bpp" in out
    f = tmp_path / "astronaut.mrt"
    assert 8 * f.stat().st_size / (512 * 512) <= 0.1
    code, out, _ = run(capsys, "decompress", f, "-o", tmp_path / "rec")
    assert code == 0
    rec = Image.open(tmp_path / "rec" / "astronaut.png")
    assert rec.size == (512, 512) and rec.mode == "RGB"
    code, out, _ = run(capsys, "info", f)
    assert code == 0 and "512x512" in out and "16 header" in out


def make_mode(path, mode):
    rgb = noise_image(23, 31)
    if mode == "I;16":
        Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257).save(path)
        assert Image.open(path).mode.startswith("I;16")
        return
    im = Image.fromarray(rgb)
    if mode == "P+transparency":
        im = im.convert("P")
        im.info["transparency"] = 0
        im.save(path, transparency=0)
        return
    im.convert(mode).save(path)


@pytest.mark.parametrize("mode,suffix", [("L", ".png"), ("LA", ".png"), ("P", ".png"),
                                         ("P+transparency", ".png"), ("RGBA", ".png"),
                                         ("I;16", ".png"), ("1", ".png"), ("CMYK", ".jpg"),
                                         ("F", ".tif")])
def test_modes_are_converted_with_a_notice(tmp_path, capsys, mode, suffix):
    src = tmp_path / f"img{suffix}"
    make_mode(src, mode)
    code, out, err = run(capsys, "compress", src, "-o", tmp_path / "o")
    assert code == 0, err
    assert "note: converted" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "decompress", tmp_path / "o" / "img.mrt", "-o", tmp_path / "o")
    assert code == 0, err
    assert Image.open(tmp_path / "o" / "img.png").size == (31, 23)


def test_rgb_has_no_notice(tmp_path, small_png, capsys):
    code, _, err = run(capsys, "compress", small_png, "-o", tmp_path)
    assert code == 0 and err == ""


@pytest.mark.parametrize("kind,expect", [
    ("missing", "no such file"),
    ("text", "not an image"),
    ("garbage_png", "not an image"),
    ("truncated_png", "corrupt or truncated"),
    ("folder", "is a folder"),
    ("huge", "image too large"),
])
def test_bad_images(tmp_path, small_png, capsys, kind, expect):
    src = tmp_path / f"{kind}.png"
    if kind == "text":
        src.write_text("hello, I am not a picture\n")
    elif kind == "garbage_png":
        src.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    elif kind == "truncated_png":
        src.write_bytes(small_png.read_bytes()[:300])
    elif kind == "folder":
        src.mkdir()
    elif kind == "huge":
        Image.new("1", (9000, 6000)).save(src)
    code, out, err = run(capsys, "compress", src, "-o", tmp_path / "o")
    assert code != 0
    assert expect in one_error_line(err)
    assert not (tmp_path / "o" / f"{kind}.mrt").exists()


def flip_bit(data, i):
    """Flip bit ``i`` of the file (byte i // 8)."""
    b = bytearray(data)
    b[i // 8 % len(b)] ^= 1 << (i % 8)
    return bytes(b)


@pytest.mark.parametrize("damage,expect", [
    ("flip_payload", "checksum"),
    ("flip_header", "checksum"),
    ("truncate", "checksum"),
    ("short", "truncated"),
    ("junk", "checksum"),
    ("magic", "not an mrtlab file"),
    ("version", "version"),
    ("empty", "truncated"),
    ("text", "not an mrtlab file"),   # shorter than a header: what it is comes first
])
def test_damaged_files(tmp_path, mrt_file, capsys, damage, expect):
    data = mrt_file.read_bytes()
    data = {
        "flip_payload": lambda d: flip_bit(d, 8 * 20 + 3),
        "flip_header": lambda d: flip_bit(d, 8 * 8 + 1),
        "truncate": lambda d: d[:-5],
        "short": lambda d: d[:9],
        "junk": lambda d: d + b"junk",
        "magic": lambda d: b"PK" + d[2:],
        "version": lambda d: d[:2] + b"\x07" + d[3:],
        "empty": lambda d: b"",
        "text": lambda d: b"hello\n",
    }[damage](data)
    bad = tmp_path / "bad.mrt"
    bad.write_bytes(data)
    code, _, err = run(capsys, "decompress", bad, "-o", tmp_path / "o")
    assert code != 0 and expect in one_error_line(err)
    assert not (tmp_path / "o" / "bad.png").exists()
    code, _, err = run(capsys, "info", bad)
    assert code != 0 and expect in one_error_line(err)


def test_file_from_another_model(tmp_path, small_png, tiny_model_file, capsys):
    code, _, err = run(capsys, "compress", small_png, "-o", tmp_path, "--model", tiny_model_file)
    assert code == 0, err
    f = tmp_path / "small.mrt"
    code, _, err = run(capsys, "decompress", f, "-o", tmp_path / "a")
    assert code != 0 and "not bundled" in one_error_line(err)
    code, _, err = run(capsys, "decompress", f, "-o", tmp_path / "b", "--model", "default")
    assert code != 0 and "another model" in one_error_line(err)
    code, _, err = run(capsys, "decompress", f, "-o", tmp_path / "c", "--model", tiny_model_file)
    assert code == 0, err


def test_wrong_model_argument(tmp_path, small_png, capsys):
    code, _, err = run(capsys, "compress", small_png, "-o", tmp_path, "--model", "nonesuch")
    assert code != 0 and "not found" in one_error_line(err)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not safetensors at all")
    (tmp_path / "bad.yaml").write_text((BUNDLED_DIR / "default.yaml").read_text())
    code, _, err = run(capsys, "compress", small_png, "-o", tmp_path, "--model", bad)
    assert code != 0 and "cannot read model weights" in one_error_line(err)
    (tmp_path / "bad.yaml").write_text("model: [1, 2\n")
    code, _, err = run(capsys, "compress", small_png, "-o", tmp_path, "--model", bad)
    assert code != 0 and "not valid YAML" in one_error_line(err)


def test_no_overwrite_without_force(tmp_path, small_png, mrt_file, capsys):
    before = mrt_file.read_bytes()
    mrt_file.write_bytes(b"precious")
    code, _, err = run(capsys, "compress", small_png, "-o", mrt_file.parent)
    assert code != 0 and "--force" in one_error_line(err)
    assert mrt_file.read_bytes() == b"precious"
    code, _, err = run(capsys, "compress", small_png, "-o", mrt_file.parent, "--force")
    assert code == 0 and mrt_file.read_bytes() == before
    png = mrt_file.with_suffix(".png")
    png.write_bytes(b"precious")
    code, _, err = run(capsys, "decompress", mrt_file, "-o", mrt_file.parent)
    assert code != 0 and png.read_bytes() == b"precious"


def test_one_bad_input_does_not_stop_the_others(tmp_path, small_png, capsys):
    code, out, err = run(capsys, "compress", tmp_path / "missing.png", small_png, "-o", tmp_path)
    assert code == 1 and err.splitlines() == [f"mrtlab: error: {tmp_path / 'missing.png'}: no such file",
                                              "mrtlab: error: 1 of 2 images failed"]
    assert (tmp_path / "small.mrt").exists()


def test_console_script_exit_code_and_no_traceback(tmp_path):
    bad = tmp_path / "x.mrt"
    bad.write_bytes(b"MR\x01" + bytes(40))
    proc = subprocess.run([sys.executable, "-m", "mrtlab.cli", "decompress", str(bad), "-o", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert proc.stderr.startswith("mrtlab: error: ") and "Traceback" not in proc.stderr


@pytest.mark.parametrize("w,h", [(1, 1), (33, 17), (769, 513)])
def test_odd_sizes_through_the_command_line(tmp_path, capsys, w, h):
    src = tmp_path / "odd.png"
    Image.fromarray(noise_image(h, w)).save(src)
    code, _, err = run(capsys, "compress", src, "-o", tmp_path)
    assert code == 0, err
    code, _, err = run(capsys, "decompress", tmp_path / "odd.mrt", "-o", tmp_path / "out")
    assert code == 0, err
    assert Image.open(tmp_path / "out" / "odd.png").size == (w, h)


def test_rate_options(tmp_path, small_png, tiny_model_file, capsys):
    code, _, err = run(capsys, "compress", small_png, "-o", tmp_path, "--model", tiny_model_file,
                       "--tokens", "1")
    assert code != 0 and "fixed rate" in one_error_line(err)
    code, _, err = run(capsys, "compress", small_png, "-o", tmp_path / "k1", "--tokens", "1")
    assert code == 0, err            # the bundled default is variable-rate
    code, _, err = run(capsys, "compress", small_png, "-o", tmp_path / "k5", "--tokens", "5")
    assert code != 0 and "between 1 and 4" in one_error_line(err)
    code, _, err = run(capsys, "compress", small_png, "-o", tmp_path, "--model", tiny_model_file,
                       "--tokens", "2")   # all of the tiny model's tokens: accepted
    assert code == 0, err
    other = tmp_path / "other.png"
    other.write_bytes(small_png.read_bytes())
    code, _, err = run(capsys, "compress", small_png, other, "-o", tmp_path / "many",
                       "--model", tiny_model_file, "--bpp", "0.05")
    assert code == 1 and "needs a variable-rate model" in one_error_line(err)  # once, not per image
    for bpp in ("-1", "0"):
        code, _, err = run(capsys, "compress", small_png, "-o", tmp_path / "neg", "--bpp", bpp)
        assert code == 1 and "must be above 0 bpp" in one_error_line(err)
    assert not (tmp_path / "neg").exists()


def test_fit_entropy_model_does_not_overwrite(tmp_path, monkeypatch):
    import runpy
    from pathlib import Path

    tool = runpy.run_path(str(Path(__file__).parents[1] / "tools" / "fit_entropy_model.py"))
    (tmp_path / "x.yaml").write_text("precious")
    argv = ["--entropy", "factorized", "--data", str(tmp_path), "--out", str(tmp_path / "x")]
    with pytest.raises(SystemExit, match="x.yaml exists \\(use --force"):
        tool["main"](argv)
    assert (tmp_path / "x.yaml").read_text() == "precious"

    def stop(name):  # past the check: the fit itself is not run
        raise MrtlabError("stop here")
    monkeypatch.setitem(tool["fit"].__globals__, "load_model", stop)
    with pytest.raises(SystemExit, match="stop here"):
        tool["main"](argv + ["--force"])


def test_models_lists_fingerprint_and_rate(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    name, fp, rate, decoders, _ = out.splitlines()[0].split("\t")
    assert name == "default" and len(fp) == 8 and rate == "tokens 1…4 (--tokens/--bpp)"
    assert decoders.startswith("decoders: fidelity ")


def test_bundle_model_ships_half_weights_and_does_not_overwrite(tmp_path, tiny_model_file, monkeypatch,
                                                               capsys):
    import runpy
    from pathlib import Path

    import torch
    from safetensors.torch import load_file

    from mrtlab.zoo import catalog
    from mrtlab.zoo import model_files as zoo

    monkeypatch.setattr(catalog, "BUNDLED_DIR", tmp_path)
    zoo._load_model.cache_clear()  # "default" now names the bundled copy in tmp_path
    try:
        tiny = zoo.load_model(str(tiny_model_file))  # the export of a run at step 7
        export = zoo.save_model(tiny, tiny.config, tmp_path / "run" / "model", trained={"step": 7, "cpu_s": 12})
        tool = runpy.run_path(str(Path(__file__).parents[1] / "tools" / "bundle_model.py"))
        tool["main"]([str(export), "default"])
        weights = load_file(str(tmp_path / "default.safetensors"))
        assert {v.dtype for v in weights.values() if v.is_floating_point()} == {torch.float16}
        shipped, source = zoo.load_model("default"), zoo.load_model(str(tiny_model_file))
        assert f"fingerprint {shipped.fingerprint.hex()}" in capsys.readouterr().out
        for (name, a), b in zip(shipped.state_dict().items(), source.state_dict().values()):
            assert a.dtype == b.dtype and torch.allclose(a, b, rtol=1e-3, atol=1e-4), name
        assert catalog.trained_of(tmp_path / "default.safetensors") == {"step": 7, "cpu_s": 12}
        capsys.readouterr()
        assert "trained 7 steps, 12 CPU-s" in run(capsys, "models")[1]
        with pytest.raises(SystemExit, match="exists; pass --force"):
            tool["main"]([str(tiny_model_file), "default"])
        with pytest.raises(SystemExit, match="none.safetensors. not found"):
            tool["main"]([str(tmp_path / "none.safetensors"), "default", "--force"])
    finally:
        zoo._load_model.cache_clear()
