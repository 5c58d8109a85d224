"""``mrtlab eval``: every image is compressed to a real file, decoded from that file alone and
measured. Means per rate point go to CompressAI's JSON layout (``name``, ``description``,
``results``: metric → one value per rate point), per-image rows to a second file. Under
``accelerate launch`` the images are split over the processes and gathered on the main one."""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..codec import codec, load_rgb
from ..codec.image_io import IMAGE_SUFFIXES
from ..errors import MrtlabError
from ..files import write_atomic
from ..zoo.catalog import FIDELITY
from . import metrics as M
from . import seams

METRICS = ("psnr", "lowpass-psnr", "ms-ssim", "seam", "lpips", "dists", "fid")  # "fid" gives FID and KID
PACKAGES = {"ms-ssim": "pytorch_msssim", "lpips": "lpips", "dists": "DISTS_pytorch", "fid": "torch_fidelity"}
ROW_KEYS = ("bpp", "estimated_bpp", "psnr", "lowpass-psnr", "ms-ssim", "lpips", "dists", "encoding_time",
            "decoding_time")


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.exists():
        raise MrtlabError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise MrtlabError(f"{folder}: is a file, not a folder of images")
    images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise MrtlabError(f"{folder}: no images in it (looked for {' '.join(IMAGE_SUFFIXES)})")
    return images


class ModelCodec:
    """An mrtlab model as a codec with rate points: ``tokens`` (latent tokens kept per window)
    for a variable-rate model, by default every count from 1 to L; a fixed-rate model has one."""

    def __init__(self, model, tokens: list[int] | None = None):
        self.model, self._codec = model, codec
        if tokens is None:
            tokens = list(range(1, model.latent_tokens + 1)) if model.variable_rate else [model.latent_tokens]
        self.points = [{"tokens": model.check_tokens(t)} for t in tokens]
        self.periods = model.periods()
        source = Path(model.source)       # a training run exports out/model.safetensors
        self.name = source.parent.name if source.stem == "model" and source.parent.name else source.stem
        if model.decoder_name != FIDELITY:   # the model's other decoders: results of their own
            self.name += f"-{model.decoder_name}"
        self.description = (f"mrtlab model {model.source} (fingerprint {model.fingerprint.hex()}), "
                            f"decoder {model.decoder_name} ({model.decoder_hash})")

    def encode(self, rgb: np.ndarray, point: dict):
        enc = self._codec.encode(self.model, rgb, point["tokens"])
        return enc.data, enc.estimated_bits, enc.seconds, {}

    def decode(self, data: bytes):
        t0 = time.perf_counter()
        rgb, _ = self._codec.decode(self.model, data)
        return rgb, time.perf_counter() - t0


def measure(codec, point: dict, rgb: np.ndarray, perceptual, names=METRICS):
    """One image at one rate point: (the row of numbers, the reconstruction, the file)."""
    data, est_bits, enc_s, extra = codec.encode(rgb, point)
    rec, dec_s = codec.decode(data)
    pixels = rgb.shape[0] * rgb.shape[1]
    row = {"bytes": len(data), "bpp": 8 * len(data) / pixels}
    if est_bits is not None:
        row["estimated_bpp"] = est_bits / pixels
    if "psnr" in names:
        row["psnr"] = M.psnr(rgb, rec)
    if "lowpass-psnr" in names:
        row["lowpass-psnr"] = M.lowpass_psnr(rgb, rec)
    if "ms-ssim" in names:
        row["ms-ssim"] = M.ms_ssim(rgb, rec)
    if "seam" in names:
        row.update({seams.key(p): seams.seam_index(rgb, rec, p)
                    for p in seams.periods(getattr(codec, "periods", None))})
    row.update(perceptual(rgb, rec))
    row.update({"encoding_time": enc_s, "decoding_time": dec_s, **extra})
    return row, rec, data


