"""Each latent token's bits per window and the correlation between the tokens of a window,
for a trained model on a folder of images: the check for the collapse in which a window's
later tokens copy its first (docs/results.md).

    python tools/token_stats.py --model runs/seams/conv/model.safetensors \\
        --data ../shared/data/bsds500/val --images 16
"""
from __future__ import annotations

import argparse
import json
import sys

from mrtlab.errors import MrtlabError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="bundled model name or weights path")
    p.add_argument("--data", required=True, help="folder of images")
    p.add_argument("--images", type=int, default=16, help="the first N images of the folder")
    args = p.parse_args(argv)
    from mrtlab.models import load_model
    from mrtlab.train.data import validation_images
    from mrtlab.train.validate import validate

    try:
        model = load_model(args.model)
        if model.latent_tokens < 2:
            raise MrtlabError(f"{args.model} has one latent token per window: nothing to compare")
        stats = validate(model, validation_images(args.data, args.images))
    except MrtlabError as e:
        print(f"token_stats: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps({k.removeprefix("val_"): round(v, 4) for k, v in stats.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
