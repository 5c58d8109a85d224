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

DATA = Path(__file__).resolve().parent / "data"


@pytest.mark.parametrize("model", ["default", "cnn2d"])
def test_golden_file_decodes_to_the_same_pixels(model, tmp_path):
    golden = DATA / f"astronaut_64x96_{model}_tokens1"
    out = tmp_path / "out.png"
    main(["decompress", str(golden.with_suffix(".mrt")), "-o", str(out)])
    got, want = np.asarray(Image.open(out)), np.asarray(Image.open(golden.with_suffix(".png")))
    differ = np.abs(got.astype(int) - want.astype(int)).max(-1)
    assert got.shape == want.shape == (64, 96, 3)
    assert differ.max() <= 1 and (differ > 0).mean() <= 0.01, \
        f"{int((differ > 0).sum())} pixels differ, by up to {differ.max()}"


@pytest.mark.parametrize("model", ["default", "cnn2d"])
def test_every_bundled_decoder_reads_the_golden_file(model, tmp_path, capsys):
    """One file, every decoder the model ships with (default: fidelity and realism)."""
    from mrtlab.models import list_decoders

    golden = DATA / f"astronaut_64x96_{model}_tokens1.mrt"
    for decoder in list_decoders(model):
        out = tmp_path / f"{decoder}.png"
        assert main(["decompress", str(golden), "-o", str(out), "--decoder", decoder]) == 0
        assert f"decoder {decoder}" in capsys.readouterr().out
        assert np.asarray(Image.open(out)).shape == (64, 96, 3)
