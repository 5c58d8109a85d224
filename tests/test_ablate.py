"""``mrtlab ablate``: a grid of tiny runs trained, evaluated on real files and tabulated, a
failing run reported without stopping the others, a rerun that trains nothing."""
import json

import pytest
import yaml

from .helpers import image_folder, one_error_line, run


@pytest.fixture
def grid(tmp_path):
    data = image_folder(tmp_path / "images", size=64, n=2)
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({
        "model": {"architecture": "mrt_tiny", "nested_dropout": True},
        "train": {"data": str(data), "crop": 32, "batch_size": 2, "steps": 3, "warmup": 1, "log_every": 1,
                  "save_every": 100, "tensorboard": False, "rate_weight": 0.01}}))
    spec = {
        "recipe": "base.yaml", "out": str(tmp_path / "out"), "seeds": [0, 1],
        "control": {"global_mixer": "rwkv6"},
        "axes": {"global_mixer": {
            "rwkv6": {"model.global_mixer": {"class_path": "rwkv6", "init_args": {"heads": 4, "decay_rank": 8}}},
            "identity": {"model.global_mixer": {"class_path": "identity"}},
            "broken": {"model.global_mixer": {"class_path": "no_such_mixer"}}}},
        "eval": {"data": str(data), "tokens": [1, 2], "metrics": ["psnr", "lowpass-psnr"], "images": 2},
        "jobs": 2,
    }
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path / "grid.yaml"


@pytest.mark.slow
def test_a_grid_is_trained_evaluated_and_tabulated(grid, capsys):
    code, out, err = run(capsys, "ablate", grid, "--quiet")
    assert code == 1, err
    errors = [line for line in err.splitlines() if line.startswith("mrtlab: error:")]
    assert len(errors) == 2 and "run global_mixer=broken failed" in errors[0]
    assert errors[1] == "mrtlab: error: 1 of 4 runs or evaluations failed"
    folder = grid.parent / "out"
    md = (folder / "table.md").read_text()
    for name in ("control-s0", "control-s1", "global_mixer=identity"):
        assert f"| {name} | 1 |" in md and f"| {name} | 2 |" in md, md
    rows = json.loads((folder / "table.json").read_text())
    bd = {r["run"]: r["bd_rate_psnr"] for r in rows if "bd_rate_psnr" in r}
    assert bd["control-s0"] == "+0.0 %" and set(bd) == {"control-s0", "control-s1", "global_mixer=identity"}
    facts = [r for r in rows if "params" in r]
    assert all(r["params"] > 0 and r["macs_per_pixel"] > 0 and r["crops_per_s"] > 0 for r in facts)
    assert (folder / "table.csv").read_text().startswith("data,run,tokens,")
    assert (folder / "rd-images.png").stat().st_size > 1000
    recipe = yaml.safe_load((folder / "global_mixer=identity" / "recipe.yaml").read_text())
    assert recipe["model"]["global_mixer"] == {"class_path": "identity"} and recipe["train"]["seed"] == 0

    before = (folder / "control-s0" / "train.out").read_text()
    code, _, err = run(capsys, "ablate", grid, "--quiet")       # finished runs are not trained again
    assert code == 1 and (folder / "control-s0" / "train.out").read_text() == before


def test_a_bad_grid_is_one_line(tmp_path, capsys):
    (tmp_path / "g.yaml").write_text("recipe: nowhere.yaml\naxes: {a: {x: {}}}\ncontrol: {a: x}\n")
    code, _, err = run(capsys, "ablate", tmp_path / "g.yaml")
    assert code == 1 and "recipe" in one_error_line(err) and "not found" in err
    (tmp_path / "g.yaml").write_text("recipe: g.yaml\naxes: {a: {x: {}}}\ncontrol: {a: y}\n")
    code, _, err = run(capsys, "ablate", tmp_path / "g.yaml")
    assert code == 1 and "control's value on axis 'a' must be one of x" in one_error_line(err)
