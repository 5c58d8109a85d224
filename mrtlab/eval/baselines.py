"""JPEG and WebP (Pillow) as baselines through the same eval: for a target bpp, bisection on
the integer quality finds the setting whose whole-file rate is nearest the target. Below the
rate of the lowest quality neither codec can go (Pillow's JPEG with optimized Huffman tables
≈ 0.09 bpp, WebP ≈ 0.10 bpp on Kodak): then the lowest quality is used and the row is
marked ``floor``."""
from __future__ import annotations

import io
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import MrtlabError

# Pillow's format name, lowest and highest quality, encoder options (the smallest files).
FORMATS = {
    "jpeg": ("JPEG", 1, 95, {"optimize": True}),
    "webp": ("WEBP", 0, 100, {"method": 6}),
}
# Where each format's blocks lie (Pillow's JPEG subsamples chroma 4:2:0: 16-px MCUs).
PERIODS = {"jpeg": {"block": 8, "mcu": 16}, "webp": {"macroblock": 16}}


def encode_at(rgb: np.ndarray, fmt: str, quality: int) -> bytes:
    name, _, _, opts = FORMATS[fmt]
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=name, quality=quality, **opts)
    return buf.getvalue()


@dataclass
class AtRate:
    data: bytes
    quality: int
    floor: bool  # the target was below the lowest rate this codec reaches


def at_bpp(rgb: np.ndarray, fmt: str, target: float) -> AtRate:
    """The quality whose file is nearest ``target`` bpp (size grows with quality)."""
    _, qmin, qmax, _ = FORMATS[fmt]
    pixels = rgb.shape[0] * rgb.shape[1]
    cache: dict[int, bytes] = {}

    def bpp(q):
        if q not in cache:
            cache[q] = encode_at(rgb, fmt, q)
        return 8 * len(cache[q]) / pixels

    if bpp(qmin) >= target:
        return AtRate(cache[qmin], qmin, floor=bpp(qmin) > target)
    lo, hi = qmin, qmax  # invariant: bpp(lo) < target
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if bpp(mid) < target else (lo, mid - 1)
    q = min((lo, min(lo + 1, qmax)), key=lambda q: abs(bpp(q) - target))
    return AtRate(cache[q], q, floor=False)


class PillowCodec:
    """A baseline with one rate point per target bpp."""

    def __init__(self, fmt: str, targets: list[float]):
        if fmt not in FORMATS:
            raise MrtlabError(f"unknown baseline {fmt!r} (known: {', '.join(FORMATS)})")
        if not targets:
            raise MrtlabError(f"baseline {fmt} needs target rates: --bpp 0.1,0.2,...")
        if any(t <= 0 for t in targets):
            raise MrtlabError(f"target rates must be positive (got {targets})")
        self.fmt, self.name, self.periods = fmt, fmt, PERIODS[fmt]
        self.points = [{"target_bpp": t} for t in targets]
        self.description = (f"Pillow {FORMATS[fmt][0]} (quality by bisection to each target bpp; "
                            "rows marked floor could not go that low)")

    def encode(self, rgb: np.ndarray, point: dict):
        r = at_bpp(rgb, self.fmt, point["target_bpp"])
        t0 = time.perf_counter()  # the time of one encode at the chosen quality, not the search
        encode_at(rgb, self.fmt, r.quality)
        return r.data, None, time.perf_counter() - t0, {"quality": r.quality, "floor": r.floor}

    def decode(self, data: bytes):
        t0 = time.perf_counter()
        with Image.open(io.BytesIO(data)) as im:
            rgb = np.asarray(im.convert("RGB"))
        return rgb, time.perf_counter() - t0
