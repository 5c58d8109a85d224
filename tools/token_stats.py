"""Each latent token's bits per window, how much the tokens of a window repeat each other,
and (for a variable-rate model) the bpp and PSNR of real files at each number of tokens k,
for a trained model on a folder of images: the check for the collapse in which a window's
later tokens copy its first, or add nothing the decoder uses (docs/results.md).

    python tools/token_stats.py --model runs/seams/conv/model.safetensors \\
        --data ../shared/data/bsds500/val --images 16
"""
from __future__ import annotations

import argparse
import json
import sys

from mrtlab.errors import MrtlabError


def per_token_count(model, images) -> dict:
    """Mean bpp and PSNR of real files at every k = 1…L tokens per window."""
    import math

    import numpy as np

    from mrtlab.codec import decode, encode

    out = {}
    for k in range(1, model.latent_tokens + 1):
        bpp, psnr = [], []
        for _, rgb in images:
            enc = encode(model, rgb, k)
            rec, _ = decode(model, enc.data)
            bpp.append(8 * enc.bytes / (rgb.shape[0] * rgb.shape[1]))
            psnr.append(10 * math.log10(255 ** 2 / max(np.mean((rec.astype(np.float64) - rgb) ** 2), 1e-10)))
        out[f"k{k}_bpp"], out[f"k{k}_psnr"] = float(np.mean(bpp)), float(np.mean(psnr))
    return out


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
        images = validation_images(args.data, args.images)
        stats = validate(model, images)
        if model.variable_rate:
            stats |= per_token_count(model, images)
    except MrtlabError as e:
        print(f"token_stats: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps({k.removeprefix("val_"): round(v, 4) for k, v in stats.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
