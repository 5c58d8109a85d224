"""Crops of one image side by side, for the docs: the original, each model's reconstruction
(from a real file) and JPEG/WebP at a target rate, each labelled with its bpp and PSNR.

    python tools/side_by_side.py ../shared/data/kodak/kodim23.png docs/crops_kodim23.png \\
        --model MRT=default:2 --model 2-D=cnn2d:2 --baseline jpeg:0.03 --box 200,100,224,160

``--model LABEL=MODEL:K`` codes with K latent tokens per window (a bundled name or a
``.safetensors`` path); ``--baseline FORMAT:BPP`` encodes at the quality nearest BPP (at
its lowest quality when the rate is below what the format reaches: "floor" in the label).
Crops are enlarged by ``--zoom`` with nearest-neighbour pixels, so that seams stay visible.
``--difference GAIN`` draws every tile after the first model as its difference from the
first model's picture (grey levels × GAIN around mid-grey): what a stage-2 decoder changes,
where a faint mesh shows plainly (docs/results.md, "Realism decoder").
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mrtlab.errors import MrtlabError

LABEL_PX = 16


def tiles(rgb: np.ndarray, models: list[str], baselines: list[str]) -> list[tuple[str, np.ndarray]]:
    """(label, reconstruction) for the original, each model and each baseline."""
    from mrtlab.codec import decode, encode
    from mrtlab.eval.baselines import at_bpp
    from mrtlab.eval.metrics import psnr
    from mrtlab.zoo import load_model

    pixels = rgb.shape[0] * rgb.shape[1]
    out = [("original", rgb)]
    for spec in models:
        label, _, rest = spec.rpartition("=")
        decoder = None
        if not rest.rpartition(":")[2].isdigit():          # LABEL=MODEL:K:DECODER
            rest, _, decoder = rest.rpartition(":")
        name, _, k = rest.rpartition(":")
        if not (label and name and k.isdigit()):
            raise MrtlabError(f"--model {spec!r}: expected LABEL=MODEL:K or LABEL=MODEL:K:DECODER, "
                              "e.g. MRT=default:2 or MRT=default:2:realism")
        model = load_model(name, decoder)
        enc = encode(model, rgb, int(k))
        rec, _ = decode(model, enc.data)
        out.append((f"{label} k={k} {8 * enc.bytes / pixels:.4f} bpp {psnr(rec, rgb):.2f} dB", rec))
    for spec in baselines:
        fmt, _, target = spec.partition(":")
        try:
            r = at_bpp(rgb, fmt, float(target))
        except (KeyError, ValueError):
            raise MrtlabError(f"--baseline {spec!r}: expected jpeg:BPP or webp:BPP") from None
        rec = np.asarray(Image.open(io.BytesIO(r.data)).convert("RGB"))
        floor = " (floor)" if r.floor else ""
        out.append((f"{fmt} q={r.quality}{floor} {8 * len(r.data) / pixels:.4f} bpp {psnr(rec, rgb):.2f} dB",
                    rec))
    return out


def differences(pictures: list[tuple[str, np.ndarray]], gain: float) -> list[tuple[str, np.ndarray]]:
    """The original and the first model as they are, every later tile as its grey-level
    difference from the first model, × ``gain`` around mid-grey."""
    if len(pictures) < 3:
        raise MrtlabError("--difference needs two --model (or a model and a --baseline)")
    base = pictures[1][1].astype(np.float64).mean(axis=2)
    out = pictures[:2]
    for label, rgb in pictures[2:]:
        grey = np.clip(128 + gain * (rgb.astype(np.float64).mean(axis=2) - base), 0, 255).astype(np.uint8)
        out.append((f"{label} (diff x{gain:g})", np.repeat(grey[..., None], 3, axis=2)))
    return out


def compose(pictures: list[tuple[str, np.ndarray]], box: tuple[int, int, int, int], zoom: int,
            columns: int) -> Image.Image:
    x, y, w, h = box
    tw, th = w * zoom, h * zoom + LABEL_PX
    rows = -(-len(pictures) // columns)
    canvas = Image.new("RGB", (columns * tw + (columns - 1) * 4, rows * th + (rows - 1) * 4), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (label, rgb) in enumerate(pictures):
        crop = Image.fromarray(rgb[y:y + h, x:x + w]).resize((w * zoom, h * zoom), Image.NEAREST)
        cx, cy = (i % columns) * (tw + 4), (i // columns) * (th + 4)
        canvas.paste(crop, (cx, cy + LABEL_PX))
        draw.text((cx + 2, cy + 2), label, fill="black")
    return canvas


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("image")
    p.add_argument("out", help="the PNG to write (not overwritten without --force)")
    p.add_argument("--model", action="append", default=[], help="LABEL=MODEL:K or LABEL=MODEL:K:DECODER (repeatable)")
    p.add_argument("--baseline", action="append", default=[], help="FORMAT:BPP, FORMAT jpeg or webp")
    p.add_argument("--box", default=None,
                   help="X,Y,W,H of the crop in pixels (default: 224×160, or less, at the centre)")
    p.add_argument("--zoom", type=int, default=2)
    p.add_argument("--columns", type=int, default=0, help="tiles per row (default: all in one row)")
    p.add_argument("--difference", type=float, default=0, metavar="GAIN",
                   help="tiles after the first model as their difference from it, × GAIN")
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)
    from mrtlab.codec import load_rgb

    try:
        out = Path(args.out)
        if out.exists() and not args.force:
            raise MrtlabError(f"{out} exists; pass --force to replace it")
        rgb, _ = load_rgb(Path(args.image))
        H, W = rgb.shape[:2]
        w, h = min(224, W), min(160, H)
        box = tuple(int(v) for v in args.box.split(",")) if args.box else ((W - w) // 2, (H - h) // 2, w, h)
        if len(box) != 4 or box[0] < 0 or box[1] < 0 or box[2] < 1 or box[3] < 1 \
                or box[0] + box[2] > W or box[1] + box[3] > H:
            raise MrtlabError(f"--box {args.box} is not inside the {W}×{H} image")
        pictures = tiles(rgb, args.model, args.baseline)
        if args.difference:
            pictures = differences(pictures, args.difference)
        compose(pictures, box, args.zoom, args.columns or len(pictures)).save(out)
    except (MrtlabError, ValueError) as e:
        print(f"side_by_side: error: {e}", file=sys.stderr)
        return 1
    for label, _ in pictures:
        print(label)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
