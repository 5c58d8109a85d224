"""The demo: compress and decompress scikit-image's sample pictures with the bundled model.

Runs the real command line (``mrtlab compress`` / ``mrtlab decompress``), then prints per
image the file size, the bpp of the whole file and the PSNR of the decoded PNG.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

SAMPLES = ["astronaut", "coffee", "chelsea", "rocket", "camera"]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="demo_out", help="folder for the demo's files (recreated)")
    ap.add_argument("--model", help="bundled model name or weights path (default: the bundled default)")
    args = ap.parse_args()
    out = Path(args.out)
    model = ["--model", args.model] if args.model else []
    if out.exists():  # the demo's own folder: marked, so nothing else is ever removed
        if not (out / ".mrtlab-demo").exists():
            sys.exit(f"demo: {out} exists and was not made by the demo; choose another --out")
        shutil.rmtree(out)
    originals, compressed, decoded = out / "originals", out / "compressed", out / "decoded"
    originals.mkdir(parents=True)
    (out / ".mrtlab-demo").touch()
    paths = []
    for name in SAMPLES:
        path = originals / f"{name}.png"
        Image.fromarray(getattr(data, name)()).save(path)
        paths.append(path)
    mrtlab = [sys.executable, "-m", "mrtlab.cli"]
    subprocess.run(mrtlab + ["compress", *map(str, paths), "-o", str(compressed), *model],
                   check=True)
    files = [compressed / f"{p.stem}.mrt" for p in paths]
    subprocess.run(mrtlab + ["decompress", *map(str, files), "-o", str(decoded), *model],
                   check=True)

    print(f"\n{'image':<10} {'size':>9} {'bytes':>6} {'bpp':>7} {'PSNR dB':>8}")
    for path, f in zip(paths, files):
        ref = np.asarray(Image.open(path).convert("RGB"))
        rec = np.asarray(Image.open(decoded / f"{path.stem}.png"))
        h, w = ref.shape[:2]
        size = f.stat().st_size
        print(f"{path.stem:<10} {w:>4}x{h:<4} {size:>6} {8 * size / (h * w):>7.4f} {psnr(ref, rec):>8.2f}")
    print(f"\noriginals: {originals}/\ncompressed files: {compressed}/\ndecoded PNGs: {decoded}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
