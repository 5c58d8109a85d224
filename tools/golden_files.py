"""Make the golden files of tests/test_golden_files.py, or say how they would change.

    python tools/golden_files.py           # compare with the files in tests/data
    python tools/golden_files.py --write   # and write them

Each is a 64×96 crop of skimage's astronaut (rows 40:104, columns 160:256) compressed
with a bundled model at 1 token per window, and the PNG it decodes to. A changed
fingerprint alone (the same payload and pixels) means the model codes as before but old
files are refused; a changed payload or changed pixels mean it codes differently. Either
belongs in CHANGELOG.md.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from mrtlab.codec import decode, encode, unpack
from mrtlab.zoo import BUNDLED, load_model

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="write the files into tests/data")
    args = ap.parse_args(argv)
    crop = np.ascontiguousarray(data.astronaut()[40:104, 160:256])
    for name in BUNDLED:
        stem = DATA / f"astronaut_64x96_{name}_tokens1"
        model = load_model(name)
        new = encode(model, crop, 1).data
        pixels, _ = decode(model, new)
        print(f"{stem.name}: {compare(stem, new, pixels)}")
        if args.write:
            stem.with_suffix(".mrt").write_bytes(new)
            Image.fromarray(pixels).save(stem.with_suffix(".png"))


def compare(stem: Path, new: bytes, pixels: np.ndarray) -> str:
    if not stem.with_suffix(".mrt").is_file():
        return "new"
    old_header, old_payload = unpack(stem.with_suffix(".mrt").read_bytes())
    new_header, new_payload = unpack(new)
    old_pixels = np.asarray(Image.open(stem.with_suffix(".png")))
    return ", ".join([
        f"fingerprint {old_header.fingerprint.hex()} → {new_header.fingerprint.hex()}"
        if old_header.fingerprint != new_header.fingerprint else "fingerprint unchanged",
        "payload unchanged" if old_payload == new_payload else "PAYLOAD CHANGED",
        "pixels unchanged" if np.array_equal(old_pixels, pixels) else "PIXELS CHANGED"])


if __name__ == "__main__":
    main()
