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
    """Mean bpp and PSNR of real files at every k = 1…L tokens per window (the analysis
    network runs once per image: ``encode_rates``)."""
    import numpy as np

    from mrtlab.codec import decode
    from mrtlab.codec.codec import encode_rates
    from mrtlab.eval.metrics import psnr

    ks = range(1, model.latent_tokens + 1)
    bpp, quality = {k: [] for k in ks}, {k: [] for k in ks}
    for _, rgb in images:
        for k, enc in zip(ks, encode_rates(model, rgb, ks, lambda _: False)):
            bpp[k].append(8 * enc.bytes / (rgb.shape[0] * rgb.shape[1]))
            quality[k].append(psnr(decode(model, enc.data)[0], rgb))
    return {key: float(np.mean(v[k])) for k in ks
            for key, v in ((f"k{k}_bpp", bpp), (f"k{k}_psnr", quality))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="bundled model name or weights path")
    p.add_argument("--data", required=True, help="folder of images")
    p.add_argument("--images", type=int, default=16, help="the first N images of the folder")
    args = p.parse_args(argv)
    from mrtlab.train.data import validation_images
    from mrtlab.train.validate import validate
    from mrtlab.zoo import load_model

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
