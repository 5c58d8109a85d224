"""Tokenizers: shapes for any image size, and a synthesis whose pixels depend on the tokens of
neighbouring windows (the convolutional one), so that windows cannot show as a mosaic."""
import numpy as np
import pytest
import torch

from mrtlab.codec import decode, encode
from mrtlab.config import build_model
from mrtlab.errors import MrtlabError
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


def unzero(module):
    """Random weights where the init puts zeros (the last layers of residual branches)."""
    for p in module.parameters():
        if p.dim() > 1 and not p.abs().sum():
            torch.nn.init.normal_(p, std=0.1)
    return module


def test_the_convolutional_synthesis_crosses_window_boundaries():
    toks = {name: unzero(tok) for name, tok in tokenizers().items()}
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
    from mrtlab.zoo import identify
    model = identify(model, cfg, "tiny-conv")
    rgb = np.random.default_rng(0).integers(0, 256, (20, 36, 3), dtype=np.uint8)
    enc = encode(model, rgb)
    out, symbols = decode(model, enc.data)
    assert out.shape == rgb.shape and torch.equal(symbols, enc.symbols)
    assert model.periods() == {"window": 8, "patch": 4}


def test_the_2d_baseline_shares_the_stem_and_synthesis():
    """A 2-D latent on MRT's tokenizer: cells tile the windows, files round-trip, and the
    tokenizer's weights are the same tensors in both models' layouts."""
    tok = {"class_path": "conv_window", "init_args": {"patch": 4, "window": 2, "widths": [8], "blocks": [0, 1]}}
    cfg = {"class_path": "baseline2d", "channels": 32, "downsample": 16, "latent_tokens": 2, "nested_dropout": True,
           "tokenizer": tok, "quantizer": {"class_path": "fsq", "init_args": {"levels": [5, 3, 4]}},
           "entropy_model": {"class_path": "factorized"}}
    with pytest.raises(MrtlabError, match="must tile"):
        build_model(dict(cfg, downsample=32))                           # 32-px cells, 8-px windows
    cfg["tokenizer"] = dict(tok, init_args=dict(tok["init_args"], window=4))   # 16-px windows
    torch.manual_seed(0)
    model = build_model(cfg)
    model.update()
    from mrtlab.zoo import identify
    model = identify(model, cfg, "tiny-2d")
    assert model.grid(20, 36).windows_h == 2 and model.grid(20, 36).windows_w == 3
    assert model.periods() == {"cell": 16, "patch": 4}
    mrt = build_model(dict(TINY, tokenizer=cfg["tokenizer"], dim=32))
    assert {k: v.shape for k, v in model.tokenizer.state_dict().items()} == \
        {k: v.shape for k, v in mrt.tokenizer.state_dict().items()}
    assert model.latent_tokens == 2
    rgb = np.random.default_rng(0).integers(0, 256, (20, 36, 3), dtype=np.uint8)
    for k in (1, 2):
        enc = encode(model, rgb, k)
        out, symbols = decode(model, enc.data)
        assert out.shape == rgb.shape and torch.equal(symbols, enc.symbols)


def test_shifted_windows_mix_patch_tokens_across_windows():
    from mrtlab.mixers import IdentityMixer, TransformerBlock
    from mrtlab.models.mrt import MixerStack

    def local(d):
        return TransformerBlock(d, heads=2)
    torch.manual_seed(0)
    stack = unzero(MixerStack(2, 16, local, IdentityMixer, 1, shift=True))
    x = torch.randn(1, 2, 3, 4 + 1, 16)            # 2×3 windows of 2×2 patch tokens + 1 latent
    y = stack(x)
    bumped = x.clone()
    bumped[0, 0, 0, 3] += torch.randn(16)           # the last patch token of the top-left window
    changed = (stack(bumped) - y).abs().sum(-1)[0] > 1e-6
    assert changed[1, 0, 1] and changed[0, 1, 2] and changed[1, 1, 0]   # below, right, diagonal
    assert not changed[1, 2].any() and not changed[0, 2].any()          # windows it does not touch
    unshifted = MixerStack(2, 16, local, IdentityMixer, 1)
    unshifted.load_state_dict(stack.state_dict())
    assert not ((unshifted(bumped) - unshifted(x)).abs().sum(-1)[0, 0, 1:] > 1e-6).any()


CONV = {"class_path": "conv_window", "init_args": {"patch": 4, "window": 2, "widths": [8], "blocks": [0, 1]}}


def test_the_synthesis_noise_is_off_until_trained_and_then_the_same_at_every_decode(tmp_path):
    """Zero strengths (every model trained without noise, and files saved before it existed)
    decode as without noise; trained strengths draw the same noise at every decode."""
    from safetensors.torch import load_file, save_file

    from mrtlab.zoo import load_model, save_model

    torch.manual_seed(0)
    model = build_model(dict(TINY, tokenizer=CONV))
    model.update()
    path = save_model(model, dict(TINY, tokenizer=CONV), tmp_path / "m")
    old = {k: v for k, v in load_file(str(path)).items() if ".noise." not in k}
    assert len(old) < len(load_file(str(path)))
    save_file(old, str(path))                                   # a file from before the noise
    model = load_model(str(path))
    rgb = np.random.default_rng(0).integers(0, 256, (20, 36, 3), dtype=np.uint8)
    data = encode(model, rgb).data
    plain, _ = decode(model, data)
    drawn = []
    for injection in model.tokenizer.noise:
        injection.register_forward_hook(lambda m, i, o: drawn.append(not torch.equal(i[0], o)))
    assert np.array_equal(decode(model, data)[0], plain) and not any(drawn)
    for injection in model.tokenizer.noise:
        injection.strength.data.fill_(0.005)
    noisy, _ = decode(model, data)
    assert not np.array_equal(noisy, plain) and np.array_equal(decode(model, data)[0], noisy)


def test_decoder_noise_trains_the_noise_strengths(tmp_path):
    from safetensors.torch import load_file

    from mrtlab.train import train

    from .helpers import image_folder, tiny_train

    cfg = dict(TINY, tokenizer=CONV)
    folder = image_folder(tmp_path / "img")
    torch.manual_seed(0)
    out = train(build_model(cfg), cfg, tiny_train(tmp_path / "run", folder, steps=3, lr=1e-2,
                                                  decoder_noise=True))
    strengths = [v for k, v in load_file(str(out)).items() if k.startswith("tokenizer.noise.")]
    assert strengths and all(s.abs().sum() > 0 for s in strengths)
    torch.manual_seed(0)
    with pytest.raises(MrtlabError, match="train.decoder_noise: this model's decoder adds no noise"):
        train(build_model(TINY), TINY, tiny_train(tmp_path / "plain", folder, steps=1, decoder_noise=True))
