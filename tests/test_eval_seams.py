"""The seam index: a drawn grid scores high at its period and not elsewhere, an exact
reconstruction scores 1.0, and ``mrtlab eval`` reports it at the model's own periods."""
import json

import numpy as np
import pytest
from PIL import Image

from mrtlab.cli import main
from mrtlab.eval import seams


@pytest.fixture(scope="module")
def photo():
    from skimage import data
    return data.astronaut()[:384, :448]


def test_an_exact_reconstruction_scores_one(photo):
    for p in (8, 16, 32):
        assert seams.seam_index(photo, photo.copy(), p) == pytest.approx(1.0)


def test_a_drawn_grid_scores_high_at_its_period(photo):
    gridded = photo.copy()
    gridded[::32] = 0
    gridded[:, ::32] = 0           # dark lines at rows/columns 0, 32, 64… : edges at 32k and 32k+1
    shifted = photo.copy()
    shifted[31::32] = 0
    shifted[:, 31::32] = 0         # lines on the last pixel of each window: edges straddle 32k
    at = {p: seams.seam_index(photo, shifted, p) for p in (8, 16, 32)}
    assert at[32] > 2 and at[32] > at[16] > at[8] > 1   # the shorter periods only partly hit it
    assert seams.seam_index(photo, gridded, 32) > 2


def test_a_mosaic_of_independent_tiles(photo):
    """Each 32-px tile replaced by its mean: the look of a codec that draws windows alone."""
    h, w = photo.shape[:2]
    tiles = photo.reshape(h // 32, 32, w // 32, 32, 3).mean(axis=(1, 3), keepdims=True)
    mosaic = np.broadcast_to(tiles, (h // 32, 32, w // 32, 32, 3)).reshape(h, w, 3).astype(np.uint8)
    assert seams.seam_index(photo, mosaic, 32) > 10  # flat inside, steps only between tiles
    blurred = np.asarray(Image.fromarray(photo).resize((w // 4, h // 4)).resize((w, h), Image.BILINEAR))
    assert seams.seam_index(photo, blurred, 32) == pytest.approx(1.0, abs=0.15)  # no grid


def test_sizes_must_match(photo):
    with pytest.raises(ValueError, match="differ in size"):
        seams.seam_index(photo, photo[:-1], 32)


def test_eval_reports_the_models_own_periods(tmp_path, tiny_model_file, capsys):
    data = tmp_path / "data"
    data.mkdir()
    from skimage import data as skdata
    Image.fromarray(skdata.astronaut()[:64, :96]).save(data / "a.png")
    out = tmp_path / "r.json"
    assert main(["eval", "--data", str(data), "--model", str(tiny_model_file), "--out", str(out),
                 "--metrics", "psnr,seam", "-q"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads(out.read_text())
    assert summary["seam_periods"] == {"window": 8, "patch": 4}   # the tiny model: 4-px patches, 2×2
    for p in (4, 8, 16, 32):
        assert np.isfinite(summary["results"][f"seam-{p}"][0])
    assert "seam-8" in printed and "seam-4" in printed and "seam-32" not in printed.split("\n")[0]
    rows = json.loads(out.with_name("r.per_image.json").read_text())["rows"]
    assert rows[0]["seam-8"] == pytest.approx(summary["results"]["seam-8"][0])
