"""Time compressai's reference codecs on images; run as a script by ``mrtlab bench codec``.

compressai 1.2.8 wants numpy<2 and torch-geometric, so it usually lives in a venv of its
own (``make compressai-venv``); this file therefore imports nothing from mrtlab.
Usage: ``python compressai_ref.py THREADS IMAGE...`` → one JSON row per line.
Untrained weights (``pretrained=False``) are fine for timing; their bpp means nothing.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ARCHITECTURES = {"mbt2018": "mbt2018", "bmshj2018-hyperprior": "bmshj2018_hyperprior"}


def main(argv: list[str]) -> None:
    import compressai.zoo

    torch.set_num_threads(int(argv[0]))
    models = {}
    for name, fn in ARCHITECTURES.items():
        torch.manual_seed(0)
        net = getattr(compressai.zoo, fn)(quality=1, pretrained=False).eval()
        net.update(force=True)
        models[name] = net
    for path in argv[1:]:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        h, w = rgb.shape[:2]
        x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255
        x = F.pad(x, (0, (-w) % 64, 0, (-h) % 64))
        for name, net in models.items():
            with torch.no_grad():
                t0 = time.perf_counter()
                out = net.compress(x)
                t1 = time.perf_counter()
                net.decompress(out["strings"], out["shape"])
                t2 = time.perf_counter()
            nbytes = sum(len(s[0]) for s in out["strings"])
            print(json.dumps({"model": f"compressai:{name}", "image": path, "encode_s": t1 - t0,
                              "decode_s": t2 - t1, "bpp": 8 * nbytes / (h * w)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
