"""Files compressed with a bundled model keep decoding to the same pixels.

Each ``tests/data/astronaut_64x96_<model>_tokens1.mrt`` is a 64×96 crop of skimage's
astronaut (rows 40:104, columns 160:256) compressed with a bundled model at 1 token per
window; the PNG beside it holds the pixels it decoded to when it was made. Decoding goes
through ``mrtlab decompress`` without ``--model``, so the bundled model is also found by the
fingerprint in the file's header.

The symbols are decoded exactly; the pixels agree to one level in a few places at most,
because the synthesis runs in float and the CPU's kernels (chosen by its instruction set)
round differently from machine to machine. A wrong symbol or another model's weights change
far more than that.

The ``taef2`` model's pixels come from the TAEF2 decoder, which runs in bf16 on CPUs with
native bf16 and in fp32 elsewhere: its file is checked to decode to the same symbols'
picture within the difference of the two precisions (PSNR against the golden PNG), and it
needs the TAEF2 weights (``../shared/weights`` here), without which it is skipped.

When a bundled model is replaced on purpose, or the fingerprint's definition changes,
remake its golden file (``.mrt`` and ``.png``; ``tools/golden_files.py`` says whether the
payload and pixels changed) in the same commit: old files then no longer decode with it,
which is what this test is there to make visible.
"""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mrtlab.cli import main
from mrtlab.eval.metrics import psnr
from mrtlab.pretrained import taef2

DATA = Path(__file__).resolve().parent / "data"
SHARED_WEIGHTS = Path(__file__).resolve().parents[2] / "shared" / "weights"
MODELS = ["default", "cnn2d", pytest.param("taef2", marks=pytest.mark.skipif(
    not taef2.path("decoder", str(SHARED_WEIGHTS)).is_file(),
    reason="the TAEF2 weights are not on this machine (../shared/weights/taef2)"))]


@pytest.fixture(autouse=True)
def shared_weights(monkeypatch):
    """The taef2 model decodes through the TAEF2 files of the shared folder."""
    monkeypatch.setenv("MRTLAB_WEIGHTS", str(SHARED_WEIGHTS))


@pytest.mark.parametrize("model", MODELS)
def test_golden_file_decodes_to_the_same_pixels(model, tmp_path):
    golden = DATA / f"astronaut_64x96_{model}_tokens1"
    out = tmp_path / "out.png"
    assert main(["decompress", str(golden.with_suffix(".mrt")), "-o", str(out)]) == 0
    got, want = np.asarray(Image.open(out)), np.asarray(Image.open(golden.with_suffix(".png")))
    assert got.shape == want.shape == (64, 96, 3)
    if model == "taef2":   # bf16 against fp32 decoder: 52.1 dB apart on this crop (max 4 levels)
        assert psnr(got, want) > 45, psnr(got, want)
        return
    differ = np.abs(got.astype(int) - want.astype(int)).max(-1)
    assert differ.max() <= 1 and (differ > 0).mean() <= 0.01, \
        f"{int((differ > 0).sum())} pixels differ, by up to {differ.max()}"


@pytest.mark.parametrize("model", MODELS)
def test_every_bundled_decoder_reads_the_golden_file(model, tmp_path, capsys):
    """One file, every decoder the model ships with (default: fidelity and realism)."""
    from mrtlab.zoo import list_decoders

    golden = DATA / f"astronaut_64x96_{model}_tokens1.mrt"
    for decoder in list_decoders(model):
        out = tmp_path / f"{decoder}.png"
        assert main(["decompress", str(golden), "-o", str(out), "--decoder", decoder]) == 0
        assert f"decoder {decoder}" in capsys.readouterr().out
        assert np.asarray(Image.open(out)).shape == (64, 96, 3)
