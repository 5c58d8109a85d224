"""Results files in CompressAI's layout and keys: CompressAI's own plot tool draws our PSNR,
MS-SSIM and DISTS curves, and mrtlab reads both its first files' keys ("psnr") and
CompressAI's ("psnr-rgb") alike."""
import json
import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from skimage import data as skdata

from mrtlab.bench.codec import find_compressai
from mrtlab.eval import run as R
from mrtlab.eval.baselines import PillowCodec
from mrtlab.eval.curves import load

from .test_cli import run

DOCS_RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"


@pytest.fixture(scope="module")
def vgg_weights(tmp_path_factory):
    """Randomly initialised VGG-16 features under DISTS's file name: DISTS runs, nothing downloads."""
    import torch
    import torchvision

    from mrtlab.pretrained.weights import FILES

    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    feats = torchvision.models.vgg16(weights=None).features.state_dict()
    torch.save({f"features.{k}": v for k, v in feats.items()}, folder / FILES["vgg16"])
    return folder


@pytest.fixture(scope="module")
def jpeg_results(tmp_path_factory, vgg_weights):
    """``mrtlab eval``'s summary file for JPEG at two rates with PSNR, MS-SSIM and DISTS."""
    folder = tmp_path_factory.mktemp("imgs")
    Image.fromarray(skdata.astronaut()[:192, :224]).save(folder / "astronaut.png")
    result = R.evaluate(PillowCodec("jpeg", [0.5, 1.0]), R.list_images(folder),
                        ["psnr", "ms-ssim", "dists"], weights=vgg_weights, progress=False)
    out, _ = R.write(result, folder / "jpeg.json")
    return out


def test_results_carry_compressais_keys_and_mrtlab_reads_them(jpeg_results):
    summary = json.loads(jpeg_results.read_text())
    res = summary["results"]
    assert {"psnr-rgb", "ms-ssim-rgb", "dists"} <= set(res) and not {"psnr", "ms-ssim"} & set(res)
    rows = json.loads(jpeg_results.with_name(summary["per_image"]).read_text())["rows"]
    first = [r["psnr"] for r in rows if r["point"] == 0]
    assert load(jpeg_results).get("psnr")[0] == pytest.approx(sum(first) / len(first))
    assert load(jpeg_results).get("ms-ssim") == res["ms-ssim-rgb"]
    header = R.table(summary).splitlines()[0].split()
    assert header[:4] == ["point", "bpp", "psnr", "ms-ssim"] and "dists" in header


def test_old_and_new_keys_give_the_same_bdrate_and_plot(capsys, tmp_path):
    """The results shipped in docs/results/ say "psnr"/"ms-ssim": they read as before, and the
    same numbers under CompressAI's keys give the same BD-rate."""
    old = DOCS_RESULTS / "patchwise" / "kodak_default.json"
    data = json.loads(old.read_text())
    assert "psnr" in data["results"] and "psnr-rgb" not in data["results"]
    data["results"] = {{"psnr": "psnr-rgb", "ms-ssim": "ms-ssim-rgb"}.get(k, k): v
                       for k, v in data["results"].items()}
    new = tmp_path / "kodak_default_new.json"
    new.write_text(json.dumps(data))
    anchor = DOCS_RESULTS / "patchwise" / "kodak_cnn2d-variable_pareto.json"
    for metric in ("psnr", "ms-ssim"):
        outputs = []
        for test in (old, new):
            code, out, err = run(capsys, "bdrate", anchor, test, "--metric", metric, "--max-bpp", "0.05")
            assert code == 0, err
            outputs.append(out.replace(str(test), "TEST"))
        assert outputs[0] == outputs[1] and "%" in outputs[0]
    code, _, err = run(capsys, "plot", old, new, "--reference", "kodak", "-o", tmp_path / "rd.png")
    assert code == 0 and (tmp_path / "rd.png").stat().st_size > 0, err


@pytest.mark.slow
def test_compressai_plot_tool_draws_our_curves(jpeg_results, tmp_path):
    """``python -m compressai.utils.plot -f ours.json -m METRIC -o out.png``, the three metrics in
    one interpreter (runpy runs the module as ``-m`` does; importing compressai is the slow part)."""
    python = find_compressai(None)
    if python is None:
        pytest.skip("compressai is not installed (`make compressai-venv` builds .venv-compressai)")
    metrics = ("psnr", "ms-ssim", "dists")
    script = ("import runpy, sys\n"
              f"for m in {metrics!r}:\n"
              f"    sys.argv = ['plot', '-f', {str(jpeg_results)!r}, '-m', m,\n"
              f"                '-o', {str(tmp_path)!r} + f'/{{m}}.png']\n"
              "    runpy.run_module('compressai.utils.plot', run_name='__main__', alter_sys=True)\n")
    proc = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, MPLBACKEND="Agg"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    for m in metrics:
        assert (tmp_path / f"{m}.png").stat().st_size > 0
