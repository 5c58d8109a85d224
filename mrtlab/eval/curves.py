"""Rate-distortion curves read from CompressAI-layout JSON: our results, CompressAI's own files,
or the published curves shipped in ``reference/`` (each with its source)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..errors import MrtlabError

REFERENCE_DIR = Path(str(resources.files("mrtlab.eval") / "reference"))
# Older CompressAI files (and mrtlab's first ones, e.g. docs/results/) say "psnr"/"ms-ssim",
# newer ones "psnr-rgb"/"ms-ssim-rgb": the keys CompressAI's eval writes and its plot tool reads.
ALIASES = {"psnr": ("psnr", "psnr-rgb"), "ms-ssim": ("ms-ssim", "ms-ssim-rgb", "msssim")}
# What ``mrtlab eval`` writes in ``results`` for a metric, so ``compressai.utils.plot`` reads it.
COMPRESSAI_KEYS = {"psnr": "psnr-rgb", "ms-ssim": "ms-ssim-rgb"}
HIGHER_IS_BETTER = {"psnr": True, "lowpass-psnr": True, "ms-ssim": True, "ssim": True, "lpips": False, "dists": False,
                    "fid": False, "kid": False, "niqe": False}


@dataclass
class Curve:
    name: str
    bpp: list[float]
    metrics: dict[str, list[float]]
    path: str
    source: dict = field(default_factory=dict)

    def get(self, metric: str) -> list[float]:
        for key in ALIASES.get(metric, (metric,)):
            if key in self.metrics:
                return self.metrics[key]
        known = ", ".join(k for k in self.metrics if k != "bpp")
        raise MrtlabError(f"{self.path}: no {metric!r} values (it has: {known})")

    def has(self, metric: str) -> bool:
        return any(k in self.metrics for k in ALIASES.get(metric, (metric,)))

    def points(self, metric: str, max_bpp: float | None = None,
               pareto: bool = False) -> list[tuple[float, float]]:
        """(bpp, value) sorted by rate; only those at or below ``max_bpp`` if given;
        ``pareto``: only the points no other point beats with fewer bits (a variable-rate
        model's extra tokens can cost bits and give nothing)."""
        pts = [p for p in sorted(zip(self.bpp, self.get(metric))) if max_bpp is None or p[0] <= max_bpp]
        if not pareto:
            return pts
        sign = 1 if HIGHER_IS_BETTER.get(metric, True) else -1
        front: list[tuple[float, float]] = []
        for bpp, value in pts:
            if not front or sign * value > sign * front[-1][1]:
                front.append((bpp, value))
        return front


def references(dataset: str | None = None) -> dict[str, Path]:
    """Shipped reference curves by stem (``kodak_vtm``…), optionally for one dataset."""
    files = sorted(REFERENCE_DIR.glob("*.json"))
    return {p.stem: p for p in files if dataset is None or p.stem.split("_")[0] == dataset}


def datasets() -> list[str]:
    return sorted({stem.split("_")[0] for stem in references()})


def reference_curves(dataset: str) -> list[Curve]:
    """The shipped curves of a ``--reference`` dataset, or a one-line error naming the known ones."""
    if dataset not in datasets():
        raise MrtlabError(f"no published curves for {dataset!r} (known: {', '.join(datasets())})")
    return [load(p) for p in references(dataset).values()]


def load(name_or_path: str | Path) -> Curve:
    """A results file, or the stem of a shipped reference curve."""
    path = Path(name_or_path)
    if not path.exists() and str(name_or_path) in references():
        path = references()[str(name_or_path)]
    if not path.exists():
        raise MrtlabError(f"{path}: no such file (nor a reference curve; known: "
                          f"{', '.join(references())})")
    if path.is_dir():
        raise MrtlabError(f"{path}: is a folder, not a results JSON file")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MrtlabError(f"{path}: not valid JSON ({e})") from None
    except OSError as e:
        raise MrtlabError(f"{path}: cannot read ({e.strerror})") from None
    res = data.get("results") if isinstance(data, dict) else None
    if not isinstance(res, dict) or "bpp" not in res:
        raise MrtlabError(f"{path}: not a results file (expected {{\"name\", \"results\": "
                          "{\"bpp\": [...], metric: [...]}})")
    n = len(res["bpp"]) if isinstance(res["bpp"], list) else -1
    for key, values in res.items():
        if not isinstance(values, list) or len(values) != n or \
                not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                        for v in values):
            raise MrtlabError(f"{path}: results[{key!r}] must be a list of {n} finite numbers "
                              "(one per rate point, like results['bpp'])")
    if n == 0:
        raise MrtlabError(f"{path}: has no rate points")
    return Curve(str(data.get("name") or path.stem), [float(v) for v in res["bpp"]],
                 {k: [float(v) for v in vs] for k, vs in res.items()}, str(path),
                 data.get("source") or {})
