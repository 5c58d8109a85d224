"""The CUDA path for real, without a GPU: ``mrtlab bench gpu`` in its CPU mode runs fla's
unmodified Triton kernels in Triton's interpreter, through mrtlab's dispatch, in one child
process (the interpreter must be switched on before triton is imported; one process pays
the imports once). Each op forward and backward, with and without states, fp32 and bf16,
a training step of every global mixer and of the RCM, against mrtlab's CPU path."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fla")
pytest.importorskip("triton")

ROOT = Path(__file__).resolve().parents[1]
OPS = ["wkv6", "wkv7", "gla", "ssd"]
PARTS = ["rwkv6", "rwkv7", "gla", "mamba2", "rcm"]


def bench_gpu(tmp_path, *flags) -> tuple[list[dict], str]:
    out = tmp_path / "gpu.json"
    env = {k: v for k, v in os.environ.items() if k != "MRTLAB_NO_FLA"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-m", "mrtlab.cli", "bench", "gpu", "--config",
                           str(ROOT / "recipes/mrt/paper.yaml"), "--json", str(out), *flags],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.read_text()), proc.stdout


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return bench_gpu(tmp_path_factory.mktemp("bench_gpu"))


def rows_of(report, prefix):
    rows = [r for r in report[0] if r["check"].startswith(prefix)]
    assert rows, f"no check starts with {prefix!r}"
    return rows


@pytest.mark.parametrize("op", OPS)
def test_each_fla_kernel_matches_the_cpu_op(report, op):
    """fp32 with initial and final state, bf16, fp32 with neither: T=70 spans two of fla's
    64-token chunks (RWKV-7: five of 16), one partial; V=32 ≠ K=16."""
    rows = rows_of(report, f"{op} ")
    assert {r["dtype"] for r in rows} == {"float32", "bfloat16"}
    for r in rows:
        assert r["passed"], (r["check"], r["problems"])
        assert set(r["errors"]) >= {"o", "dq" if op in ("gla", "ssd") else "dr"}
    with_state = [r for r in rows if "dh0" in r["errors"] and "state" in r["errors"]]
    assert with_state and all(r["errors"]["state"] < 1e-4 for r in with_state
                              if r["dtype"] == "float32")


@pytest.mark.parametrize("part", PARTS)
def test_training_step_through_fla_matches_cpu_step(report, part):
    (row,) = [r for r in rows_of(report, f"step {part} ") if "autocast" not in r["check"]]
    assert row["passed"], row["problems"]
    assert row["errors"]["worst_error"] < 1e-4


def test_mamba2_under_bf16_autocast(report):
    """Found by these tests: under autocast ssd handed fla bf16 keys with fp32 values."""
    (row,) = rows_of(report, "step mamba2 crop=40 bf16-autocast")
    assert row["passed"], row["problems"]


def test_bench_gpu_reports_training_and_every_mixer(report):
    rows, table = report
    (train,) = rows_of(report, "train ")
    assert train["crops_per_s"] > 0 and train["peak_mem_mb"] is None  # no GPU here
    for mixer in ("rwkv6", "rwkv7", "gla", "mamba2"):
        kinds = {r["check"].split()[2]: r["tokens_per_s"] for r in rows_of(report, f"mixer {mixer} ")}
        assert set(kinds) == {"fwd", "fwd+bwd"} and min(kinds.values()) > 0
    assert "0 of 18 checks failed" in table


@pytest.mark.heavy
def test_full_checks_in_the_interpreter(tmp_path):
    """Every check a GPU run makes: longer sequences of two, every part's step at 81
    windows in fp32 and under bf16 autocast."""
    rows, table = bench_gpu(tmp_path, "--full")
    failed = [(r["check"], r["problems"]) for r in rows if r["passed"] is False]
    assert not failed, failed
    assert any(r["check"].startswith("step rcm crop=72 bf16-autocast") for r in rows)


def test_bench_gpu_refuses_a_missing_recipe(tmp_path, capsys):
    from mrtlab.cli import main
    assert main(["bench", "gpu", "--config", str(tmp_path / "missing.yaml")]) == 1
    assert "mrtlab: error: cannot read recipe" in capsys.readouterr().err
