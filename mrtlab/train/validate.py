"""Validation on held-out whole images, by real coding: bpp of the file, PSNR of the decode."""
from __future__ import annotations

import numpy as np
import torch

from ..codec.container import Header, pack
from ..eval.metrics import psnr as psnr_of
from .losses import pairs, token_redundancy


@torch.no_grad()
def validate(model, images: list[tuple[str, np.ndarray]]) -> dict:
    """Mean bpp (8 × the whole ``.mrt`` file size, header included, / pixels) and PSNR.

    The reconstruction is made from the encoder's symbols, which the decoder gets back
    exactly (tests/test_roundtrip.py), so the slower sequential decoding is skipped.
    """
    was_training = model.training
    model.eval()
    model.update()
    bpp, psnr, slot_bits, symbols = [], [], [], []
    device = next(model.parameters()).device
    for _, rgb in images:
        x = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float().to(device) / 255
        y, grid = model.encode(x)                   # once: for the file and the token statistics
        res = model.compress_latent(y, grid)
        if model.latent_tokens > 1:
            per_token = (-1, model.latent_tokens, res["symbols"].shape[-1])
            slot_bits.append(res["bits"].reshape(per_token).sum(-1).mean(0))
            symbols.append(res["symbols"].reshape(per_token))
        h, w = rgb.shape[:2]
        size = len(pack(Header(b"\0" * 4, h, w, res["tokens"]), res["payload"]))
        out = model.reconstruct(res["symbols"].to(device), res["grid"]).permute(1, 2, 0).cpu().numpy()
        bpp.append(8 * size / (h * w))
        psnr.append(psnr_of(out, rgb))
    model.train(was_training)
    out = {"val_bpp": float(np.mean(bpp)), "val_psnr": float(np.mean(psnr))}
    if slot_bits:
        out |= token_stats(torch.stack(slot_bits).mean(0), torch.cat(symbols))
    return out


def token_stats(slot_bits: torch.Tensor, symbols: torch.Tensor) -> dict:
    """Bits per window of each latent token and how much the tokens of a window repeat
    each other (the largest ``losses.token_redundancy`` of two tokens, on the symbols
    ``[windows, L, C]``): tokens that copy each other, even through different projections
    (redundancy near 1), are the collapse that training can drive a model into
    (docs/results.md, "Token collapse")."""
    L = symbols.shape[1]
    return {**{f"val_bits_token{i + 1}": float(b) for i, b in enumerate(slot_bits)},
            "val_token_redundancy": float(pairs(token_redundancy(symbols.reshape(1, -1, symbols.shape[-1]), L)).max())}
