"""The training loop: exact resume, both stages, alignment, validation, logs, recipes."""
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mrtlab.cli import main
from mrtlab.codec import encode
from mrtlab.config import build_model, parse
from mrtlab.entropy import Layout
from mrtlab.errors import MrtlabError
from mrtlab.train import data as train_data
from mrtlab.train import train
from mrtlab.train.align import regroup
from mrtlab.zoo import load_model, save_model
from mrtlab.zoo.catalog import trained_of

from .helpers import TINY, image_folder, read_log, tiny_train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return image_folder(tmp_path_factory.mktemp("train"))


def fresh(cfg=TINY, seed=0):
    torch.manual_seed(seed)
    return build_model(cfg)


def losses(out):
    return {r["step"]: r["loss"] for r in read_log(out) if "loss" in r}


def test_resume_continues_exactly(tmp_path, folder, monkeypatch):
    kw = dict(steps=6, save_every=3, rate_weight=0.5, ema=0.9, grad_accum=2)
    train(fresh(), TINY, tiny_train(tmp_path / "a", folder, **kw))
    # the same run, killed while fetching step 5's data, then restarted
    get = train_data.RandomCrops.__getitem__

    def crash(self, i):
        if i >= 4 * 2 * 2:
            raise KeyboardInterrupt
        return get(self, i)
    monkeypatch.setattr(train_data.RandomCrops, "__getitem__", crash)
    with pytest.raises(KeyboardInterrupt):
        train(fresh(), TINY, tiny_train(tmp_path / "b", folder, **kw))
    monkeypatch.setattr(train_data.RandomCrops, "__getitem__", get)
    assert max(losses(tmp_path / "b")) == 4
    train(fresh(seed=1), TINY, tiny_train(tmp_path / "b", folder, **kw))  # weights come from state/
    assert [r["step"] for r in read_log(tmp_path / "b")] == [1, 2, 3, 4, 5, 6]
    assert losses(tmp_path / "b") == losses(tmp_path / "a")  # bit for bit
    assert (tmp_path / "a/model.safetensors").read_bytes() == (tmp_path / "b/model.safetensors").read_bytes()


def test_resume_uses_state_old_and_ignores_a_partial_save(tmp_path, folder):
    cfg = tiny_train(tmp_path, folder, steps=2, save_every=2)
    train(fresh(), TINY, cfg)
    (tmp_path / "state").rename(tmp_path / "state.old")       # crash between the renames
    (tmp_path / "state.tmp").mkdir()                           # and a save cut short
    (tmp_path / "state.tmp" / "model.safetensors").write_bytes(b"partial")
    cfg.steps = 3
    train(fresh(seed=5), TINY, cfg)
    assert [r["step"] for r in read_log(tmp_path)] == [1, 2, 3]
    assert json.loads((tmp_path / "state" / "step.json").read_text())["step"] == 3
    assert not (tmp_path / "state.tmp").exists() and not (tmp_path / "state.old").exists()


