"""JPEG/WebP baselines: the bisection finds the quality nearest the target rate, and a target
below the lowest reachable rate gives the lowest quality, marked as the floor."""
import numpy as np
import pytest
from skimage import data

from mrtlab.errors import MrtlabError
from mrtlab.eval.baselines import FORMATS, PillowCodec, at_bpp, encode_at

IMG = data.astronaut()[:256, :256]


def bpp(b):
    return 8 * len(b) / (IMG.shape[0] * IMG.shape[1])


@pytest.mark.parametrize("target", [0.3, 0.8, 1.5])
def test_jpeg_bisection_is_the_nearest_quality(target):
    r = at_bpp(IMG, "jpeg", target)
    _, qmin, qmax, _ = FORMATS["jpeg"]
    rates = {q: bpp(encode_at(IMG, "jpeg", q)) for q in range(qmin, qmax + 1)}
    nearest = min(rates.values(), key=lambda v: abs(v - target))
    assert bpp(r.data) == pytest.approx(nearest) and not r.floor
    assert abs(bpp(r.data) - target) < 0.1 * target


def test_webp_hits_the_target_within_tolerance():
    r = at_bpp(IMG, "webp", 0.5)
    assert abs(bpp(r.data) - 0.5) < 0.05 and not r.floor


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_below_the_lowest_rate_is_the_floor(fmt):
    r = at_bpp(IMG, fmt, 0.001)
    assert r.floor and r.quality == FORMATS[fmt][1] and bpp(r.data) > 0.001


def test_codec_roundtrip_and_bad_targets():
    c = PillowCodec("webp", [0.4, 1.0])
    data, est, secs, extra = c.encode(IMG, c.points[1])
    rec, _ = c.decode(data)
    assert rec.shape == IMG.shape and est is None and extra["quality"] > 0
    assert np.abs(rec.astype(int) - IMG).mean() < 20
    with pytest.raises(MrtlabError, match="positive"):
        PillowCodec("jpeg", [0.1, -1])
    with pytest.raises(MrtlabError, match="needs target rates"):
        PillowCodec("jpeg", [])
