"""``mrtlab eval / bdrate / plot`` on the command line: CompressAI's JSON layout, per-image rows,
skip records, one-line errors, the HTML report in headless Chromium, accelerate launch."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from mrtlab.errors import OPTIONAL, MrtlabError

from .helpers import one_error_line, run, two_processes


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Three small pictures (MS-SSIM needs sides > 160)."""
    folder = tmp_path_factory.mktemp("imgs")
    Image.fromarray(skdata.astronaut()[:192, :224]).save(folder / "astronaut.png")
    Image.fromarray(skdata.coffee()[100:292, 200:392]).save(folder / "coffee.png")
    Image.fromarray(skdata.chelsea()[:176, :200]).convert("L").save(folder / "cat.png")
    (folder / "notes.txt").write_text("not an image: ignored")
    return folder


@pytest.fixture(scope="module")
def no_weights(tmp_path_factory):
    return tmp_path_factory.mktemp("no_weights")


def evaluate(capsys, tmp_path, images, model, no_weights, *extra):
    out = tmp_path / "res.json"
    code, stdout, err = run(capsys, "eval", "--data", images, "--model", model, "--out", out,
                            "--weights", no_weights, "-q", *extra)
    assert code == 0, err
    return json.loads(out.read_text()), out, stdout, err


def test_eval_writes_compressai_layout_and_rows(capsys, tmp_path, images, tiny_model_file, no_weights):
    s, out, stdout, err = evaluate(capsys, tmp_path, images, tiny_model_file, no_weights)
    assert s["name"] == "tiny" and "3 images" in s["description"] and s["images"] == 3
    res = s["results"]
    # CompressAI's keys for PSNR and MS-SSIM, so its plot tool reads the file
    assert set(res) == {"bpp", "estimated_bpp", "psnr-rgb", "lowpass-psnr", "ms-ssim-rgb", "encoding_time",
                        "decoding_time", "seam-4", "seam-8", "seam-16", "seam-32"}
    assert all(isinstance(v, list) and len(v) == len(res["bpp"]) == 1 for v in res.values())
    rows = json.loads((tmp_path / s["per_image"]).read_text())["rows"]
    assert [r["image"] for r in rows] == ["astronaut.png", "cat.png", "coffee.png"]
    for r, f in zip(rows, ["astronaut.png", "cat.png", "coffee.png"]):
        size = Image.open(images / f).size
        assert (r["width"], r["height"]) == size
        assert r["bpp"] == pytest.approx(8 * r["bytes"] / (size[0] * size[1]))
    assert res["bpp"][0] == pytest.approx(np.mean([r["bpp"] for r in rows]))
    assert res["psnr-rgb"][0] == pytest.approx(np.mean([r["psnr"] for r in rows]))
    # metrics without weights: a reason with the exact path, never a number
    assert set(s["skipped"]) == {"lpips", "dists", "fid", "kid"}
    assert str(no_weights / "alexnet-owt-7be5be79.pth") in s["skipped"]["lpips"]
    assert "lpips" not in rows[0]
    assert "cat.png: note: converted L to RGB" in err and "lpips skipped" in err
    assert "bpp" in stdout and str(out) in stdout


def test_eval_baseline_has_one_value_per_rate(capsys, tmp_path, images, no_weights):
    out = tmp_path / "jpeg.json"
    code, _, err = run(capsys, "eval", "--data", images, "--baseline", "jpeg", "--bpp", "0.6,1.2",
                       "--out", out, "--metrics", "psnr,ms-ssim", "-q")
    assert code == 0, err
    s = json.loads(out.read_text())
    assert s["points"] == [{"target_bpp": 0.6}, {"target_bpp": 1.2}] and s["skipped"] == {}
    assert len(s["results"]["bpp"]) == 2 and "estimated_bpp" not in s["results"]
    assert s["results"]["bpp"][0] < s["results"]["bpp"][1]
    assert s["results"]["psnr-rgb"][0] < s["results"]["psnr-rgb"][1]


@pytest.fixture(scope="module")
def variable_rate_model_file(tmp_path_factory):
    import torch

    from mrtlab.config import build_model
    from mrtlab.zoo import save_model

    from .helpers import TINY
    cfg = dict(TINY, nested_dropout=True, latent_tokens=3)
    torch.manual_seed(0)
    model = build_model(cfg)
    model.update()
    return save_model(model, cfg, tmp_path_factory.mktemp("vr") / "vr")


