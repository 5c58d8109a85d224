"""Recipes: YAML → model by class_path, short names, command-line overrides."""
from pathlib import Path

import pytest
import torch

from mrtlab.config import build_model, load_recipe, parse
from mrtlab.errors import MrtlabError
from mrtlab.mixers import IdentityMixer, RWKV6Mixer
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
    text = DEMO.read_text().replace("class_path: rwkv6", "class_path: mrtlab.mixers.identity.IdentityMixer")
    text = text.replace("init_args: {heads: 4, decay_rank: 32}", "init_args: {}")
    (tmp_path / "r.yaml").write_text(text)
    cfg = parse(["--config", str(tmp_path / "r.yaml")])
    assert isinstance(build_model(cfg.model.as_dict()).encoder.glob[0], IdentityMixer)


def test_bundled_recipes_parse():
    for path in (ROOT / "recipes").rglob("*.yaml"):
        cfg = parse(["--config", str(path)])
        build_model(cfg.model.as_dict())


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


def ablation_recipes(main_path, folder, part) -> dict:
    """Each recipe of ``folder`` against ``main_path``: equal but for ``model.<part>`` and the
    output folder. Returns {part's class_path: recipe}."""
    import yaml

    main = yaml.safe_load(main_path.read_text())
    found = {}
    for path in sorted(folder.glob("*.yaml")):
        r = yaml.safe_load(path.read_text())
        found[r["model"][part]["class_path"]] = r
        for section in ("model", "train"):
            a, b = dict(main[section]), dict(r[section])
            for d in (a, b):
                d.pop(part, None)
                d.pop("out", None)
            assert a == b, f"{path.name}: {section} differs from {main_path.name}"
    return found


def test_ablation_recipes_differ_only_in_the_global_mixer():
    found = ablation_recipes(DEMO, ROOT / "recipes" / "ablations", "global_mixer")
    assert set(found) == {"rwkv6", "rwkv7", "mamba2", "gla", "attention", "identity"}


def test_only_part_keys_take_short_names():
    cfg = parse(["--config", str(DEMO), "--train.out=rwkv6", "--train.data", "fsq",
                 "--model.global_mixer", "identity"])
    assert cfg.train.out == "rwkv6" and cfg.train.data == "fsq"
    assert cfg.model.global_mixer.class_path.endswith("IdentityMixer")


def test_entropy_ablation_recipes_differ_only_in_the_entropy_model():
    from mrtlab.config import build_model
    found = ablation_recipes(ROOT / "recipes" / "mrt" / "cpu.yaml",
                             ROOT / "recipes" / "ablations" / "entropy", "entropy_model")
    assert set(found) == {"rcm", "transformer_ar", "hyperprior", "factorized"}
    for r in found.values():
        assert build_model(r["model"]).entropy_model is not None
