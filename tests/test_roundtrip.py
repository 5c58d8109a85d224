"""Real files: the decoder gets back the encoder's symbols and the model's own image."""
import numpy as np
import pytest
import torch

from mrtlab.codec import decode, encode, pack, unpack
from mrtlab.codec.container import Header
from mrtlab.zoo import load_model

from .helpers import noise_image, smooth_image


@pytest.mark.parametrize("hw", [(1, 1), (17, 33), (64, 48), (513, 769)])
def test_roundtrip_symbols_and_pixels(tiny_model, hw):
    rgb = smooth_image(*hw)
    enc = encode(tiny_model, rgb)
    out, symbols = decode(tiny_model, enc.data)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert torch.equal(symbols, enc.symbols)
    grid = tiny_model.tokenizer.grid(*hw)
    own = tiny_model.reconstruct(enc.symbols, grid).permute(1, 2, 0).numpy()
    assert np.array_equal(out, own)


def test_roundtrip_with_other_thread_count(tiny_model):
    rgb = noise_image(40, 70)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        enc = encode(tiny_model, rgb)
        torch.set_num_threads(1)
        _, symbols = decode(tiny_model, enc.data)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(symbols, enc.symbols)


def test_payload_close_to_estimate(tiny_model):
    enc = encode(tiny_model, smooth_image(256, 256))
    payload_bits = 8 * (enc.bytes - 16)
    # the range coder adds at most a few 32-bit words to the ideal code length
    assert enc.estimated_bits - 1 <= payload_bits <= enc.estimated_bits * 1.01 + 96


def test_container_roundtrip_and_header_size():
    h = Header(b"\x01\x02\x03\x04", 512, 768, 4)
    data = pack(h, b"\xaa" * 12)
    assert len(data) == 16 + 12
    assert unpack(data) == (h, b"\xaa" * 12)


def test_bundled_model_astronaut_rate(astronaut_png):
    from PIL import Image
    model = load_model()  # the bundled default
    rgb = np.asarray(Image.open(astronaut_png))
    sizes = []
    for k in (1, 4):
        enc = encode(model, rgb, tokens=k)
        sizes.append(enc.bytes)
        out, symbols = decode(model, enc.data)
        assert out.shape == (512, 512, 3) and torch.equal(symbols, enc.symbols)
    assert sizes[0] < sizes[1] and 8 * sizes[1] / rgb.shape[0] / rgb.shape[1] <= 0.06


def variable_rate_model(**overrides):
    from mrtlab.config import build_model
    from mrtlab.zoo import identify

    from .helpers import TINY
    cfg = dict(TINY, nested_dropout=True, latent_tokens=3,
               entropy_model={"class_path": "rcm", "init_args": {"dim": 16, "max_slots": 3}}, **overrides)
    torch.manual_seed(0)
    return identify(build_model(cfg), cfg, "tiny-variable")


@pytest.mark.parametrize("per_token_heads", [False, True])
def test_variable_rate_model_codes_every_prefix_of_tokens(per_token_heads):
    from mrtlab.codec import codec
    model = variable_rate_model(per_token_heads=per_token_heads)
    rgb = smooth_image(40, 56)
    sizes = []
    for k in (1, 2, 3):
        enc = codec.encode(model, rgb, k)
        assert codec.read_header(enc.data).tokens == k
        decoded, symbols = codec.decode(model, enc.data)
        assert torch.equal(symbols, enc.symbols) and symbols.shape[0] == k * model.grid(40, 56).windows
        assert np.array_equal(decoded, model.reconstruct(symbols, model.grid(40, 56)).permute(1, 2, 0).numpy())
        sizes.append(enc.bytes)
    assert sizes[0] < sizes[2]
    enc, reached = codec.encode_at_bpp(model, rgb, 8 * sizes[1] / (40 * 56))
    assert reached and codec.read_header(enc.data).tokens >= 2
    enc, reached = codec.encode_at_bpp(model, rgb, 1e-4)
    assert not reached and codec.read_header(enc.data).tokens == 1


def test_nested_dropout_draws_every_prefix_in_training():
    model = variable_rate_model().train()
    x = torch.rand(1, 3, 16, 16)
    seen = {model(x)["tokens"] for _ in range(30)}
    assert seen == {1, 2, 3}
    out = model(x, tokens=2)
    assert out["symbols"].shape[1] == 2 * model.grid(16, 16).windows


def test_fixed_rate_model_refuses_fewer_tokens(tiny_model):
    from mrtlab.codec import codec
    from mrtlab.errors import MrtlabError
    with pytest.raises(MrtlabError, match="fixed rate"):
        codec.encode(tiny_model, smooth_image(16, 16), 1)
    with pytest.raises(MrtlabError, match="variable-rate"):
        codec.encode_at_bpp(tiny_model, smooth_image(16, 16), 0.1)


def test_model_saved_in_half_precision_loads_and_codes(tmp_path):
    from mrtlab.zoo import save_model
    from mrtlab.zoo.model_files import load_model

    from .helpers import TINY, make_tiny
    model = make_tiny(3)
    full = save_model(model, TINY, tmp_path / "full")
    half = save_model(model, TINY, tmp_path / "half", half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded = load_model(str(half))
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    rgb = smooth_image(24, 40)
    enc = encode(loaded, rgb)
    decoded, symbols = decode(load_model(str(half)), enc.data)
    assert torch.equal(symbols, enc.symbols)
