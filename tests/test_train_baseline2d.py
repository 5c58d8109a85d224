"""The 2-D latent baseline: any image size, real coding, the command line, its recipe."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mrtlab.cli import main
from mrtlab.codec import decode, encode
from mrtlab.config import build_model, load_recipe, parse
from mrtlab.entropy import Layout
from mrtlab.models.baseline2d import Baseline2D
from mrtlab.zoo import identify, load_model, save_model

from .helpers import smooth_image

ROOT = Path(__file__).resolve().parents[1]
CNN = {"class_path": "baseline2d", "channels": 8, "downsample": 16,
       "quantizer": {"class_path": "fsq", "init_args": {"levels": [5, 3, 4]}},
       "entropy_model": {"class_path": "factorized"}}


def make_cnn(downsample=16, seed=0):
    torch.manual_seed(seed)
    cfg = dict(CNN, downsample=downsample)
    model = build_model(cfg)
    with torch.no_grad():
        model.entropy_model.logits.normal_()
    model.update()
    return identify(model, cfg, f"cnn{downsample}"), cfg


@pytest.mark.parametrize("downsample", [16, 32])
@pytest.mark.parametrize("hw", [(1, 1), (17, 33), (70, 100)])
def test_roundtrip_any_size(downsample, hw):
    model, _ = make_cnn(downsample)
    assert isinstance(model, Baseline2D) and model.latent_tokens == 1
    grid = model.grid(*hw)
    rows, cols = -(-hw[0] // downsample), -(-hw[1] // downsample)
    assert model.layout(grid) == Layout(1, rows, cols)
    img = smooth_image(*hw)
    enc = encode(model, img)
    assert enc.symbols.shape == (rows * cols, 3)
    out, symbols = decode(model, enc.data)
    assert out.shape == img.shape and torch.equal(symbols, enc.symbols)
    assert np.array_equal(out, model.reconstruct(enc.symbols, grid).permute(1, 2, 0).numpy())


def test_raster_order_of_the_latent():
    model, _ = make_cnn()
    x = torch.rand(1, 3, 48, 64)
    y, grid = model.encode(x)
    fmap = model.analysis(x * 2 - 1)  # 48×64 needs no padding
    assert torch.allclose(y[0, 5], fmap[0, :, 1, 1])  # token 5 = row 1, col 1 of a 3×4 map


def test_compress_decompress_from_the_command_line(tmp_path, astronaut_png):
    model, cfg = make_cnn()
    weights = save_model(model, cfg, tmp_path / "cnn")
    assert main(["compress", str(astronaut_png), "--model", str(weights), "-o", str(tmp_path)]) == 0
    mrt = tmp_path / "astronaut.mrt"
    assert main(["decompress", str(mrt), "--model", str(weights), "-o", str(tmp_path / "a.png")]) == 0
    assert isinstance(load_model(str(weights)), Baseline2D)
    out = np.asarray(Image.open(tmp_path / "a.png"))
    assert out.shape == (512, 512, 3)


def test_recipe_is_cpu_sized_and_comparable_to_mrt():
    cfg = parse(["--config", str(ROOT / "recipes" / "baselines" / "cnn2d.yaml")])
    model = build_model(cfg.model.as_dict())
    assert isinstance(model, Baseline2D)
    bits_per_px = sum(np.log2(model.quantizer.levels)) / model.downsample ** 2
    mrt = load_recipe(ROOT / "recipes" / "mrt" / "cpu.yaml")["model"]
    mrt_bits = mrt["latent_tokens"] * sum(np.log2(mrt["quantizer"]["init_args"]["levels"]))
    window = mrt["tokenizer"]["init_args"]["patch"] * mrt["tokenizer"]["init_args"]["window"]
    assert 0.01 <= bits_per_px <= 0.1
    assert bits_per_px == pytest.approx(mrt_bits / window ** 2, rel=0.05)
    assert sum(p.numel() for p in model.parameters()) < 5e6


def test_variable_rate_baseline_codes_every_prefix_of_slots():
    from mrtlab.codec import codec
    from mrtlab.config import build_model
    from mrtlab.zoo import identify

    cfg = {"class_path": "baseline2d", "channels": 16, "downsample": 16, "latent_tokens": 3,
           "nested_dropout": True,
           "quantizer": {"class_path": "fsq", "init_args": {"levels": [5, 3]}},
           "entropy_model": {"class_path": "rcm", "init_args": {"dim": 16, "max_slots": 3}}}
    torch.manual_seed(0)
    model = identify(build_model(cfg), cfg, "baseline-variable")
    rgb = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    for k in (1, 2, 3):
        enc = codec.encode(model, rgb, k)
        decoded, symbols = codec.decode(model, enc.data)
        assert torch.equal(symbols, enc.symbols) and len(symbols) == k * model.grid(40, 56).windows
    model.train()
    assert {model(torch.rand(1, 3, 32, 32))["tokens"] for _ in range(30)} == {1, 2, 3}
