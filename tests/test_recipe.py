"""Recipes: YAML → model by class_path, short names, command-line overrides."""
from pathlib import Path

import pytest
import torch

from mrtlab.config import build_model, load_recipe, parse
from mrtlab.errors import MrtlabError
from mrtlab.mixers import IdentityMixer, RWKV6Mixer
from mrtlab.models import CodecModel
from mrtlab.quantizers import ScalarQuantizer

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "recipes" / "mrt" / "demo.yaml"


def test_recipe_builds_the_model():
    cfg = parse(["--config", str(DEMO)])
    assert cfg.train.crop == 256
    model = build_model(cfg.model.as_dict())
    assert isinstance(model.encoder.glob[0], RWKV6Mixer)
    assert len(model.decoder.local) == cfg.model.decoder_layers
    assert model.quantizer.levels == [5] * 8


def test_overrides_swap_parts_by_short_name():
    cfg = parse(["--config", str(DEMO), "--model.global_mixer.class_path=identity",
                 "--model.quantizer=scalar", "--model.quantizer.init_args.channels=3",
                 "--model.dim", "64", "--model.local_mixer.init_args.heads=2"])
    model = build_model(cfg.model.as_dict())
    assert all(isinstance(m, IdentityMixer) for m in model.encoder.glob)
    assert isinstance(model.quantizer, ScalarQuantizer) and model.quantizer.levels == [15] * 3
    assert model.dim == 64 and model.encoder.local[0].heads == 2
    x = torch.rand(1, 3, 40, 40)
    assert model(x)["x_hat"].shape == x.shape


def test_full_class_paths_work_too(tmp_path):
    (tmp_path / "r.yaml").write_text(f"include: {DEMO}\nmodel:\n  global_mixer:\n"
                                     "    class_path: mrtlab.mixers.identity.IdentityMixer\n")
    cfg = parse(["--config", str(tmp_path / "r.yaml")])
    assert isinstance(build_model(cfg.model.as_dict()).encoder.glob[0], IdentityMixer)


RECIPE_FILES = sorted(p for p in (ROOT / "recipes").rglob("*.yaml") if not p.name.endswith(".grid.yaml"))


@pytest.mark.parametrize("path", RECIPE_FILES, ids=lambda p: str(p.relative_to(ROOT / "recipes")))
def test_every_recipe_builds_its_model(path):
    cfg = parse(["--config", str(path)])
    assert isinstance(build_model(cfg.model.as_dict()), CodecModel)
    assert cfg.train.out.startswith("runs/")


def test_ablations_cover_every_global_mixer_and_entropy_model():
    from mrtlab.registry import REGISTRIES

    for folder, part in (("ablations", "global_mixer"), ("ablations/entropy", "entropy_model")):
        found = {load_recipe(p)["model"][part]["class_path"].rpartition(".")[2]
                 for p in (ROOT / "recipes" / folder).glob("*.yaml") if not p.name.endswith(".grid.yaml")}
        builtin = {c.__name__ for c in REGISTRIES[part].values() if c.__module__.startswith("mrtlab.")}
        assert found == builtin, folder   # (a plugin a test loaded is not the package's)


def write(folder, name, text):
    (folder / name).write_text(text)
    return folder / name


def test_include_is_relative_to_the_including_recipe_and_holds_what_differs(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    write(tmp_path, "base.yaml", "model:\n  architecture: mrt_tiny\n  global_mixer:\n"
          "    class_path: rwkv6\n    init_args: {heads: 2, decay_rank: 4}\n"
          "train: {data: images, steps: 7, out: runs/base}\n")
    write(sub, "mid.yaml", "include: ../base.yaml\nmodel:\n  global_mixer:\n"
          "    init_args: {heads: 4}\ntrain: {out: runs/mid}\n")
    top = write(tmp_path, "top.yaml", "include: [sub/mid.yaml]\nmodel:\n  dim: 16\n"
                "  entropy_model: {class_path: hyperprior}\n")
    cfg = parse(["--config", str(top), "--train.steps=9"])
    assert (cfg.train.data, cfg.train.steps, cfg.train.out) == ("images", 9, "runs/mid")
    model = build_model(cfg.model.as_dict())
    mixer = model.encoder.glob[0]
    assert model.dim == 16 and mixer.heads == 4 and mixer.decay_a.out_features == 4  # merged by argument
    assert type(model.entropy_model).__name__ == "Hyperprior"
    swapped = write(tmp_path, "swap.yaml", "include: base.yaml\nmodel:\n  global_mixer: {class_path: gla}\n")
    assert "init_args" not in load_recipe(swapped)["model"]["global_mixer"]  # another part: replaced whole


def test_include_cycles_and_unknown_architectures_are_one_line_errors(tmp_path):
    write(tmp_path, "a.yaml", "include: b.yaml\n")
    write(tmp_path, "b.yaml", "include: [a.yaml]\n")
    with pytest.raises(MrtlabError, match=r"includes itself \(a.yaml → b.yaml → a.yaml\)") as e:
        load_recipe(tmp_path / "a.yaml")
    assert "\n" not in str(e.value)
    with pytest.raises(MrtlabError, match="cannot read recipe"):
        load_recipe(write(tmp_path, "c.yaml", "include: nowhere.yaml\n"))
    with pytest.raises(MrtlabError, match="unknown architecture 'mrt_huge'; known: cnn2d"):
        parse(["--config", str(write(tmp_path, "d.yaml", "model: {architecture: mrt_huge}\n"))])


@pytest.mark.parametrize("argv,expect", [
    (["--config", "nonexistent.yaml"], "cannot read recipe"),
    (["--config", str(DEMO), "--model.global_mixer.class_path=nosuchmixer"], "bad recipe or option"),
    (["--config", str(DEMO), "--model.dim=notanumber"], "bad recipe or option"),
])
def test_bad_recipes_are_one_line_errors(argv, expect):
    with pytest.raises(MrtlabError) as e:
        parse(argv)
    assert expect in str(e.value) and "\n" not in str(e.value)


def test_load_recipe_resolves_short_names():
    data = load_recipe(DEMO)
    assert data["model"]["global_mixer"]["class_path"] == "mrtlab.mixers.rwkv6.RWKV6Mixer"


def test_only_part_keys_take_short_names():
    cfg = parse(["--config", str(DEMO), "--train.out=rwkv6", "--train.data", "fsq",
                 "--model.global_mixer", "identity"])
    assert cfg.train.out == "rwkv6" and cfg.train.data == "fsq"
    assert cfg.model.global_mixer.class_path.endswith("IdentityMixer")


def test_every_ablation_grid_makes_recipes_that_build(tmp_path):
    """Each run of a shipped grid is a recipe that parses and builds its model."""
    from mrtlab.ablate import load_grid, runs_of, write_recipe

    for path in sorted((ROOT / "recipes").rglob("*.grid.yaml")):
        grid = load_grid(path)
        grid.out = tmp_path / path.stem
        runs = runs_of(grid)
        assert runs[0].name.startswith("control") and len({r.name for r in runs}) == len(runs)
        for run in runs:
            cfg = parse(["--config", str(write_recipe(grid, run))])
            model = build_model(cfg.model.as_dict())
            assert isinstance(model, CodecModel) and model.variable_rate, run.name
            assert cfg.train.cpu_budget == grid.budget and cfg.train.out == str(run.folder)
