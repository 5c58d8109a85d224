"""Ship a trained model in the package: write its weights as float16 (half the size; they
load back as float32) and its recipe into ``mrtlab/models/bundled/NAME.*``.

    python tools/bundle_model.py runs/default/model.safetensors default --force

The name must be listed in ``mrtlab.models.zoo.BUNDLED``. Evaluate the bundled copy (it is
the one users get): ``mrtlab eval --model NAME ...``.
"""
from __future__ import annotations

import argparse
import sys

from mrtlab.errors import MrtlabError
from mrtlab.models.zoo import BUNDLED, BUNDLED_DIR, load_model, save_model


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights", help="a trained model's .safetensors (its .yaml beside it)")
    ap.add_argument("name", choices=sorted(BUNDLED))
    ap.add_argument("--force", action="store_true", help="replace the bundled model of that name")
    args = ap.parse_args(argv)
    stem = BUNDLED_DIR / args.name
    if stem.with_suffix(".safetensors").exists() and not args.force:
        sys.exit(f"bundle_model: error: {stem}.safetensors exists; pass --force to replace it")
    try:
        model = load_model(args.weights)
    except MrtlabError as e:
        sys.exit(f"bundle_model: error: {e}")
    path = save_model(model, model.config, stem, half=True)
    shipped = load_model(args.name)
    print(f"{path}: {path.stat().st_size / 1e6:.1f} MB, fingerprint {shipped.fingerprint.hex()}")


if __name__ == "__main__":
    main()
