"""Two decoders, one bitstream: the coder side and its fingerprint, decoder files beside a
model, choosing one at decode time, bundling one."""
import runpy
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from mrtlab.codec import decode, encode
from mrtlab.errors import MrtlabError
from mrtlab.models.sides import coder_names, decoder_names
from mrtlab.zoo import catalog, identify, list_decoders, load_model, save_model, write_decoder
from mrtlab.zoo import model_files as zoo

from .helpers import TINY, make_tiny, one_error_line, run, smooth_image, traced_encoder_side

ROOT = Path(__file__).resolve().parents[1]


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


@pytest.fixture
def base(tmp_path):
    """A model file of its own (decoders get written beside it) with a realism decoder."""
    weights = save_model(make_tiny(1), TINY, tmp_path / "tiny")
    write_decoder(load_model(str(weights)), weights, fine_tuned(weights), "realism")
    return weights


@pytest.mark.parametrize("section", [
    TINY,
    *(dict(TINY, global_mixer={"class_path": g, "init_args": {"heads": 4}}) for g in ("rwkv7", "mamba2", "gla")),
    dict(TINY, global_mixer={"class_path": "attention", "init_args": {"heads": 2}}, shift_windows=True),
    {"architecture": "cnn2d", "channels": 8},
    {"architecture": "cnn2d", "channels": 8, "tokenizer": {"class_path": "conv_window", "init_args": {
        "patch": 4, "window": 4, "widths": [8], "blocks": [0, 1]}}},
    dict(TINY, global_mixer={"class_path": "identity"}, latent_start="regions", latent_skip=4, per_token_heads=True),
    *({"architecture": name} for name in ("mrt_small", "mrt_patchwise", "mrt_default", "mrt_taef2", "mrt_paper",
                                          "cnn2d_paper")),
])
def test_each_model_declares_its_coder_side_as_the_trace_of_encode_finds_it(section):
    """``coder_modules`` (each model and tokenizer declares its encoder side) names exactly the
    tensors ``encode`` depends on, as a trace finds them on 2×2 windows and on a larger image
    (on one window, RWKV-6's decay weights would be missed)."""
    from mrtlab.config import build_model

    model = build_model(section)
    coder, decoder = coder_names(model), decoder_names(model)
    traced = traced_encoder_side(model)
    assert traced == traced_encoder_side(model, 3 * 2 * model.grid(1, 1).window_px)
    assert {n for n in coder if not n.startswith(("quantizer", "entropy_model"))} == traced
    assert coder | decoder == set(model.state_dict()) and not coder & decoder
    assert {n for n in model.state_dict() if n.startswith("entropy_model.")} <= coder
    assert decoder and all(not n.startswith(("encoder.", "analysis.")) for n in decoder)


def test_the_fingerprint_ignores_the_decoder_and_sees_the_coder(tmp_path):
    weights = save_model(make_tiny(1), TINY, tmp_path / "tiny")
    base = load_model(str(weights))
    assert fine_tuned(weights).fingerprint == base.fingerprint
    assert fine_tuned(weights).decoder_hash != base.decoder_hash
    for part in ("encoder.glob.0.w0", "entropy_model.logits"):  # the trace's and the entropy model's
        other = load_model(str(weights))
        with torch.no_grad():
            other.state_dict(keep_vars=True)[part].add_(1e-3)
        assert identify(other, other.config, "x").fingerprint != base.fingerprint, part
    assert identify(load_model(str(weights)), dict(TINY, dim=32), "x").fingerprint != base.fingerprint


def test_a_decoder_file_holds_only_the_decoder_side_in_half(base):
    model = load_model(str(base))
    state = load_file(str(base.with_name("tiny.decoder-realism.safetensors")))
    assert set(state) == decoder_names(model)
    assert {v.dtype for v in state.values()} == {torch.float16}
    assert list_decoders(str(base)) == ["fidelity", "realism"]


def test_both_decoders_read_one_file(base):
    fidelity, realism = load_model(str(base)), load_model(str(base), "realism")
    assert realism.fingerprint == fidelity.fingerprint
    assert identify(load_model(str(base), "realism"), fidelity.config, "x").fingerprint == fidelity.fingerprint
    assert (fidelity.decoder_name, realism.decoder_name) == ("fidelity", "realism")
    assert realism.decoder_hash != fidelity.decoder_hash
    assert all(p.dtype == torch.float32 for p in realism.parameters())
    data = encode(fidelity, smooth_image(20, 28)).data
    assert encode(realism, smooth_image(20, 28)).data == data    # the same coder: the same file
    a, _ = decode(fidelity, data)
    b, _ = decode(realism, data)
    assert a.shape == b.shape == (20, 28, 3) and not np.array_equal(a, b)
    assert load_model(str(base), "fidelity").decoder_hash == fidelity.decoder_hash


