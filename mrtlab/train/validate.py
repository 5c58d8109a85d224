"""Validation on held-out whole images, by real coding: bpp of the file, PSNR of the decode."""
from __future__ import annotations

import math

import numpy as np
import torch

from ..codec.container import Header, pack


@torch.no_grad()
def validate(model, images: list[tuple[str, np.ndarray]]) -> dict:
    """Mean bpp (8 × the whole ``.mrt`` file size, header included, / pixels) and PSNR.

    The reconstruction is made from the encoder's symbols, which the decoder gets back
    exactly (tests/test_roundtrip.py), so the slower sequential decoding is skipped.
    """
    was_training = model.training
    model.eval()
    model.update()
    bpp, psnr = [], []
    device = next(model.parameters()).device
    for _, rgb in images:
        x = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float().to(device) / 255
        res = model.compress(x)
        h, w = rgb.shape[:2]
        size = len(pack(Header(b"\0" * 4, h, w, res["tokens"]), res["payload"]))
        out = model.reconstruct(res["symbols"].to(device), res["grid"]).permute(1, 2, 0).cpu().numpy()
        mse = np.mean((out.astype(np.float64) - rgb) ** 2)
        bpp.append(8 * size / (h * w))
        psnr.append(10 * math.log10(255 ** 2 / max(mse, 1e-10)))
    model.train(was_training)
    return {"val_bpp": float(np.mean(bpp)), "val_psnr": float(np.mean(psnr))}
