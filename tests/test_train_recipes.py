"""Recipes: a model section may name its class; the training recipes hang together."""
from pathlib import Path

import pytest
import torch
import yaml

from mrtlab.config import build_model, load_recipe, parse
from mrtlab.errors import MrtlabError
from mrtlab.models import MRT
from mrtlab.models.baseline2d import Baseline2D

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"


def test_mrt_recipes_stay_without_class_path():
    """An MRT recipe's model section names no class (MRT is the default model class)."""
    for name in ("demo", "cpu", "paper"):
        cfg = parse(["--config", str(RECIPES / "mrt" / f"{name}.yaml")])
        assert "class_path" not in cfg.model.as_dict()
        assert isinstance(build_model(cfg.model.as_dict()), MRT)


@pytest.mark.parametrize("section", [
    {"class_path": "baseline2d", "channels": 8},
    {"class_path": "mrtlab.models.baseline2d.Baseline2D", "init_args": {"channels": 8}},
])
def test_model_section_names_its_class(section, tmp_path):
    recipe = {"model": dict(section, quantizer={"class_path": "fsq", "init_args": {"levels": [5, 5]}},
                            entropy_model={"class_path": "factorized"})}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    cfg = parse(["--config", str(tmp_path / "r.yaml"), "--model.downsample", "32"])
    model_cfg = cfg.model.as_dict()
    assert list(model_cfg)[0] == "class_path" and model_cfg["downsample"] == 32
    model = build_model(model_cfg)
    assert isinstance(model, Baseline2D) and model.downsample == 32


def test_class_path_override_and_bad_names():
    demo = str(RECIPES / "mrt" / "demo.yaml")
    cfg = parse(["--config", str(RECIPES / "baselines" / "cnn2d.yaml"), "--model.class_path", "baseline2d"])
    assert cfg.model.class_path.endswith("Baseline2D")
    for bad in ("nosuchmodel", "mrtlab.quantizers.fsq.FSQ"):
        with pytest.raises(MrtlabError, match="does not name a CodecModel") as e:
            parse(["--config", demo, f"--model.class_path={bad}"])
        assert "\n" not in str(e.value)
    with pytest.raises(MrtlabError, match="bad recipe or option"):  # MRT arguments for a CNN
        parse(["--config", demo, "--model.class_path=baseline2d"])


@pytest.mark.parametrize("stage1", ["mrt/cpu", "mrt/paper", "mrt/default", "baselines/cnn2d"])
def test_stage2_recipes_continue_their_stage1(stage1):
    one = load_recipe(RECIPES / f"{stage1}.yaml")
    two = load_recipe(RECIPES / f"{stage1}-stage2.yaml")
    assert one["model"] == two["model"]
    assert two["train"]["stage"] == 2 and one["train"].get("stage", 1) == 1
    assert two["train"]["init"] == one["train"]["out"] + "/model.safetensors"
    assert two["train"]["out"] != one["train"]["out"]


def test_default_and_its_2d_partner_differ_only_in_the_latent():
    """The 1-D vs 2-D comparison: same stem and synthesis, data, λ, learning rate, CPU
    budget, quantizer alphabet and entropy model, and the same raw capacity per 32×32 pixels
    at every rate point. Only the start of the schedule is each model's own (MRT needs all
    tokens kept at first, the 2-D partner collapses at that switch: docs/results.md)."""
    mrt_recipe = load_recipe(RECIPES / "mrt" / "default.yaml")
    cnn_recipe = load_recipe(RECIPES / "baselines" / "cnn2d-variable.yaml")
    own = ("out", "nested_dropout_start", "rate_warmup")
    assert {k: v for k, v in mrt_recipe["train"].items() if k not in own} == \
        {k: v for k, v in cnn_recipe["train"].items() if k not in own}
    assert mrt_recipe["train"]["cpu_budget"] >= 8 * 3600
    for key in ("tokenizer", "entropy_model"):
        assert mrt_recipe["model"][key] == cnn_recipe["model"][key]
    mrt, cnn = (build_model(r["model"]) for r in (mrt_recipe, cnn_recipe))
    assert set(mrt.quantizer.levels) == set(cnn.quantizer.levels)
    for k in range(1, mrt.latent_tokens + 1):
        symbols = [m.layout(m.grid(256, 256), k).tokens * m.quantizer.channels for m in (mrt, cnn)]
        assert symbols[0] == symbols[1] == k * 8 * 64


def test_cpu_recipes_use_bsds500_with_a_held_out_folder():
    for path in (RECIPES / "mrt" / "cpu.yaml", RECIPES / "baselines" / "cnn2d.yaml"):
        train = load_recipe(path)["train"]
        assert train["data"].startswith("../shared/data/bsds500")
        assert train["val_data"].startswith("../shared/data/bsds500") and train["val_data"] != train["data"]


def test_paper_teacher_fits_the_paper_student():
    from mrtlab.train.align import regroup

    student = build_model(parse(["--config", str(RECIPES / "mrt" / "paper.yaml")]).model.as_dict())
    teacher = build_model(parse(["--config", str(RECIPES / "baselines" / "cnn2d-paper.yaml")]).model.as_dict())
    assert student.quantizer.levels == teacher.quantizer.levels
    s, t = (m.layout(m.grid(256, 256)) for m in (student, teacher))
    regroup(torch.zeros(1, t.tokens, 8), t, s)  # raises if they cannot be aligned


def test_the_bundled_realism_decoder_was_trained_by_its_recipe():
    """The decoder file keeps the settings of the run that trained it: its losses are the
    recipe's, so the recipe reproduces what ships."""
    import json

    from safetensors import safe_open

    from mrtlab.train.settings import TrainConfig
    from mrtlab.zoo.catalog import BUNDLED_DIR, decoder_file

    with safe_open(str(decoder_file(BUNDLED_DIR / "default.safetensors", "realism")), "pt") as f:
        trained = json.loads(f.metadata()["training"])
    recipe = load_recipe(RECIPES / "mrt" / "default-stage2.yaml")["train"]
    losses = ("stage", "mse", "msssim", "lpips", "dists", "adv", "window_pattern", "phase_pattern",
              "phase_period", "decoder_noise", "keep", "lr", "crop", "batch_size", "cpu_budget")
    assert {k: trained[k] for k in losses} == {k: recipe.get(k, getattr(TrainConfig(), k)) for k in losses}