def test_missing_foreign_and_ill_fitting_decoders_are_one_line(base, tmp_path):
    with pytest.raises(MrtlabError, match=r"has no decoder 'sharp' \(it has: fidelity, realism\)$"):
        load_model(str(base), "sharp")
    with pytest.raises(MrtlabError, match="bad decoder name"):
        load_model(str(base), "../default")
    other = save_model(make_tiny(2), TINY, tmp_path / "other" / "tiny")
    shutil.copy(base.with_name("tiny.decoder-realism.safetensors"), other.with_name("tiny.decoder-stale.safetensors"))
    with pytest.raises(MrtlabError, match="trained for coder fingerprint .* stale or misplaced"):
        load_model(str(other), "stale")
    good = load_file(str(base.with_name("tiny.decoder-realism.safetensors")))
    meta = {"coder_fingerprint": load_model(str(base)).fingerprint.hex(), "about": "a test"}
    for name, state in (("short", {k: v for k, v in good.items() if k != "out_norm.weight"}),
                        ("wide", {**good, "out_norm.weight": torch.zeros(5, dtype=torch.float16)}),
                        ("coder", {**good, "entropy_model.logits": torch.zeros(3, 5)})):
        save_file(state, str(base.with_name(f"tiny.decoder-{name}.safetensors")), metadata=meta)
        with pytest.raises(MrtlabError, match=f"decoder '{name}' of model .* does not fit the model's decoder side"):
            load_model(str(base), name)
    base.with_name("tiny.decoder-broken.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(MrtlabError, match="cannot read decoder 'broken'"):
        load_model(str(base), "broken")


def test_write_decoder_refuses_a_foreign_model_and_overwriting(base, tmp_path):
    model = load_model(str(base))
    foreign = load_model(str(save_model(make_tiny(2), TINY, tmp_path / "foreign")))
    with pytest.raises(MrtlabError, match=f"was not fine-tuned from {base}: its coder fingerprint "
                                          f"{foreign.fingerprint.hex()} differs from {model.fingerprint.hex()}"):
        write_decoder(model, base, foreign, "other")
    with pytest.raises(MrtlabError, match="exists; pass --force"):
        write_decoder(model, base, fine_tuned(base, seed=8), "realism")
    with pytest.raises(MrtlabError, match="'fidelity' is the model's own decoder"):
        write_decoder(model, base, fine_tuned(base), "fidelity")
    tuned = fine_tuned(base, seed=8)
    write_decoder(model, base, tuned, "realism", force=True)
    zoo._load_model.cache_clear()
    assert load_model(str(base), "realism").decoder_hash == zoo.decoder_hash(zoo.half_rounded(tuned))


def test_decompress_reports_and_checks_the_decoder(base, tmp_path, capsys):
    from PIL import Image

    Image.fromarray(smooth_image(20, 28)).save(tmp_path / "img.png")
    code, _, err = run(capsys, "compress", tmp_path / "img.png", "-o", tmp_path / "img.mrt", "-m", base)
    assert code == 0, err
    for decoder in ("fidelity", "realism"):
        code, out, err = run(capsys, "decompress", tmp_path / "img.mrt", "-o", tmp_path / f"{decoder}.png",
                             "-m", base, "--decoder", decoder)
        assert code == 0 and f"decoder {decoder}" in out, err
        assert Image.open(tmp_path / f"{decoder}.png").size == (28, 20)
    assert (np.asarray(Image.open(tmp_path / "fidelity.png")) != np.asarray(Image.open(tmp_path / "realism.png"))).any()
    code, _, err = run(capsys, "decompress", tmp_path / "img.mrt", "-o", tmp_path / "x.png", "-m", base,
                       "--decoder", "sharp")
    assert code == 1 and "has no decoder 'sharp' (it has: fidelity, realism)" in one_error_line(err)
    other = save_model(make_tiny(2), TINY, tmp_path / "other")   # another encoder wrote it
    code, _, err = run(capsys, "compress", tmp_path / "img.png", "-o", tmp_path / "other.mrt", "-m", other)
    code, _, err = run(capsys, "decompress", tmp_path / "other.mrt", "-o", tmp_path / "y.png", "-m", base,
                       "--decoder", "realism")
    assert code == 1 and "file was made by another model" in one_error_line(err)


def test_decompress_help_names_the_default_decoder(capsys):
    from mrtlab.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["decompress", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: fidelity)" in out and "entropy model) writes the bits" in out


