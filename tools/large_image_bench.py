"""Peak memory and time of compressing and decompressing large photos, each run a process of
its own: ``python tools/large_image_bench.py --model default --mp 1,4,16,50 --json out.json``.

The pictures are scikit-image's samples tiled into a mosaic and resized to each size (4:3),
written as PNG once into ``--work`` (default: a temporary folder). Peak memory is the
process's own maximum resident set (``getrusage``), time the whole command's wall time."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

CHILD = ("import resource, sys; from mrtlab.cli import main; rc = main(sys.argv[1:]); "
         "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)")


def picture(megapixels: float, path: Path) -> Path:
    from skimage import data

    if path.exists():
        return path
    tiles = [getattr(data, n)() for n in ("astronaut", "coffee", "chelsea", "rocket")]
    tiles = [Image.fromarray(t).convert("RGB").resize((512, 384)) for t in tiles]
    mosaic = Image.new("RGB", (1024, 768))
    for i, t in enumerate(tiles):
        mosaic.paste(t, ((i % 2) * 512, (i // 2) * 384))
    w = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    mosaic.resize((w, w * 3 // 4), Image.Resampling.BICUBIC).save(path)
    return path


def run(argv: list[str]) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    peak = [line.split()[1] for line in proc.stderr.splitlines() if line.startswith("PEAK_KB")]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("mrtlab: error")]
    return {"rc": proc.returncode, "seconds": round(seconds, 2),
            "peak_mb": round(int(peak[0]) / 1024) if peak else None, "error": errors[0] if errors else None}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default")
    p.add_argument("--mp", default="1,4,16,50", help="megapixels, comma-separated")
    p.add_argument("--tokens", type=int, default=2)
    p.add_argument("--weights", help="pretrained networks' folder (taef2)")
    p.add_argument("--work", help="folder for the pictures and files (default: a temporary one)")
    p.add_argument("--json", help="write the rows here")
    args = p.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="mrtlab-large-"))
    work.mkdir(parents=True, exist_ok=True)
    extra = ["--weights", args.weights] if args.weights else []
    rows = []
    for mp in [float(v) for v in args.mp.split(",")]:
        src = picture(mp, work / f"{mp:g}mp.png")
        mrt, png = work / f"{mp:g}mp-{args.model}.mrt", work / f"{mp:g}mp-{args.model}.png"
        for f in (mrt, png):
            f.unlink(missing_ok=True)
        w, h = Image.open(src).size
        enc = run(["compress", str(src), "-o", str(mrt), "-m", args.model, "--tokens", str(args.tokens), *extra])
        dec = run(["decompress", str(mrt), "-o", str(png), "-m", args.model, *extra]) if enc["rc"] == 0 else {}
        row = {"model": args.model, "megapixels": round(w * h / 1e6, 2), "size": f"{w}x{h}",
               "compress": enc, "decompress": dec}
        if dec.get("rc") == 0:
            a, b = np.asarray(Image.open(src).convert("RGB")), np.asarray(Image.open(png).convert("RGB"))
            row["psnr"] = round(float(10 * np.log10(255 ** 2 / np.mean((a.astype(float) - b) ** 2))), 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
