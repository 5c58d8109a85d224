"""Training settings: ``mixed_precision: auto`` picks bf16 only where it is fast and says why; the
log's clocks; ``bench train`` times recipe variants side by side; λ warms up; token statistics."""
import json

import pytest
import torch

from mrtlab.bench import train as bench
from mrtlab.config import build_model
from mrtlab.errors import MrtlabError
from mrtlab.ops import precision
from mrtlab.train.loop import train

from .helpers import TINY, image_folder, read_log, tiny_train

CPU = torch.device("cpu")


def test_auto_is_fp32_without_native_bf16(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "fma"})
    assert precision.choose("auto", CPU) == ("no", "CPU without native bf16 (no avx512_bf16/amx_bf16 flag)")


def test_auto_is_bf16_only_when_the_probe_agrees(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    monkeypatch.setattr(precision, "bf16_speedup", lambda: 1.8)
    assert precision.choose("auto", CPU) == ("bf16", "CPU has avx512_bf16; bf16 matmul 1.8× fp32")
    monkeypatch.setattr(precision, "bf16_speedup", lambda: 0.9)
    assert precision.choose("auto", CPU)[0] == "no"


def test_a_set_precision_is_kept(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: set())
    assert precision.choose("bf16", CPU) == ("bf16", "as set in the recipe")


def test_the_choice_is_noted_and_the_log_has_its_clocks(tmp_path, capsys):
    folder = image_folder(tmp_path / "data")
    torch.manual_seed(0)
    train(build_model(TINY), TINY, tiny_train(tmp_path / "run", folder, steps=3))
    assert "mrtlab: note: mixed precision " in capsys.readouterr().err
    rows = read_log(tmp_path / "run")
    assert all(r["cpu_s"] > 0 and r["time_s"] > 0 for r in rows)
    assert rows[-1]["cpu_s"] > rows[0]["cpu_s"]
    assert json.loads((tmp_path / "run" / "state" / "step.json").read_text())["cpu_s"] >= rows[-1]["cpu_s"]


def test_a_bad_precision_is_one_line(tmp_path):
    with pytest.raises(MrtlabError, match="mixed_precision must be auto, no, bf16 or fp16"):
        train(build_model(TINY), TINY, tiny_train(tmp_path / "run", tmp_path, mixed_precision="fast"))


def test_steady_rate_leaves_out_the_warm_up():
    rows = [{"step": s, "time_s": t, "cpu_s": 2 * t, "crops_per_s": 2 * s / t}
            for s, t in [(1, 10.0), (2, 11.0), (3, 12.0), (4, 13.0)]]   # 2 crops per step
    assert bench.steady(rows, warmup=1) == {"crops_per_s": pytest.approx(2.0),
                                            "crops_per_cpu_s": pytest.approx(1.0)}
    with pytest.raises(MrtlabError, match="too few steps"):
        bench.steady(rows, warmup=3)


def test_variants_parse_or_fail_in_one_line():
    assert bench.parse_variants(["fp32=--train.mixed_precision=no,--train.workers=1"]) == {
        bench.BASELINE: [], "fp32": ["--train.mixed_precision=no", "--train.workers=1"]}
    with pytest.raises(MrtlabError, match="expected NAME="):
        bench.parse_variants(["fp32"])


def test_bench_train_times_a_stage_2_recipe_from_its_init(tmp_path):
    """Stage 1 is timed from scratch; stage 2 needs the model it starts from, so the bench
    keeps the recipe's ``init``."""
    import yaml

    from mrtlab.zoo import identify, save_model

    data = image_folder(tmp_path / "images", size=48, n=2)
    init = save_model(identify(build_model(TINY), TINY, "tiny"), TINY, tmp_path / "stage1")
    recipe = tmp_path / "stage2.yaml"
    recipe.write_text(yaml.safe_dump({"model": TINY, "train": {
        "data": str(data), "crop": 32, "batch_size": 2, "stage": 2, "init": str(init), "warmup": 1}}))
    assert bench.stage(str(recipe)) == 2
    assert bench.run_once(str(recipe), [], steps=3, warmup=1)["crops_per_s"] > 0


def test_token_stats_see_copied_tokens():
    from mrtlab.train.validate import token_stats
    g = torch.Generator().manual_seed(0)
    first = torch.randint(0, 5, (50, 1, 8), generator=g)
    copies = torch.cat([first, first, torch.randint(0, 5, (50, 1, 8), generator=g)], dim=1)
    stats = token_stats(torch.tensor([10.0, 0.5, 9.0]), copies)
    assert stats["val_token_redundancy"] > 0.9      # 1 up to the sampling error of 50 windows
    assert stats["val_bits_token2"] == 0.5
    independent = token_stats(torch.ones(2), torch.randint(0, 5, (400, 2, 8), generator=g))
    assert independent["val_token_redundancy"] < 0.1


def test_token_redundancy_sees_copies_through_other_projections():
    """The collapse that per-token heads hide: token 2 a linear map of token 1."""
    from mrtlab.train.losses import pairs, token_redundancy
    g = torch.Generator().manual_seed(0)
    first = torch.randn(2000, 8, generator=g)
    rotated = first @ torch.linalg.qr(torch.randn(8, 8, generator=g))[0]
    y = torch.stack([first, rotated, torch.randn(2000, 8, generator=g)], dim=1).reshape(1, -1, 8)
    r = token_redundancy(y, 3)
    assert r[0, 1] == pytest.approx(1.0, abs=0.02) and r[0, 2] < 0.02 and r[1, 2] < 0.02
    assert pairs(r).shape == (6,)


def test_rate_weight_warms_up_linearly():
    from mrtlab.train.settings import TrainConfig, rate_weight
    cfg = TrainConfig(rate_weight=0.02, rate_warmup=100)
    assert [rate_weight(s, cfg) for s in (1, 50, 100, 5000)] == pytest.approx([2e-4, 0.01, 0.02, 0.02])
    assert rate_weight(1, TrainConfig(rate_weight=0.02)) == 0.02


def test_a_cpu_budget_ends_the_run_and_drives_the_schedule(tmp_path):
    from mrtlab.train.settings import TrainConfig, lr_factor
    cfg = TrainConfig(steps=1000, warmup=10, cpu_budget=100.0)
    assert lr_factor(500, cfg, cpu_s=0.0) == pytest.approx(1.0)
    assert lr_factor(20, cfg, cpu_s=100.0) == pytest.approx(0.05)
    folder = image_folder(tmp_path / "data")
    torch.manual_seed(0)
    out = tmp_path / "run"
    train(build_model(TINY), TINY, tiny_train(out, folder, steps=1000, cpu_budget=1e-9))
    assert [r["step"] for r in read_log(out)] == [1]            # stopped after the first step
    assert json.loads((out / "state" / "step.json").read_text())["step"] == 1
    assert (out / "model.safetensors").is_file()
    train(build_model(TINY), TINY, tiny_train(out, folder, steps=1000, cpu_budget=1e-9))
    assert [r["step"] for r in read_log(out)] == [1]            # resumed: nothing left to do


def test_token_correlation_is_per_channel():
    """Channels with different means must not look correlated across independent tokens."""
    from mrtlab.train.validate import token_stats
    g = torch.Generator().manual_seed(1)
    offsets = torch.arange(8) * 3                               # channel c sits around 3·c
    sym = torch.randint(0, 3, (300, 2, 8), generator=g) + offsets
    assert token_stats(torch.ones(2), sym)["val_token_redundancy"] < 0.1