def evaluate(codec, images: list[Path], metrics=METRICS, weights=None, report=None,
             progress: bool = True, data_name: str = "") -> dict | None:
    """Run the eval; the main process returns ``{"summary", "rows"}``, the others ``None``."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import gather_object
    from tqdm import tqdm

    from .fid import PatchFID

    state = PartialState(cpu=not torch.cuda.is_available())  # several CPU processes: DDP over gloo
    perceptual = M.Perceptual([m for m in ("lpips", "dists") if m in metrics], weights)
    fid = PatchFID(weights) if "fid" in metrics else None
    fid_on = fid is not None and fid.skipped is None
    if report is not None:
        state.wait_for_everyone()  # every process has checked the folder: now empty it once
        if state.is_main_process:
            report.prepare()
        state.wait_for_everyone()
    rows, feats = [], []
    with state.split_between_processes(list(enumerate(images))) as mine:
        bar = tqdm(total=len(mine) * len(codec.points), unit="img", file=sys.stderr,
                   desc=f"eval {codec.name}", disable=not (progress and state.is_main_process))
        for index, path in mine:
            rgb, notice = load_rgb(path)
            if notice:
                print(f"{path}: note: {notice}", file=sys.stderr)
            real = fid.features(rgb) if fid_on else None
            for p, point in enumerate(codec.points):
                row, rec, _ = measure(codec, point, rgb, perceptual, metrics)
                row = {"image": path.name, "index": index, "point": p, "width": rgb.shape[1],
                       "height": rgb.shape[0], **row}
                if fid_on:
                    feats.append((p, real, fid.features(rec)))
                if report is not None:
                    row["compare"] = report.add_image(path, p, rgb, rec, row, perceptual, metrics)
                rows.append(row)
                bar.update()
        bar.close()
    rows, feats = gather_object(rows), gather_object(feats)
    if not state.is_main_process:
        return None
    rows.sort(key=lambda r: (r["point"], r["index"]))
    skipped = dict(perceptual.skipped)
    if fid is not None and fid.skipped:
        skipped["fid"] = skipped["kid"] = fid.skipped
    summary = summarize(codec, rows, feats if fid_on else None, skipped, len(images), data_name)
    summary["processes"] = state.num_processes
    return {"summary": summary, "rows": rows}


def mean_per_point(rows: list[dict], key: str, n_points: int) -> list | str | None:
    """Means per rate point; ``None`` when the key was not measured, a reason when some
    images have no value (MS-SSIM of images too small for its 5 scales)."""
    if not any(key in r for r in rows):
        return None
    values = [[r.get(key) for r in rows if r["point"] == p] for p in range(n_points)]
    missing = sum(v is None for v in values[0])
    if missing:
        if key == "ms-ssim":
            return (f"{missing} of {len(values[0])} images are smaller than {M.MS_SSIM_MIN_SIDE} px "
                    "on a side (MS-SSIM's 5 scales do not fit)")
        return f"missing for {missing} of {len(values[0])} images"
    return [float(np.mean(vs)) for vs in values]


def summarize(codec, rows, feats, skipped: dict, n_images: int, data_name: str) -> dict:
    from .curves import COMPRESSAI_KEYS
    from .fid import score

    results = {}
    seam_keys = sorted({k for r in rows for k in r if k.startswith("seam-")}, key=lambda k: int(k[5:]))
    for key in (*ROW_KEYS, *seam_keys):
        m = mean_per_point(rows, key, len(codec.points))
        if isinstance(m, list):
            results[COMPRESSAI_KEYS.get(key, key)] = m
        elif isinstance(m, str):
            skipped[key] = m
    if feats is not None:
        fids = []
        for p in range(len(codec.points)):
            real = np.concatenate([r for q, r, _ in feats if q == p])
            fake = np.concatenate([f for q, _, f in feats if q == p])
            if len(real) < 2:
                skipped["fid"] = skipped["kid"] = (f"only {len(real)} 256×256 patches in the images; "
                                                   "FID/KID need at least 2")
                break
            fids.append(score(real, fake) | {"patches": len(real)})
        else:
            results["fid"], results["kid"] = [f["fid"] for f in fids], [f["kid"] for f in fids]
            results["fid_patches"] = [f["patches"] for f in fids]
    return {
        "name": codec.name,
        "description": (f"{codec.description}; {n_images} images of {data_name or 'the data'}; "
                        f"bpp = 8 × whole file bytes / pixels; mrtlab {__version__}"),
        "results": results,
        "points": codec.points,
        "seam_periods": getattr(codec, "periods", {}),
        "images": n_images,
        "skipped": skipped,
    }


def finite(x):
    """JSON has no infinity or NaN: write ``null`` instead (PSNR is capped, never infinite)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [finite(v) for v in x]
    return x


def per_image_path(out: Path) -> Path:
    return out.with_name(out.stem + ".per_image.json")


def write(result: dict, out: Path) -> tuple[Path, Path]:
    """The CompressAI-layout summary at ``out`` and the per-image rows beside it."""
    rows_path = per_image_path(out)
    summary = dict(result["summary"], per_image=rows_path.name)
    write_atomic(out, json.dumps(finite(summary), indent=1), force=True)  # checked before the run
    write_atomic(rows_path, json.dumps(finite({"name": summary["name"], "rows": result["rows"]}), indent=1),
                 force=True)
    return out, rows_path


def own_seam_keys(summary: dict) -> list[str]:
    """The seam-index keys at the codec's own periods (all measured ones if it names none)."""
    own = summary.get("seam_periods") or {}
    keys = [seams.key(p) for p in sorted(set(own.values()), reverse=True)]
    return keys or [k for k in summary["results"] if k.startswith("seam-")]


def table(summary: dict) -> str:
    """The means as a small text table, one line per rate point."""
    from .curves import Curve

    res = Curve(summary["name"], summary["results"]["bpp"], summary["results"], "(this run)")
    keys = [k for k in ("bpp", "estimated_bpp", "psnr", "lowpass-psnr", "ms-ssim", "lpips", "dists", "fid", "kid",
                        *own_seam_keys(summary), "encoding_time", "decoding_time") if res.has(k)]
    lines = ["point  " + "  ".join(f"{k:>13}" for k in keys)]
    for p, point in enumerate(summary["points"]):
        label = ",".join(f"{k}={v}" for k, v in point.items())
        lines.append(f"{label:<7}" + "  ".join(f"{res.get(k)[p]:>13.5g}" for k in keys))
    return "\n".join(lines)