def test_stage2_keeps_the_bitstream(tmp_path, folder, astronaut_png, tiny_model_file, perceptual_weights):
    """Stage 2 leaves every coder-side byte (encoder side, quantizer, entropy model) as it
    was: a file of the stage-1 model decodes with the stage-2 decoder, which becomes a
    decoder file beside the stage-1 model."""
    import shutil

    import numpy as np
    from safetensors import safe_open

    from mrtlab.codec import decode, load_rgb
    from mrtlab.models.sides import coder_names
    from mrtlab.zoo import write_decoder

    init = tmp_path / "s1" / "model.safetensors"   # a copy: a decoder file is written beside it
    init.parent.mkdir()
    shutil.copy(tiny_model_file, init)
    shutil.copy(tiny_model_file.with_suffix(".yaml"), init.with_suffix(".yaml"))
    cfg = tiny_train(tmp_path / "s2", folder, stage=2, init=str(init), steps=3, ema=0.5,
                     mse=1.0, msssim=0.5, lpips=0.5, adv=0.1, adv_start=1, lr=1e-2,
                     perceptual_weights=str(perceptual_weights))
    # the recipe written otherwise, for the same model: the export keeps the stage-1 section
    trained = train(fresh(seed=3), dict(TINY, dim=32), cfg)
    before, after = load_model(str(init)), load_model(str(trained))
    rgb, _ = load_rgb(astronaut_png)
    a, b = encode(before, rgb[:100, :120]), encode(after, rgb[:100, :120])
    assert torch.equal(a.symbols, b.symbols) and a.data == b.data
    assert after.fingerprint == before.fingerprint
    w0, w1 = load_file(str(init)), load_file(str(trained))
    assert {"entropy_model.logits", "entropy_model.pmf"} <= coder_names(before)
    assert all(torch.equal(w0[n], w1[n]) for n in coder_names(before))
    assert any(not torch.equal(w0[n], w1[n]) for n in w0 if n.startswith("decoder."))
    fidelity, _ = decode(before, a.data)
    realism, _ = decode(after, a.data)
    assert fidelity.shape == realism.shape == (100, 120, 3) and not np.array_equal(fidelity, realism)
    write_decoder(before, init, after, "realism")
    with safe_open(str(init.with_name("model.decoder-realism.safetensors")), "pt") as f:
        meta = f.metadata()   # what reads it, and what trained it
    assert meta["coder_fingerprint"] == before.fingerprint.hex() and json.loads(meta["training"])["lpips"] == 0.5
    bundled, _ = decode(load_model(str(init), "realism"), a.data)   # float16: within a level or two
    assert np.abs(bundled.astype(int) - realism).mean() < 1
    row = read_log(tmp_path / "s2")[-1]
    assert {"mse", "msssim", "lpips", "adv", "d_loss", "bpp"} <= row.keys()


def test_stage2_needs_a_stage1_model(tmp_path, folder):
    with pytest.raises(MrtlabError, match="train.init"):
        train(fresh(), TINY, tiny_train(tmp_path, folder, stage=2))


def test_regroup_puts_a_2d_latent_into_windows():
    t = torch.arange(4 * 6).reshape(1, 24, 1)        # a 4×6 map in raster order
    w = regroup(t, Layout(1, 4, 6), Layout(4, 2, 3))  # → 2×3 windows of 2×2 cells
    assert w[0, :4, 0].tolist() == [0, 1, 6, 7] and w[0, 4:8, 0].tolist() == [2, 3, 8, 9]
    with pytest.raises(MrtlabError, match="cannot be aligned"):
        regroup(t, Layout(1, 4, 6), Layout(2, 2, 3))


def test_alignment_to_a_2d_teacher(tmp_path, folder):
    """A 2-D baseline at 16× teaches an MRT student with 32-px windows of 4 tokens."""
    from mrtlab.train.align import Teacher

    levels = {"class_path": "fsq", "init_args": {"levels": [5, 5]}}
    teacher_cfg = {"class_path": "baseline2d", "channels": 8, "quantizer": levels,
                   "entropy_model": {"class_path": "factorized"}}
    teacher = fresh(teacher_cfg)
    with torch.no_grad():
        teacher.analysis[-1].weight.mul_(30)  # symbols spread over all five levels
    teacher = save_model(teacher, teacher_cfg, tmp_path / "teacher")
    student_cfg = dict(TINY, latent_tokens=4, quantizer=levels,
                       tokenizer={"class_path": "patch_window", "init_args": {"patch": 8, "window": 4}})
    crops = torch.stack([train_data.RandomCrops(folder, 64, seed=9)[i] for i in range(8)])

    @torch.no_grad()
    def misfit(student):  # the alignment loss of evaluation-mode symbols on fixed crops
        student.eval()
        q = student.quantizer(student.encode(crops)[0])
        return float(Teacher(str(teacher), student, 64, "cpu").loss(q, crops, 4))
    cfg = tiny_train(tmp_path / "s", folder, crop=64, steps=20, lr=3e-3, mse=0.0,
                     teacher=str(teacher), align=1.0)
    before = misfit(fresh(student_cfg))
    after = misfit(load_model(str(train(fresh(student_cfg), student_cfg, cfg))))
    assert after < 0.5 * before