def test_variable_rate_model_gives_a_curve(capsys, tmp_path, images, variable_rate_model_file, no_weights):
    s, *_ = evaluate(capsys, tmp_path, images, variable_rate_model_file, no_weights, "--metrics", "psnr")
    assert s["points"] == [{"tokens": 1}, {"tokens": 2}, {"tokens": 3}]  # default: every rate
    bpp = s["results"]["bpp"]
    assert len(bpp) == 3 and bpp[0] < bpp[1] < bpp[2] and len(s["results"]["psnr-rgb"]) == 3
    out = tmp_path / "two.json"
    code, _, err = run(capsys, "eval", "--data", images, "--model", variable_rate_model_file, "--out", out,
                       "--tokens", "1,3", "--metrics", "psnr", "-q")
    assert code == 0, err
    two = json.loads(out.read_text())
    assert two["results"]["bpp"] == pytest.approx([bpp[0], bpp[2]])
    code, _, err = run(capsys, "eval", "--data", images, "--model", variable_rate_model_file, "--out",
                       tmp_path / "x.json", "--tokens", "5")
    assert code == 1 and "between 1 and 3" in one_error_line(err)


def test_small_images_skip_ms_ssim_with_a_reason(capsys, tmp_path, tiny_model_file, no_weights):
    folder = tmp_path / "small"
    folder.mkdir()
    Image.fromarray(skdata.astronaut()[:100, :120]).save(folder / "a.png")
    s, *_ = evaluate(capsys, tmp_path, folder, tiny_model_file, no_weights, "--metrics", "psnr,ms-ssim")
    assert "ms-ssim-rgb" not in s["results"] and "smaller than 161 px" in s["skipped"]["ms-ssim"]


@pytest.mark.parametrize("argv,message", [
    (["--data", "{tmp}/nope"], "no such folder"),
    (["--data", "{tmp}/empty"], "no images in it"),
    (["--data", "{tmp}/file.png"], "is a file, not a folder"),
    (["--data", "{imgs}", "--tokens", "3"], "fixed rate: it codes all 2 latent tokens per window"),
    (["--data", "{imgs}", "--tokens", "two"], "--tokens: expected a comma-separated list"),
    (["--data", "{imgs}", "--metrics", "psnr,vmaf"], "unknown metric 'vmaf'"),
    (["--data", "{imgs}", "--baseline", "jpeg"], "needs target rates"),
    (["--data", "{imgs}", "--bpp", "0.1"], "--bpp sets the targets of a baseline"),
    (["--data", "{imgs}", "--reference", "mars"], "no published curves for 'mars'"),
    (["--data", "{imgs}", "--out", "{tmp}/file.png"], "exists (use --force"),
    (["--data", "{imgs}", "--report", "{tmp}"], "is not empty (use --force"),
    (["--data", "{imgs}", "--report", "{tmp}/file.png"], "is a file, not a folder"),
])
def test_eval_errors_are_one_line(capsys, tmp_path, images, tiny_model_file, argv, message):
    (tmp_path / "empty").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "file.png")
    argv = [a.format(tmp=tmp_path, imgs=images) for a in argv]
    model = [] if "--baseline" in argv else ["--model", str(tiny_model_file)]
    code, _, err = run(capsys, "eval", *model, "--out", tmp_path / "r.json", *argv)
    assert code == 1 and message in one_error_line(err)


def test_bdrate_and_plot_on_results(capsys, tmp_path):
    a = {"name": "A", "description": "", "results": {"bpp": [0.1, 0.2, 0.4], "psnr": [25, 27, 29],
                                                      "lpips": [0.3, 0.2, 0.1]}}
    b = {"name": "B", "description": "", "results": {"bpp": [0.05, 0.1, 0.2], "psnr": [25, 27, 29],
                                                      "lpips": [0.3, 0.2, 0.1]}}
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    for metric in ("psnr", "lpips"):
        code, out, err = run(capsys, "bdrate", tmp_path / "a.json", tmp_path / "b.json", "--metric", metric)
        assert code == 0, err
        assert f"BD-rate of B against A ({metric}): -50.00 %" in out
    code, out, err = run(capsys, "bdrate", tmp_path / "a.json", tmp_path / "b.json", "--max-bpp", "0.2")
    assert code == 0 and "BD-rate of B against A (psnr, ≤ 0.2 bpp): -50.00 %" in out, err
    code, _, err = run(capsys, "bdrate", tmp_path / "a.json", tmp_path / "b.json", "--max-bpp", "0.1")
    assert code == 1 and "a.json: 1 rate point at ≤ 0.1 bpp" in one_error_line(err)
    png = tmp_path / "rd.png"
    code, out, err = run(capsys, "plot", tmp_path / "a.json", tmp_path / "b.json", "--reference",
                         "kodak", "-o", png)
    assert code == 0, err
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 3 * im.size[1]  # psnr, ms-ssim, lpips panels


