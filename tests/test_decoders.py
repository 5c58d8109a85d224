"""Two decoders, one bitstream: the coder side and its fingerprint."""
from pathlib import Path

import pytest
import torch

from mrtlab import create_model
from mrtlab.models import identify, load_model, save_model
from mrtlab.models.sides import coder_names, decoder_names, encoder_side, trace_size

from .helpers import TINY, make_tiny


def fine_tuned(base_file: Path, seed: int = 7):
    """The model of ``base_file`` with every decoder-side weight changed (what stage 2 makes),
    identified afresh: its fingerprint is computed, not copied."""
    model = load_model(str(base_file))
    names = decoder_names(model)
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict(keep_vars=True).items():
            if name in names:
                t.add_(0.05 * torch.randn_like(t))
    return identify(model, model.config, "runs/tuned/model.safetensors")


@pytest.mark.parametrize("section", [
    TINY,
    *(dict(TINY, global_mixer={"class_path": g, "init_args": {"heads": 4}}) for g in ("rwkv7", "mamba2", "gla")),
    dict(TINY, global_mixer={"class_path": "attention", "init_args": {"heads": 2}}, shift_windows=True),
    {"architecture": "cnn2d", "channels": 8},
    {"architecture": "cnn2d", "channels": 8, "tokenizer": {"class_path": "conv_window", "init_args": {
        "patch": 4, "window": 4, "widths": [8], "blocks": [0, 1]}}},
])
def test_the_coder_side_is_found_on_2x2_windows(section):
    """What the trace finds on 2×2 windows is what it finds on a larger image (on one window,
    RWKV-6's decay weights would be missed); frozen weights count as much as trained ones."""
    from mrtlab.config import build_model

    model = build_model(section)
    model.requires_grad_(False)
    small, large = encoder_side(model), encoder_side(model, 3 * trace_size(model))
    assert {id(t) for t in small} == {id(t) for t in large}
    assert not any(p.requires_grad for p in model.parameters())
    coder, decoder = coder_names(model), decoder_names(model)
    assert coder | decoder == set(model.state_dict()) and not coder & decoder
    assert {n for n in model.state_dict() if n.startswith("entropy_model.")} <= coder
    assert decoder and all(not n.startswith(("encoder.", "analysis.")) for n in decoder)


def test_tracing_leaves_modes_and_random_state_alone():
    model = create_model("mrt_tiny").train()
    model.entropy_model.eval()
    torch.manual_seed(0)
    expect = torch.rand(3)
    torch.manual_seed(0)
    encoder_side(model)
    assert torch.equal(torch.rand(3), expect)
    assert model.training and model.decoder.training and not model.entropy_model.training


def test_the_fingerprint_ignores_the_decoder_and_sees_the_coder(tmp_path):
    weights = save_model(make_tiny(1), TINY, tmp_path / "tiny")
    base = load_model(str(weights))
    assert fine_tuned(weights).fingerprint == base.fingerprint
    for part in ("encoder.glob.0.w0", "entropy_model.logits"):  # the trace's and the entropy model's
        other = load_model(str(weights))
        with torch.no_grad():
            other.state_dict(keep_vars=True)[part].add_(1e-3)
        assert identify(other, other.config, "x").fingerprint != base.fingerprint, part
    assert identify(load_model(str(weights)), dict(TINY, dim=32), "x").fingerprint != base.fingerprint
