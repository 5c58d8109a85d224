"""Where in frequency one decoder's pictures differ from another's, for two decoders of the
same files (a stage-2 model and the model it was tuned from): the check for what a
perceptual fine-tune adds besides detail (docs/results.md, "Realism decoder").

For each image, both decode the same file; the power spectrum of their difference (grey
levels, cut to a multiple of the model's periods) is split three ways:
- ``grid``: the harmonics of the model's largest period (its window) below 0.25 cycles per
  pixel: a pattern repeated in every window, such as each window's edges drawn anew;
- ``phase``: the harmonics of its smallest period (its patch) from 0.25 cycles per pixel
  up: patterns of period 4, 2 px…, the phases of the ×2 upsamplings (a pixel shuffle's hatch);
- ``fine``: everything else from 0.25 cycles per pixel up: fine detail that is not periodic.
``*_bins`` is the share of the spectrum each set covers: what a difference spread evenly
over all frequencies would score. The strongest ``phase`` frequencies are listed.

    python tools/decoder_spectrum.py --base runs/default/model.safetensors \\
        --tuned runs/default-stage2/model.safetensors --data ../shared/data/bsds500/val --images 8
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from mrtlab.errors import MrtlabError

FINE = 0.25  # cycles per pixel


def spectrum_shares(diff: np.ndarray, periods: dict[str, int], peaks: int = 3) -> dict:
    """Shares of the power of ``diff`` (H×W, multiples of every period) in the ``grid``,
    ``phase`` and ``fine`` sets, the share of bins each covers, and the ``peaks`` strongest
    phase frequencies as (cycles/px down, across)."""
    h, w = diff.shape
    power = np.abs(np.fft.fft2(diff - diff.mean())) ** 2
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    radius = np.hypot(fy, fx)

    def harmonics(p: int) -> np.ndarray:
        return np.isclose(fy * p, np.round(fy * p)) & np.isclose(fx * p, np.round(fx * p))

    sets = {"grid": harmonics(max(periods.values())) & (radius > 0) & (radius < FINE),
            "phase": harmonics(min(periods.values())) & (radius >= FINE)}
    sets["fine"] = (radius >= FINE) & ~sets["phase"]
    total = power.sum() or 1.0
    out = {}
    for name, on in sets.items():
        out[f"{name}_share"], out[f"{name}_bins"] = float(power[on].sum() / total), float(on.mean())
    strongest = np.argsort(np.where(sets["phase"], power, 0).ravel())[::-1][:peaks]
    out["phase_peaks"] = [(round(float(fy[i // w, 0]), 3), round(float(fx[0, i % w]), 3)) for i in strongest]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="the model the other was tuned from (name or weights)")
    p.add_argument("--tuned", required=True, help="a model that reads the base's files (stage 2)")
    p.add_argument("--data", required=True, help="folder of images")
    p.add_argument("--images", type=int, default=8, help="the first N images of the folder")
    p.add_argument("--tokens", type=int, default=None, help="latent tokens per window (default: all)")
    args = p.parse_args(argv)
    from mrtlab.codec import decode, encode
    from mrtlab.train.data import validation_images
    from mrtlab.zoo import load_model

    try:
        base, tuned = load_model(args.base), load_model(args.tuned)
        if base.fingerprint != tuned.fingerprint:
            raise MrtlabError(f"{args.tuned} does not read the files of {args.base} (another coder)")
        periods = base.periods() or {"pixel": 1}
        unit = int(np.lcm.reduce(list(periods.values())))
        rows = []
        for name, rgb in validation_images(args.data, args.images):
            data = encode(base, rgb, base.check_tokens(args.tokens)).data
            grey = [decode(m, data)[0].astype(np.float64).mean(axis=2) for m in (base, tuned)]
            h, w = (s // unit * unit for s in grey[0].shape)
            if not (h and w):
                raise MrtlabError(f"{name} is smaller than one {unit}-px period")
            rows.append({"image": name, **spectrum_shares((grey[1] - grey[0])[:h, :w], periods)})
    except MrtlabError as e:
        print(f"decoder_spectrum: error: {e}", file=sys.stderr)
        return 1
    mean = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0] if k.endswith(("share", "bins"))}
    print(json.dumps({"mean": mean, "images": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