def test_reference_curves_carry_their_source(capsys):
    from mrtlab.eval.curves import load, references

    refs = references()
    assert {"kodak_vtm", "clic2020_vtm"} <= set(refs)
    for stem, path in refs.items():
        data = json.loads(path.read_text())
        assert data["dataset"] == stem.split("_")[0]
        assert data["source"]["url"].startswith("https://") and data["source"]["notes"]
        curve = load(stem)
        assert all(len(v) == len(curve.bpp) for v in curve.metrics.values())
    code, out, _ = run(capsys, "bdrate", "kodak_vtm", "kodak_vtm")
    assert code == 0 and "+0.00 %" in out


@pytest.mark.parametrize("content,message", [
    ("{not json", "not valid JSON"),
    ('{"name": "x"}', "not a results file"),
    ('{"results": {"bpp": [0.1, 0.2], "psnr": [30]}}', "must be a list of 2 finite numbers"),
    ('{"results": {"bpp": [0.1], "psnr": [30]}}', "BD-rate needs at least 2"),
])
def test_bad_results_files_are_one_line_errors(capsys, tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    code, _, err = run(capsys, "bdrate", "kodak_vtm", bad)
    assert code == 1 and message in one_error_line(err)


def test_bdrate_and_plot_errors(capsys, tmp_path):
    code, _, err = run(capsys, "bdrate", tmp_path / "none.json", "kodak_vtm")
    assert code == 1 and "no such file (nor a reference curve" in one_error_line(err)
    code, _, err = run(capsys, "bdrate", "kodak_vtm")
    assert code == 1 and "at least one test" in one_error_line(err)
    code, _, err = run(capsys, "plot", "-o", tmp_path / "x.png")
    assert code == 1 and "nothing to plot" in one_error_line(err)
    code, _, err = run(capsys, "plot", "kodak_vtm", "-o", tmp_path / "x.jpg")
    assert code == 1 and ".png, .svg or .pdf" in one_error_line(err)
    code, _, err = run(capsys, "plot", "kodak_vtm", "--metric", "dists", "-o", tmp_path / "x.png")
    assert code == 1 and "no curve has 'dists'" in one_error_line(err)
    code, _, err = run(capsys, "plot", "kodak_vtm", "--reference", "mars", "-o", tmp_path / "x.png")
    assert code == 1 and "no published curves for 'mars'" in one_error_line(err)


def test_plot_does_not_overwrite_without_force(capsys, tmp_path):
    png = tmp_path / "rd.png"
    png.write_bytes(b"precious")
    code, _, err = run(capsys, "plot", "kodak_vtm", "-o", png)
    assert code == 1 and "exists (use --force" in one_error_line(err)
    assert png.read_bytes() == b"precious"
    code, _, err = run(capsys, "plot", "kodak_vtm", "-o", png, "-f")
    assert code == 0, err
    assert Image.open(png).format == "PNG"


@pytest.mark.parametrize("package,argv", [
    ("lpips", ["eval", "--data", "{imgs}", "--out", "{tmp}/r.json"]),
    ("DISTS_pytorch", ["eval", "--data", "{imgs}", "--out", "{tmp}/r.json", "--metrics", "dists"]),
    ("torch_fidelity", ["eval", "--data", "{imgs}", "--out", "{tmp}/r.json", "--metrics", "psnr,fid"]),
    ("pytorch_msssim", ["eval", "--data", "{imgs}", "--out", "{tmp}/r.json", "--metrics", "ms-ssim"]),
    ("matplotlib", ["eval", "--data", "{imgs}", "--out", "{tmp}/r.json", "--metrics", "psnr",
                    "--report", "{tmp}/report"]),
    ("matplotlib", ["plot", "kodak_vtm", "-o", "{tmp}/rd.png"]),
    ("bjontegaard", ["bdrate", "kodak_vtm", "kodak_vtm"]),
])
def test_a_missing_package_is_one_line_naming_the_extra(capsys, monkeypatch, tmp_path, images,
                                                        tiny_model_file, package, argv):
    monkeypatch.setitem(sys.modules, package, None)  # `import package` now fails
    argv = [a.format(tmp=tmp_path, imgs=images) for a in argv]
    code, _, err = run(capsys, *argv, *(["--model", tiny_model_file] if argv[0] == "eval" else []))
    pip = OPTIONAL[package][0]
    line = one_error_line(err)
    assert code == 1 and f"{pip} is not installed: pip install {pip} (in the extras" in line
    assert "mrtlab[eval]" in line
    assert not (tmp_path / "r.json").exists()  # refused before the run


def test_eval_without_a_package_it_does_not_use(capsys, monkeypatch, tmp_path, images, tiny_model_file):
    for package in ("lpips", "DISTS_pytorch", "torch_fidelity", "matplotlib"):
        monkeypatch.setitem(sys.modules, package, None)
    code, _, err = run(capsys, "eval", "--data", images, "--model", tiny_model_file, "--out",
                       tmp_path / "r.json", "--metrics", "psnr,ms-ssim", "-q")
    assert code == 0, err


class Lossless:
    """A codec whose reconstruction is exact: PSNR would be infinite."""
    name, description, points = "lossless", "PNG", [{}]

    def encode(self, rgb, point):
        import io
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="PNG")
        return buf.getvalue(), None, 0.0, {}

    def decode(self, data):
        import io
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), 0.0


