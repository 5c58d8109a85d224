"""The seam index: how much more a reconstruction steps at a grid of period p pixels than
its original does. A codec that draws each window (or patch, or cell) on its own leaves
an edge at every multiple of its period; PSNR barely sees it, the eye sees it at once.

For an image X, the absolute differences of horizontally and vertically adjacent pixels
(mean over the 3 channels) are split into the pairs that straddle a multiple of p (pixels
i−1 and i with i mod p = 0) and all the others; B(X, p) = mean(straddling) / mean(others).
The seam index of a reconstruction R of an original O is B(R, p) / B(O, p): 1.0 means the
grid shows no more than in the original; a visible mosaic scores 2–3.
"""
from __future__ import annotations

import numpy as np

PERIODS = (8, 16, 32)  # measured for every codec, so that any two can be compared
EPS = 1e-3             # in 8-bit levels: keeps a flat image's ratio finite (and at 1)


def _straddle_ratio(x: np.ndarray, p: int) -> float:
    """B(X, p) of an ``HxWx3`` image."""
    x = x.astype(np.float32)
    sums = np.zeros(2)    # straddling, other
    counts = np.zeros(2)
    for axis in (0, 1):
        d = np.abs(np.diff(x, axis=axis)).mean(axis=2)       # pair (i-1, i) at index i-1
        at = (np.arange(1, x.shape[axis]) % p) == 0           # i mod p == 0
        d = np.moveaxis(d, axis, 0)
        sums += d[at].sum(), d[~at].sum()
        counts += d[at].size, d[~at].size
    if counts[0] == 0 or counts[1] == 0:  # an image no larger than one period
        return 1.0
    means = sums / counts
    return float((means[0] + EPS) / (means[1] + EPS))


def seam_index(original: np.ndarray, reconstruction: np.ndarray, period: int) -> float:
    """B(R, p) / B(O, p) for two ``HxWx3`` uint8 images of the same size."""
    if original.shape != reconstruction.shape:
        raise ValueError(f"images differ in size: {original.shape} vs {reconstruction.shape}")
    return _straddle_ratio(reconstruction, period) / _straddle_ratio(original, period)


def periods(own: dict[str, int] | None = None) -> list[int]:
    """The periods to measure: the common ones and the codec's own (window, patch, cell…)."""
    return sorted(set(PERIODS) | set((own or {}).values()))


def key(period: int) -> str:
    """The results key of the seam index at ``period`` pixels."""
    return f"seam-{period}"
