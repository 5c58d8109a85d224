"""Tokenizers: shapes for any image size, and a synthesis whose pixels depend on the tokens of
neighbouring windows (the convolutional one), so that windows cannot show as a mosaic."""
import numpy as np
import pytest
import torch

from mrtlab.codec import decode, encode
from mrtlab.config import build_model
from mrtlab.tokenizers import ConvWindowTokenizer, PatchWindowTokenizer

from .helpers import TINY


def tokenizers():
    torch.manual_seed(0)
    return {"patch_window": PatchWindowTokenizer(16, patch=4, window=2, refine_channels=4),
            "conv_window": ConvWindowTokenizer(16, patch=4, window=2, widths=(8,), blocks=(1, 1))}


@pytest.mark.parametrize("name", ["patch_window", "conv_window"])
@pytest.mark.parametrize("hw", [(1, 1), (9, 17), (16, 24)])
def test_shapes_for_any_size(name, hw):
    tok = tokenizers()[name]
    tokens, grid = tok.tokenize(torch.rand(2, 3, *hw))
    assert tokens.shape == (2, grid.windows_h, grid.windows_w, 4, 16)
    assert (grid.windows_h, grid.windows_w) == (-(-hw[0] // 8), -(-hw[1] // 8))
    assert tok.detokenize(tokens, grid).shape == (2, 3, *hw)


def reach(tok):
    """Which pixels change when one token of the window at (1, 1) changes (3×3 windows)."""
    tokens, grid = tok.tokenize(torch.rand(1, 3, 24, 24))
    with torch.no_grad():
        base = tok.detokenize(tokens, grid)
        bumped = tokens.clone()
        bumped[0, 1, 1, 0] += 1.0                  # the top-left token of the middle window
        return (tok.detokenize(bumped, grid) - base).abs().sum(1)[0] > 1e-6


def test_the_convolutional_synthesis_crosses_window_boundaries():
    toks = tokenizers()
    for tok in toks.values():   # a random init has zero last convolutions in the residual blocks
        for p in tok.parameters():
            if p.dim() > 1 and not p.abs().sum():
                torch.nn.init.normal_(p, std=0.1)
    conv, linear = reach(toks["conv_window"]), reach(toks["patch_window"])
    assert conv[8:12, 8:12].all()                  # the token's own 4×4-pixel patch
    assert conv[:8].any() and conv[:, :8].any()    # and the windows above and to the left
    assert not linear[:6].any() and not linear[:, :6].any()   # the linear head: 2 px of refinement


def test_a_model_with_the_convolutional_tokenizer_round_trips():
    cfg = dict(TINY, tokenizer={"class_path": "conv_window",
                                "init_args": {"patch": 4, "window": 2, "widths": [8], "blocks": [0, 1]}})
    torch.manual_seed(0)
    model = build_model(cfg)
    model.update()
    from mrtlab.models import identify
    model = identify(model, cfg, "tiny-conv")
    rgb = np.random.default_rng(0).integers(0, 256, (20, 36, 3), dtype=np.uint8)
    enc = encode(model, rgb)
    out, symbols = decode(model, enc.data)
    assert out.shape == rgb.shape and torch.equal(symbols, enc.symbols)
    assert model.periods() == {"window": 8, "patch": 4}