def test_validation_reports_the_real_file_size(tmp_path, folder):
    cfg = tiny_train(tmp_path, folder, steps=2, val_data=str(folder), val_every=2, val_images=1,
                     tensorboard=True)
    path = train(fresh(), TINY, cfg)
    val = [r for r in read_log(tmp_path) if "val_bpp" in r]
    assert [r["step"] for r in val] == [2]
    rgb = train_data.validation_images(folder, 1)[0][1]
    enc = encode(load_model(str(path)), rgb)
    assert val[0]["val_bpp"] == pytest.approx(8 * enc.bytes / (rgb.shape[0] * rgb.shape[1]))
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    row = read_log(tmp_path)[0]
    assert {"step", "loss", "mse", "psnr", "bpp", "lr", "crops_per_s"} <= row.keys()


@pytest.mark.parametrize("recipe", sorted(p for p in (ROOT / "recipes" / "ablations").glob("*.yaml")
                                         if not p.name.endswith(".grid.yaml")), ids=lambda p: p.stem)
def test_ablation_recipes_train_through_the_loop(recipe, tmp_path, folder):
    cfg = parse(["--config", str(recipe), "--train.data", str(folder), "--train.crop", "32",
                 "--train.batch_size", "1", "--train.steps", "1", "--train.out", str(tmp_path),
                 "--train.tensorboard", "false"])
    model_cfg = cfg.model.as_dict()
    train(build_model(model_cfg), model_cfg, cfg.train)
    assert (tmp_path / "model.safetensors").is_file() and len(read_log(tmp_path)) == 1


def test_train_command_with_the_2d_baseline(tmp_path, folder, astronaut_png):
    out = tmp_path / "run"
    assert main(["train", "--config", str(ROOT / "recipes" / "baselines" / "cnn2d.yaml"),
                 "--train.data", str(folder), "--train.val_data", "", "--train.crop", "32",
                 "--train.batch_size", "1", "--train.steps", "2", "--train.out", str(out),
                 "--model.channels", "8", "--model.entropy_model", "factorized",
                 "--train.tensorboard", "false"]) == 0
    assert load_model(str(out / "model.safetensors")).__class__.__name__ == "Baseline2D"
    assert main(["compress", str(astronaut_png), "--model", str(out / "model.safetensors"),
                 "-o", str(tmp_path)]) == 0


def test_init_from_a_run_or_its_checkpoint(tmp_path, folder):
    from mrtlab.train.stages import load_init

    train(fresh(), TINY, tiny_train(tmp_path, folder, steps=1))
    exported = load_file(str(tmp_path / "model.safetensors"))
    for source in (tmp_path, tmp_path / "state", tmp_path / "model.safetensors"):
        model = fresh(seed=7)
        load_init(model, source)
        assert all(torch.equal(p, exported[n]) for n, p in model.named_parameters())
    with pytest.raises(MrtlabError, match="cannot read initial weights"):
        load_init(fresh(), tmp_path / "nothing.safetensors")
    with pytest.raises(MrtlabError, match="initial weights .* do not fit the recipe's model"):
        load_init(fresh(dict(TINY, dim=16)), tmp_path)


def test_warm_start_loads_what_fits_and_leaves_the_rest_fresh(tmp_path, folder):
    from mrtlab.train.stages import load_init

    train(fresh(), TINY, tiny_train(tmp_path, folder, steps=1))
    exported = load_file(str(tmp_path / "model.safetensors"))
    variable = dict(TINY, nested_dropout=True,
                    entropy_model={"class_path": "rcm", "init_args": {"dim": 16, "max_slots": 2}})
    with pytest.raises(MrtlabError, match="do not fit"):  # strict unless asked
        load_init(fresh(variable), tmp_path)
    model, before = fresh(variable, seed=7), fresh(variable, seed=7).state_dict()
    left = load_init(model, tmp_path, partial=True)
    for n, p in model.state_dict().items():
        assert torch.equal(p, exported[n] if n in exported else before[n]), n
    assert {n.split(".")[0] for n in left} == {"dropped_token", "entropy_model"}