@pytest.fixture
def bundled(tmp_path, monkeypatch):
    """A bundled folder in tmp_path whose ``default`` is the tiny model."""
    monkeypatch.setattr(catalog, "BUNDLED_DIR", tmp_path / "bundled")
    monkeypatch.setattr(catalog, "BUNDLED", {"default": "the tiny model"})
    zoo._load_model.cache_clear()
    save_model(make_tiny(1), TINY, tmp_path / "bundled" / "default", half=True)
    yield tmp_path / "bundled"
    zoo._load_model.cache_clear()


def test_bundle_decoder_info_and_models(bundled, tmp_path, capsys):
    tool = runpy.run_path(str(ROOT / "tools" / "bundle_model.py"))
    foreign = save_model(make_tiny(2), TINY, tmp_path / "runs" / "foreign" / "model")
    with pytest.raises(SystemExit, match=r"bundle_model: error: .*foreign/model.safetensors was not fine-tuned "
                                         r"from the bundled default: its coder fingerprint \w{8} differs from \w{8}$"):
        tool["main"]([str(foreign), "default", "--decoder", "realism"])
    tuned = fine_tuned(bundled / "default.safetensors")
    stage2 = save_model(tuned, tuned.config, tmp_path / "runs" / "stage2" / "model")
    tool["main"]([str(stage2), "default", "--decoder", "realism"])
    assert "decoder realism" in capsys.readouterr().out
    assert (bundled / "default.decoder-realism.safetensors").is_file()
    with pytest.raises(SystemExit, match="exists; pass --force"):
        tool["main"]([str(stage2), "default", "--decoder", "realism"])

    code, out, _ = run(capsys, "models")
    fidelity, realism = load_model("default"), load_model("default", "realism")
    assert code == 0 and (f"decoders: fidelity {fidelity.decoder_hash}, realism {realism.decoder_hash}"
                          in out.split("\t"))
    data = encode(fidelity, smooth_image(20, 28)).data
    (tmp_path / "a.mrt").write_bytes(data)
    code, out, _ = run(capsys, "info", tmp_path / "a.mrt")
    assert code == 0 and "(bundled model default, decoders fidelity, realism)" in out
    code, out, err = run(capsys, "decompress", tmp_path / "a.mrt", "-o", tmp_path / "a.png", "--decoder", "realism")
    assert code == 0 and "decoder realism" in out, err
    (tmp_path / "b.mrt").write_bytes(encode(load_model(str(foreign)), smooth_image(20, 28)).data)
    code, out, _ = run(capsys, "info", tmp_path / "b.mrt")
    assert code == 0 and "(no bundled model reads it)" in out
    # the model replaced under its decoder: the decoder is refused, the model still listed
    zoo._load_model.cache_clear()
    tool["main"]([str(foreign), "default", "--force"])
    assert "bundle_model: note: decoder 'realism' of model default was trained for coder fingerprint" in \
        capsys.readouterr().err
    code, out, _ = run(capsys, "models")
    assert code == 0 and "decoders: fidelity " in out and "realism (unusable: " in out


def test_eval_names_the_decoder(base, tmp_path, capsys):
    import json

    from PIL import Image

    (tmp_path / "imgs").mkdir()
    Image.fromarray(smooth_image(24, 32)).save(tmp_path / "imgs" / "a.png")
    for decoder, name in ((None, "tiny"), ("realism", "tiny-realism")):
        out = tmp_path / f"{name}.json"
        code, _, err = run(capsys, "eval", "--data", tmp_path / "imgs", "-m", base, "--metrics", "psnr", "-q",
                           "--out", out, *(["--decoder", decoder] if decoder else []))
        assert code == 0, err
        s = json.loads(out.read_text())
        assert s["name"] == name and f"decoder {decoder or 'fidelity'} (" in s["description"]
    code, _, err = run(capsys, "eval", "--data", tmp_path / "imgs", "--baseline", "jpeg", "--decoder", "realism",
                       "--out", tmp_path / "j.json")
    assert code == 1 and "a baseline has none" in one_error_line(err)
