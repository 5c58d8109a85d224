"""``mrtlab bench train``: the training throughput of a recipe under candidate settings, side
by side in one run.

Each variant is a list of recipe overrides (``--train.mixed_precision=no`` …) run as its own
``mrtlab train`` process for a few steps. Rounds interleave the variants, so that a machine
whose speed drifts (another job, thermal limits) treats them alike; the median round counts.
Reported per variant: steady crops/s (wall clock, from the log rows after the first
``warmup`` steps, which pay for allocation and kernel selection) and crops per process
CPU-second (models and settings are compared at equal CPU time).
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import MrtlabError

BASELINE = "as recipe"


def parse_variants(specs: list[str]) -> dict[str, list[str]]:
    """``NAME=--a=1,--b=2`` → ``{NAME: ["--a=1", "--b=2"]}``; the recipe as given comes first."""
    variants = {BASELINE: []}
    for spec in specs:
        name, eq, overrides = spec.partition("=")
        if not eq or not name or not overrides.startswith("--"):
            raise MrtlabError(f"variant {spec!r}: expected NAME=--key=value[,--key=value…]")
        variants[name] = overrides.split(",")
    return variants


def steady(rows: list[dict], warmup: int) -> dict:
    """Crops/s and crops per CPU-second between the first row after ``warmup`` and the last."""
    rows = [r for r in rows if "time_s" in r]
    first = next((r for r in rows if r["step"] > warmup), None)
    if first is None or first is rows[-1]:
        raise MrtlabError(f"too few steps after a warm-up of {warmup}: run more --steps")
    last = rows[-1]
    crops = last["crops_per_s"] * last["time_s"] - first["crops_per_s"] * first["time_s"]
    return {"crops_per_s": crops / (last["time_s"] - first["time_s"]),
            "crops_per_cpu_s": crops / (last["cpu_s"] - first["cpu_s"])}


def run_once(config: str, overrides: list[str], steps: int, warmup: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="mrtlab-bench-train-") as tmp:
        # stage 1 times from scratch (a warm start costs the same per step); stage 2 needs its init
        scratch = ["--train.init=", "--train.init_partial=false"] if stage(config) == 1 else []
        cmd = [sys.executable, "-m", "mrtlab.cli", "train", "--config", config, *scratch, *overrides,
               f"--train.steps={steps}", f"--train.out={tmp}/run", "--train.log_every=1",
               "--train.val_every=0", f"--train.save_every={steps}", "--train.tensorboard=false"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            raise MrtlabError(f"training failed ({' '.join(overrides) or BASELINE}): "
                              f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
        rows = [json.loads(line) for line in Path(tmp, "run", "log.jsonl").read_text().splitlines()]
        notes = [ln.removeprefix("mrtlab: note: ") for ln in proc.stderr.splitlines()
                 if ln.startswith("mrtlab: note: mixed precision")]
    return {**steady(rows, warmup), "precision": notes[0] if notes else ""}


def stage(config: str) -> int:
    from ..config import load_recipe

    return int(load_recipe(config).get("train", {}).get("stage", 1))


def run(config: str, variants: dict[str, list[str]], steps: int = 12, warmup: int = 4,
        rounds: int = 2, progress=lambda line: None) -> list[dict]:
    if not Path(config).is_file():
        raise MrtlabError(f"{config}: no such recipe")
    results: dict[str, list[dict]] = {name: [] for name in variants}
    for r in range(rounds):
        for name, overrides in variants.items():
            results[name].append(run_once(config, overrides, steps, warmup))
            progress(f"round {r + 1}/{rounds} {name}: {results[name][-1]['crops_per_s']:.3f} crops/s")
    base = statistics.median(x["crops_per_s"] for x in results[BASELINE])
    rows = []
    for name, runs in results.items():
        speed = statistics.median(x["crops_per_s"] for x in runs)
        rows.append({"variant": name, "overrides": variants[name], "crops_per_s": speed,
                     "crops_per_cpu_s": statistics.median(x["crops_per_cpu_s"] for x in runs),
                     "speedup": speed / base, "precision": runs[0]["precision"],
                     "rounds": [x["crops_per_s"] for x in runs]})
    return rows


def table(rows: list[dict]) -> str:
    lines = [f"{'variant':<24}{'crops/s':>10}{'crops/CPU-s':>13}{'speedup':>9}  precision"]
    for r in rows:
        lines.append(f"{r['variant']:<24}{r['crops_per_s']:>10.3f}{r['crops_per_cpu_s']:>13.3f}"
                     f"{r['speedup']:>8.2f}×  {r['precision']}")
    return "\n".join(lines)
