"""Bjøntegaard delta rate through the maintained ``bjontegaard`` package (Herglotz et al.):
the average bitrate difference of a test curve against an anchor at equal quality, in percent
(negative: the test needs fewer bits). For lower-is-better metrics (LPIPS, DISTS, FID, KID) the
metric is negated first, so "better" always points the same way."""
from __future__ import annotations

import warnings

import numpy as np

from ..errors import MrtlabError, need
from .curves import HIGHER_IS_BETTER, Curve

METHODS = ("pchip", "akima", "cubic")


def _prepared(curve: Curve, metric: str, max_bpp: float | None,
              pareto: bool = False) -> tuple[np.ndarray, np.ndarray]:
    pts = curve.points(metric, max_bpp, pareto)
    rate, quality = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
    if len(rate) < 2:
        within = f" at ≤ {max_bpp} bpp" if max_bpp is not None else ""
        raise MrtlabError(f"{curve.path}: {len(rate)} rate point{'' if len(rate) == 1 else 's'}{within}; "
                          "BD-rate needs at least 2")
    if np.any(rate <= 0):
        raise MrtlabError(f"{curve.path}: every bpp must be positive for BD-rate")
    if not HIGHER_IS_BETTER.get(metric, True):
        quality = -quality
    if np.any(np.diff(rate) <= 0) or np.any(np.diff(quality) <= 0):
        raise MrtlabError(f"{curve.path}: {metric} does not improve strictly with rate; "
                          "BD-rate is undefined for such a curve")
    return rate, quality


def bd_rate(anchor: Curve, test: Curve, metric: str, method: str = "pchip",
            max_bpp: float | None = None, pareto: bool = False) -> tuple[float, list[str]]:
    """(BD-rate in %, notes such as a small overlap of the two curves); ``max_bpp``: only
    the points of both curves at or below that rate (e.g. the extreme-rate range); ``pareto``:
    only each curve's non-dominated points."""
    bjontegaard = need("bjontegaard")
    if method not in METHODS:
        raise MrtlabError(f"unknown interpolation {method!r} (known: {', '.join(METHODS)})")
    ra, qa = _prepared(anchor, metric, max_bpp, pareto)
    rt, qt = _prepared(test, metric, max_bpp, pareto)
    if qa.max() <= qt.min() or qt.max() <= qa.min():
        raise MrtlabError(f"the curves do not overlap in {metric}: {anchor.name} spans "
                          f"{_span(qa, metric)}, {test.name} spans {_span(qt, metric)}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = bjontegaard.bd_rate(ra, qa, rt, qt, method=method, require_matching_points=False)
    return float(value), [str(w.message) for w in caught]


def _span(q: np.ndarray, metric: str) -> str:
    lo, hi = (q.min(), q.max()) if HIGHER_IS_BETTER.get(metric, True) else (-q.max(), -q.min())
    return f"{lo:.4g}–{hi:.4g}"
