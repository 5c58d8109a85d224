"""Fit another entropy model to a trained model's frozen symbols.

The tokenizer, quantizer and decoder stay as they are (so do the symbols of every image);
only the entropy model is replaced and trained, on the symbols of whole training images
(and their mirror images). This is how the entropy models are compared on one tokenizer:

    python tools/fit_entropy_model.py --model runs/demo/model.safetensors --entropy rcm \
        --data ../shared/data/bsds500 --out runs/demo_rcm
    mrtlab bench codec --model runs/demo_rcm.safetensors --no-compressai

(``runs/demo`` is what ``mrtlab train --config recipes/mrt/demo.yaml`` writes.)

Writes ``OUT.safetensors`` + ``OUT.yaml`` (the recipe with the new ``entropy_model``; existing
files only with ``--force``) and prints bits per symbol of the old and the new entropy model on
the training symbols.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

from mrtlab.codec.image_io import load_rgb
from mrtlab.config import build_model
from mrtlab.errors import MrtlabError
from mrtlab.files import check_writable
from mrtlab.train.data import image_files
from mrtlab.zoo.model_files import load_model, save_model


@torch.no_grad()
def collect_symbols(model, folder: str, limit: int | None) -> dict:
    """Symbol positions of every image and its mirror, grouped by layout."""
    groups = defaultdict(list)
    for path in image_files(folder)[:limit]:
        try:
            rgb, _ = load_rgb(path)
        except MrtlabError as e:
            print(f"skipping {path}: {e}", file=sys.stderr)
            continue
        x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255
        for image in (x, x.flip(-1)):
            y, grid = model.encode(image)
            groups[model.layout(grid)].append(model.quantizer(y)[0])
    return {layout: torch.stack(qs) for layout, qs in groups.items()}


def bits_per_symbol(em, groups) -> float:
    with torch.no_grad():
        bits = sum(float(em(q, layout).sum()) for layout, q in groups.items())
    return bits / sum(q.numel() for q in groups.values())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="bundled model name or weights path (default: the bundled default)")
    ap.add_argument("--entropy", required=True, help="registry name, e.g. rcm, hyperprior")
    ap.add_argument("--init-args", default="{}", help='JSON, e.g. \'{"dim": 64}\'')
    ap.add_argument("--data", required=True, help="folder of training images, e.g. ../shared/data/bsds500")
    ap.add_argument("--limit", type=int, help="use only the first N images")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, help="output stem (OUT.safetensors, OUT.yaml)")
    ap.add_argument("--force", action="store_true", help="overwrite an existing OUT.safetensors/OUT.yaml")
    args = ap.parse_args(argv)
    try:
        fit(args)
    except MrtlabError as e:
        sys.exit(f"fit_entropy_model: error: {e}")


def fit(args) -> None:
    for path in (Path(args.out).with_suffix(".safetensors"), Path(args.out).with_suffix(".yaml")):
        check_writable(path, args.force)  # before the long fit, not after it
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    model = load_model(args.model)
    cfg = copy.deepcopy(model.config)
    t0 = time.time()
    groups = collect_symbols(model, args.data, args.limit)
    n = sum(len(q) for q in groups.values())
    print(f"symbols of {n} images in {len(groups)} layouts ({time.time() - t0:.0f} s)")
    old_name, old = cfg["entropy_model"]["class_path"], bits_per_symbol(model.entropy_model, groups)

    cfg["entropy_model"] = {"class_path": args.entropy, "init_args": json.loads(args.init_args)}
    em = build_model(cfg).entropy_model
    opt = torch.optim.AdamW(em.parameters(), lr=args.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * s / args.steps)))
    layouts = list(groups)
    weights = [len(groups[k]) for k in layouts]
    em.train()
    for step in range(1, args.steps + 1):
        layout = random.choices(layouts, weights)[0]
        q = groups[layout]
        batch = q[torch.randint(len(q), (args.batch,))]
        loss = em(batch, layout).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(em.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0 or step == args.steps:
            print(f"step {step}: {loss.item():.4f} bits/symbol ({time.time() - t0:.0f} s)", flush=True)
    em.eval()
    new = bits_per_symbol(em, groups)
    model.entropy_model = em
    model.update()
    path = save_model(model, cfg, Path(args.out))
    print(f"bits per symbol on the training symbols: {old_name} {old:.4f} → "
          f"{args.entropy} {new:.4f} ({100 * (1 - new / old):.1f}% fewer)")
    print(f"model: {path}")


if __name__ == "__main__":
    main()
