"""BD-rate through the bjontegaard package: 0 against itself, −50 % at half the rate, the right
sign for lower-is-better metrics, and clear errors where it is undefined."""
import numpy as np
import pytest

from mrtlab.errors import MrtlabError
from mrtlab.eval.bdrate import bd_rate
from mrtlab.eval.curves import Curve

BPP = [0.02, 0.04, 0.08, 0.16]
PSNR = [24.0, 26.5, 28.7, 30.6]
LPIPS = [0.40, 0.31, 0.22, 0.15]


def curve(bpp, **metrics):
    return Curve("c", list(bpp), {"bpp": list(bpp), **metrics}, "c.json")


@pytest.mark.parametrize("metric,values", [("psnr", PSNR), ("lpips", LPIPS), ("dists", LPIPS)])
def test_identity_and_half_rate(metric, values):
    a = curve(BPP, **{metric: values})
    assert bd_rate(a, a, metric)[0] == pytest.approx(0, abs=1e-9)
    half = curve(np.array(BPP) / 2, **{metric: values})
    assert bd_rate(a, half, metric)[0] == pytest.approx(-50, abs=1e-6)
    assert bd_rate(half, a, metric)[0] == pytest.approx(100, abs=1e-6)


def test_sign_for_lower_is_better_metrics():
    a = curve(BPP, lpips=LPIPS)
    better = curve(BPP, lpips=[v - 0.03 for v in LPIPS])  # same rate, lower LPIPS
    worse = curve(BPP, lpips=[v + 0.03 for v in LPIPS])
    assert bd_rate(a, better, "lpips")[0] < 0 < bd_rate(a, worse, "lpips")[0]
    psnr_better = curve(BPP, psnr=[v + 0.5 for v in PSNR])
    assert bd_rate(curve(BPP, psnr=PSNR), psnr_better, "psnr")[0] < 0


def test_order_of_points_does_not_matter():
    a = curve(BPP, psnr=PSNR)
    shuffled = curve(BPP[::-1], psnr=PSNR[::-1])
    assert bd_rate(a, shuffled, "psnr")[0] == pytest.approx(0, abs=1e-9)


def test_undefined_cases_are_errors():
    a = curve(BPP, psnr=PSNR)
    with pytest.raises(MrtlabError, match="at least 2"):
        bd_rate(a, curve([0.05], psnr=[25.0]), "psnr")
    with pytest.raises(MrtlabError, match="do not overlap"):
        bd_rate(a, curve(BPP, psnr=[v + 20 for v in PSNR]), "psnr")
    with pytest.raises(MrtlabError, match="strictly"):
        bd_rate(a, curve(BPP, psnr=[24, 26, 25, 27]), "psnr")
    with pytest.raises(MrtlabError, match="no 'lpips' values"):
        bd_rate(a, a, "lpips")
    with pytest.raises(MrtlabError, match="unknown interpolation"):
        bd_rate(a, a, "psnr", method="spline")


def test_max_bpp_keeps_only_the_low_rate_points():
    a = curve(BPP, psnr=PSNR)
    # above 0.05 bpp the test curve is far worse; below, it needs half the rate
    test = curve([0.01, 0.02, 0.5, 0.9], psnr=[24.0, 26.5, 26.6, 26.7])
    assert bd_rate(a, test, "psnr", max_bpp=0.05)[0] == pytest.approx(-50, abs=1e-6)
    with pytest.raises(MrtlabError, match="1 rate point at ≤ 0.03 bpp"):
        bd_rate(a, test, "psnr", max_bpp=0.03)


def test_pareto_keeps_the_non_dominated_points():
    """A variable-rate model's last tokens can cost bits for nothing: the front drops them."""
    c = curve([0.01, 0.02, 0.03, 0.031], psnr=[20.0, 21.0, 20.9, 21.5], dists=[0.40, 0.38, 0.39, 0.37])
    assert c.points("psnr", pareto=True) == [(0.01, 20.0), (0.02, 21.0), (0.031, 21.5)]
    assert c.points("dists", pareto=True) == [(0.01, 0.40), (0.02, 0.38), (0.031, 0.37)]
    anchor = curve([0.01, 0.02, 0.04], psnr=[19.5, 20.5, 21.5])
    with pytest.raises(MrtlabError, match="does not improve strictly"):
        bd_rate(anchor, c, "psnr")
    assert bd_rate(anchor, c, "psnr", pareto=True)[0] < 0
