"""Large photos in bounded memory: a model codes an image above ``strip_pixels`` strip by strip
(window rows with the context their receptive field needs), and gets the same file and the
same pixels as coding it whole. Memory and time at 1–50 MP: ``tools/large_image_bench.py``."""
import numpy as np
import pytest
import torch

from mrtlab.codec import decode, encode
from mrtlab.tokenizers.conv_window import ConvWindowTokenizer
from mrtlab.zoo import load_model

from .helpers import noise_image, smooth_image


def randomised(tokenizer: ConvWindowTokenizer) -> ConvWindowTokenizer:
    """Every weight random (the residual blocks' last convolutions start at zero, which would
    hide a receptive field too small), noise on."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in tokenizer.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    return tokenizer.eval()


@pytest.mark.parametrize("patch,widths,blocks", [(8, (32, 64), (0, 1, 2)), (4, (8,), (2, 2)), (8, (8, 8), (1, 1, 1))])
def test_strips_with_their_halo_are_the_whole_image(patch, widths, blocks):
    tok = randomised(ConvWindowTokenizer(16, patch=patch, window=2, widths=widths, blocks=blocks))
    rgb = noise_image(5 * 2 * patch + 3, 3 * 2 * patch + 5)
    grid = tok.grid(*rgb.shape[:2])
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        whole = tok.tokenize(x)[0]
        strips = torch.cat([tok.tokenize_rows(rgb, grid, a, min(a + 2, grid.windows_h))
                            for a in range(0, grid.windows_h, 2)], dim=1)
        assert torch.allclose(strips, whole, atol=1e-5)
        image = tok.detokenize(whole, grid)
        noise, halo = tok.noise_maps(grid), tok.halo()
        rows = [tok.detokenize_rows(whole[:, max(0, a - halo):a + 2 + halo], grid, max(0, a - halo), a,
                                    min(a + 2, grid.windows_h), noise) for a in range(0, grid.windows_h, 2)]
        assert torch.allclose(torch.cat(rows, dim=2), image, atol=1e-5)
        assert all(n is not None for n in noise)    # the noise of the whole image, sliced


@pytest.mark.parametrize("decoder", ["fidelity", "realism"])
def test_the_bundled_default_codes_a_large_image_in_strips_bit_for_bit(decoder):
    model = load_model("default", decoder)
    rgb = np.concatenate([smooth_image(300, 700, seed=1), noise_image(160, 700)], axis=0)
    whole = {k: encode(model, rgb, k) for k in (1, 4)}
    pixels = {k: decode(model, whole[k].data)[0] for k in (1, 4)}
    model.strip_pixels, model.strip_area = 0, 60_000   # strips of 2 window rows
    assert model.in_strips(*rgb.shape[:2]) and len(model.strips(model.grid(*rgb.shape[:2]))) == 8
    for k in (1, 4):
        assert encode(model, rgb, k).data == whole[k].data
        assert np.array_equal(decode(model, whole[k].data)[0], pixels[k])


def test_a_model_with_shifted_windows_codes_whole():
    from mrtlab.config import build_model

    model = build_model({"architecture": "mrt_default", "shift_windows": True})
    model.strip_pixels = 0
    assert not model.in_strips(64, 64)


def test_latent_grids_mixed_one_at_a_time_differ_by_rounding_at_most():
    """Beyond ``SLOT_BATCH_BYTES`` (about 16 MP) the global mixers take one latent grid at a
    time: the same file here, and decoded pixels within one level of the batched path's."""
    model = load_model("default")
    rgb = np.concatenate([smooth_image(300, 700, seed=2), noise_image(160, 700, seed=3)], axis=0)
    data = encode(model, rgb, 4).data
    whole, _ = decode(model, data)
    model.strip_pixels, model.strip_area, model.encoder.SLOT_BATCH_BYTES = 0, 60_000, 0
    model.decoder.SLOT_BATCH_BYTES = 0
    assert encode(model, rgb, 4).data == data
    strips, _ = decode(model, data)
    diff = np.abs(strips.astype(int) - whole)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
