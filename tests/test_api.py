"""The Python API of docs/api.md: its examples run as written, and its promises hold."""
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mrtlab
from mrtlab.errors import MrtlabError

from .helpers import smooth_image

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


@pytest.mark.parametrize("index", range(len(re.findall(r"```python\n", DOC.read_text()))))
def test_the_examples_of_docs_api_run(index, monkeypatch):
    monkeypatch.chdir(DOC.parents[1])
    code = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)[index]
    exec(compile(code, f"docs/api.md example {index + 1}", "exec"), {})


def test_three_kinds_of_image_give_the_same_file(tmp_path):
    rgb = smooth_image(40, 56)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    kinds = (rgb, Image.fromarray(rgb), tmp_path / "a.png", str(tmp_path / "a.png"))
    files = {mrtlab.compress(x, tokens=1) for x in kinds}
    assert len(files) == 1
    data = files.pop()
    out = mrtlab.decompress(data)
    assert out.size == (56, 40) and out.mode == "RGB"
    # the bytes are those of `mrtlab compress`: the CLI reads them
    from mrtlab.codec import decode
    assert np.array_equal(np.asarray(out), decode(mrtlab.load_model(), data)[0])


def test_rate_by_bpp_and_bad_arguments_are_one_line():
    rgb = smooth_image(64, 64)
    small, large = mrtlab.compress(rgb, tokens=1), mrtlab.compress(rgb, tokens=4)
    assert len(small) < len(large)
    assert mrtlab.compress(rgb, bpp=8 * len(small) / 64 ** 2) == small
    with pytest.raises(MrtlabError, match="tokens or bpp, not both"):
        mrtlab.compress(rgb, tokens=1, bpp=0.1)
    with pytest.raises(MrtlabError, match=r"expected an H×W×3 uint8 array, got float64 \[4, 4\]"):
        mrtlab.compress(np.zeros((4, 4)))
    with pytest.raises(MrtlabError, match="not an mrtlab file"):
        mrtlab.decompress(b"hello")


def test_a_model_fresh_from_create_model_codes_and_a_foreign_file_needs_its_model():
    fresh = mrtlab.create_model("mrt_tiny")
    data = mrtlab.compress(smooth_image(24, 24), model=fresh)
    assert mrtlab.decompress(data, model=fresh).size == (24, 24)
    with pytest.raises(MrtlabError, match="not bundled .*pass it as model="):
        mrtlab.decompress(data)


def test_the_codec_names_what_an_unready_model_lacks():
    from mrtlab.codec import encode

    with pytest.raises(MrtlabError, match="no fingerprint: load it with mrtlab.load_model"):
        encode(mrtlab.create_model("mrt_tiny"), smooth_image(16, 16))