def test_exact_reconstruction_gives_a_capped_psnr_that_files_accept(capsys, tmp_path, images):
    from mrtlab.eval import run as R
    from mrtlab.eval.curves import load

    result = R.evaluate(Lossless(), R.list_images(images), ["psnr"], progress=False)
    out, _ = R.write(result, tmp_path / "lossless.json")
    assert json.loads(out.read_text())["results"]["psnr-rgb"] == [100.0]
    assert load(out).get("psnr") == [100.0]  # a number, not null: the file is readable
    code, _, err = run(capsys, "plot", out, "-o", tmp_path / "rd.png")
    assert code == 0, err


def test_report_renders_in_headless_chromium(capsys, tmp_path, images, tiny_model_file, no_weights):
    report = tmp_path / "report"
    s, *_ = evaluate(capsys, tmp_path, images, tiny_model_file, no_weights, "--report", report,
                     "--reference", "kodak")
    page = report / "index.html"
    html = page.read_text()
    assert html.count('<section class="image">') == 3 and "http" not in html.split("<script>")[1]
    for name in ("astronaut.png", "cat.png", "coffee.png"):
        for f in ("original.png", "ours_p0.png", "jpeg_p0.jpg", "webp_p0.webp"):
            assert (report / "img" / name / f).is_file()
    rows = json.loads((tmp_path / s["per_image"]).read_text())["rows"]
    assert {"jpeg", "webp"} == set(rows[0]["compare"])
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("headless check of the report skipped: Debian package 'chromium' is not installed")
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                          "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    assert 'data-loaded="all"' in dom, dom[:2000]
    assert "all 13 images loaded" in dom  # 3 × 4 pictures + the RD plot


@pytest.mark.slow
def test_two_processes_split_the_images(capsys, tmp_path, images, tiny_model_file, no_weights):
    single, *_ = evaluate(capsys, tmp_path, images, tiny_model_file, no_weights)
    single_rows = json.loads((tmp_path / single["per_image"]).read_text())["rows"]
    out = tmp_path / "dist.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(two_processes("-m", "mrtlab.cli", "eval", "--data", images, "--model",
                                        tiny_model_file, "--out", out, "--weights", no_weights, "-q",
                                        "--report", tmp_path / "report"),
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    dist = json.loads(out.read_text())
    assert dist["processes"] == 2 and single["processes"] == 1
    rows = json.loads((tmp_path / dist["per_image"]).read_text())["rows"]
    assert [r["image"] for r in rows] == [r["image"] for r in single_rows]
    assert [r["bytes"] for r in rows] == [r["bytes"] for r in single_rows]
    assert dist["results"]["psnr-rgb"] == pytest.approx(single["results"]["psnr-rgb"])
    assert proc.stdout.count("results:") == 1  # only the main process writes and prints
    assert len(list((tmp_path / "report" / "img").iterdir())) == 3 and (tmp_path / "report" / "index.html").is_file()


def test_plot_max_bpp_draws_only_the_low_rate_points(tmp_path, monkeypatch):
    import matplotlib.axes

    from mrtlab.eval.curves import load
    from mrtlab.eval.plot import plot

    drawn, draw = [], matplotlib.axes.Axes.plot

    def recording(ax, x, *args, **kwargs):
        drawn.append(x)
        return draw(ax, x, *args, **kwargs)
    monkeypatch.setattr(matplotlib.axes.Axes, "plot", recording)
    vtm = load("kodak_vtm")
    plot([vtm], tmp_path / "rd.png", ["psnr"], max_bpp=0.5)
    assert drawn == [[b for b in sorted(vtm.bpp) if b <= 0.5]] and max(vtm.bpp) > 0.5
    with pytest.raises(MrtlabError, match="no psnr point at ≤ 0.001 bpp"):
        plot([vtm], tmp_path / "rd.png", ["psnr"], max_bpp=0.001)