def test_warm_start_through_the_loop(tmp_path, folder, capsys):
    train(fresh(), TINY, tiny_train(tmp_path / "a", folder, steps=1))
    variable = dict(TINY, nested_dropout=True)
    train(fresh(variable), variable, tiny_train(tmp_path / "b", folder, steps=1, init=str(tmp_path / "a"),
                                                init_partial=True))
    assert "1 tensors start fresh (dropped_token)" in capsys.readouterr().err
    for bad in (dict(init=""), dict(init=str(tmp_path / "a"), stage=2)):
        with pytest.raises(MrtlabError, match="init_partial is a stage-1 warm start"):
            train(fresh(variable), variable, tiny_train(tmp_path / "c", folder, init_partial=True, **bad))


def test_training_data_comes_from_the_recipe(tmp_path):
    """The library has no image folder of its own (no machine-specific default)."""
    from mrtlab.train import TrainConfig

    assert TrainConfig().data == ""
    with pytest.raises(MrtlabError, match="train.data is not set"):
        train(fresh(), TINY, TrainConfig(out=str(tmp_path)))


def test_export_holds_the_ema_weights(tmp_path, folder):
    model = fresh()
    train(model, TINY, tiny_train(tmp_path, folder, steps=3, ema=0.9))
    exported = load_file(str(tmp_path / "model.safetensors"))
    raw = {k.removeprefix("codec."): v for k, v in load_file(str(tmp_path / "state" / "model.safetensors")).items()}
    assert all(torch.equal(p, raw[n]) for n, p in model.named_parameters())  # the state: raw weights
    moved = [n for n, _ in model.named_parameters() if not torch.equal(exported[n], raw[n])]
    assert moved  # the export is the EMA, not the last raw weights


def test_the_export_says_how_far_it_was_trained(tmp_path, folder):
    train(fresh(), TINY, tiny_train(tmp_path, folder, steps=3))
    trained = trained_of(tmp_path / "model.safetensors")
    assert trained["step"] == 3 and trained["cpu_s"] >= 0


def test_a_checkpoint_of_another_recipe_is_a_clear_error(tmp_path, folder):
    train(fresh(), TINY, tiny_train(tmp_path, folder, steps=1))
    with pytest.raises(MrtlabError, match=r"does not fit this recipe \(changed: steps 1 → 2, adv 0.0 → 0.1;"):
        train(fresh(), TINY, tiny_train(tmp_path, folder, steps=2, adv=0.1))


def test_resume_with_changed_settings_is_one_note(tmp_path, folder, capsys):
    train(fresh(), TINY, tiny_train(tmp_path, folder, steps=2))
    capsys.readouterr()
    train(fresh(), TINY, tiny_train(tmp_path, folder, steps=3, lr=1e-3, msssim=0.5))
    notes = [line for line in capsys.readouterr().err.splitlines()
             if "note:" in line and "mixed precision" not in line]
    assert notes == [f"mrtlab: note: resuming {tmp_path} with changed settings: "
                     "steps 2 → 3, lr 0.0006 → 0.001, msssim 0.0 → 0.5"]
    assert [r["step"] for r in read_log(tmp_path)] == [1, 2, 3]
    train(fresh(), TINY, tiny_train(tmp_path, folder, steps=3, lr=1e-3, msssim=0.5))  # nothing changed
    assert "resuming" not in capsys.readouterr().err


def test_a_leftover_state_old_does_not_stop_saving(tmp_path, folder):
    import shutil

    cfg = tiny_train(tmp_path, folder, steps=2, save_every=1)
    train(fresh(), TINY, cfg)
    shutil.copytree(tmp_path / "state", tmp_path / "state.old")  # a kill while removing state.old
    cfg.steps = 4
    train(fresh(), TINY, cfg)
    assert json.loads((tmp_path / "state" / "step.json").read_text())["step"] == 4
    assert not (tmp_path / "state.old").exists()


def test_a_fresh_run_never_overwrites_another_run(tmp_path, folder):
    import shutil

    train(fresh(), TINY, tiny_train(tmp_path, folder, steps=1))
    shutil.rmtree(tmp_path / "state")  # nothing to resume, but a log and a model
    log, model = (tmp_path / "log.jsonl").read_bytes(), (tmp_path / "model.safetensors").read_bytes()
    with pytest.raises(MrtlabError) as e:
        train(fresh(), TINY, tiny_train(tmp_path, folder, steps=2))
    assert str(tmp_path) in str(e.value) and "another --train.out" in str(e.value)
    assert "\n" not in str(e.value)
    assert (tmp_path / "log.jsonl").read_bytes() == log
    assert (tmp_path / "model.safetensors").read_bytes() == model
    train(fresh(), TINY, tiny_train(tmp_path, folder, steps=2, force=True))
    assert [r["step"] for r in read_log(tmp_path)] == [1, 2]


def test_fp16_with_an_adversarial_loss_is_refused(tmp_path, folder):
    with pytest.raises(MrtlabError, match="fp16 .* use bf16"):
        train(fresh(), TINY, tiny_train(tmp_path, folder, mixed_precision="fp16", adv=0.1))


def test_logs_are_closed_when_training_fails(tmp_path, folder, monkeypatch):
    from mrtlab.train import loop

    opened = []

    class Spy(loop.TrainLog):
        def __init__(self, *args):
            super().__init__(*args)
            opened.append(self)
    monkeypatch.setattr(loop, "TrainLog", Spy)
    monkeypatch.setattr(train_data.RandomCrops, "__getitem__", lambda self, i: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        train(fresh(), TINY, tiny_train(tmp_path, folder, tensorboard=True))
    assert opened[0].file.closed and opened[0].tb.all_writers is None


def test_a_log_row_cut_short_does_not_stop_resume(tmp_path, folder):
    cfg = tiny_train(tmp_path, folder, steps=2, save_every=2)
    train(fresh(), TINY, cfg)
    with (tmp_path / "log.jsonl").open("a") as f:
        f.write('{"step": 3, "loss": 0.0')  # killed in the middle of a write
    cfg.steps = 3
    train(fresh(), TINY, cfg)
    assert [r["step"] for r in read_log(tmp_path)] == [1, 2, 3]


def test_the_teacher_codes_in_fp32_under_autocast(tiny_model_file, monkeypatch):
    from mrtlab.train.align import Teacher

    teacher = Teacher(str(tiny_model_file), fresh(), 32, "cpu")
    encode, seen = teacher.model.encode, []

    def spy(x):
        seen.append((torch.is_autocast_enabled("cpu"), x.dtype))
        return encode(x)
    monkeypatch.setattr(teacher.model, "encode", spy)
    x = torch.rand(2, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        t = teacher.targets(x)
    assert seen == [(False, torch.float32)]
    assert torch.equal(t, teacher.targets(x))


def test_stage2_runs_the_frozen_side_in_evaluation_mode():
    from mrtlab.train.stages import CodecStep, freeze_coder

    model = fresh()
    freeze_coder(model)
    step = CodecStep(model, 2, False).train()
    out = step(torch.rand(1, 3, 16, 16))
    assert not any(m.training for m in (model.encoder, model.to_latent, model.tokenizer.embed, model.quantizer,
                                        model.entropy_model))
    assert model.decoder.training and not model.entropy_model.logits.requires_grad
    assert "em_bits" not in out and not out["coded_bits"].requires_grad


def test_nested_dropout_starts_after_its_step(tmp_path, folder):
    """``nested_dropout_start``: the first steps keep every token, then k is drawn."""
    variable = dict(TINY, nested_dropout=True)
    model = fresh(variable)
    drawn = []
    draw = model.training_tokens
    model.training_tokens = lambda: drawn.append(draw()) or drawn[-1]
    train(model, variable, tiny_train(tmp_path, folder, steps=5, nested_dropout_start=3))
    assert len(drawn) == 2  # steps 4 and 5


def test_token_decorrelation_lowers_the_redundancy_of_the_tokens(tmp_path, folder):
    """The loss term pushes a window's tokens apart: the tiny model trained on the term
    alone ends with less redundant tokens than it started with."""
    from mrtlab.train.losses import pairs, token_redundancy
    crops = torch.stack([train_data.RandomCrops(folder, 32, seed=3)[i] for i in range(8)])

    def redundancy(model):
        with torch.no_grad():
            return float(pairs(token_redundancy(model.eval().encode(crops)[0], 2)).mean())
    before = redundancy(fresh())
    path = train(fresh(), TINY, tiny_train(tmp_path, folder, steps=30, lr=3e-3, mse=0.0,
                                            token_decorrelation=1.0))
    assert "similarity" in read_log(tmp_path)[0]
    assert redundancy(load_model(str(path))) < 0.5 * before


def test_a_lost_run_continues_from_its_export(tmp_path, folder, capsys):
    """``init_step``/``init_cpu_s``: the step, data order and CPU budget go on from the export;
    the learning rate warms up again (new optimizer moments)."""
    from mrtlab.train.settings import TrainConfig, lr_factor

    train(fresh(), TINY, tiny_train(tmp_path / "a", folder, steps=2))
    kw = dict(steps=6, warmup=2, cpu_budget=1e6, init=str(tmp_path / "a"), init_step=4, init_cpu_s=500.0)
    train(fresh(), TINY, tiny_train(tmp_path / "b", folder, **kw))
    assert "continuing from" in capsys.readouterr().err
    rows = [r for r in read_log(tmp_path / "b") if "loss" in r]
    assert [r["step"] for r in rows] == [5, 6]
    assert rows[0]["cpu_s"] > 500.0
    assert rows[0]["lr"] < rows[1]["lr"]  # warming up again
    assert json.loads((tmp_path / "b/state/step.json").read_text())["step"] == 6
    cfg, plain = TrainConfig(steps=100, warmup=10, init_step=50), TrainConfig(steps=100, warmup=10)
    assert lr_factor(50, cfg) == pytest.approx(0.1 * lr_factor(50, plain))
    assert lr_factor(70, cfg) == lr_factor(70, plain)
    with pytest.raises(MrtlabError, match="init_step continues a lost run"):
        train(fresh(), TINY, tiny_train(tmp_path / "c", folder, init_step=4))


def test_stage2_keeps_the_decoder_tensors_it_is_told_to(tmp_path, folder, tiny_model_file):
    """``train.keep``: the named decoder tensors stay as initialised, the rest of the
    decoder trains; a pattern that matches nothing, or keep in stage 1, is one line."""
    cfg = tiny_train(tmp_path / "s2", folder, stage=2, init=str(tiny_model_file), steps=2, lr=1e-2,
                     keep=["decoder.*"])
    w0, w1 = load_file(str(tiny_model_file)), load_file(str(train(fresh(), TINY, cfg)))
    kept = [n for n in w0 if n.startswith("decoder.")]
    trained = [n for n in w0 if not torch.equal(w0[n], w1[n])]
    assert kept and all(torch.equal(w0[n], w1[n]) for n in kept) and trained
    with pytest.raises(MrtlabError, match=r"train.keep: 'decodr\.\*' matches no trainable"):
        train(fresh(), TINY, tiny_train(tmp_path / "typo", folder, stage=2, init=str(tiny_model_file),
                                         steps=1, keep=["decodr.*"]))
    with pytest.raises(MrtlabError, match="train.keep is for stage 2"):
        train(fresh(), TINY, tiny_train(tmp_path / "s1", folder, steps=1, keep=["decoder.*"]))
