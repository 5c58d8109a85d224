"""``mrtlab ablate GRID.yaml``: train every run of an ablation grid, evaluate each on real files,
and write one table (Markdown, CSV, JSON) with BD-rates against the control, and RD plots.

A grid (docs/ablations.md) names a base recipe, axes of overrides (any recipe key, plugin
classes included), the control's value on each axis, seeds, a budget per run and what to
evaluate on. Runs vary one axis at a time from the control (the paper's ablations); the
control runs with every seed, so the table shows the spread a difference must exceed.
Every run is ``mrtlab train --config OUT/RUN/recipe.yaml`` in a process of its own (or
under ``launcher``, e.g. ``accelerate launch``): a finished run is skipped, a stopped one
resumes where its checkpoint is, and one that fails is one line while the others go on.
"""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from .config import merge
from .errors import MrtlabError
from .eval.bdrate import bd_rate
from .eval.curves import load
from .eval.plot import plot
from .files import write_atomic
from .zoo.model_files import load_model

DONE = "done.json"


@dataclass
class Run:
    name: str
    values: dict[str, str]          # axis → value name
    overrides: dict                 # nested recipe sections
    seed: int
    folder: Path = field(default=Path())

    @property
    def weights(self) -> Path:
        return self.folder / "model.safetensors"


@dataclass
class Grid:
    path: Path
    recipe: Path
    out: Path
    budget: float
    steps: int | None
    axes: dict[str, dict[str, dict]]
    control: dict[str, str]
    seeds: list[int]
    seed: int
    data: list[Path]
    images: int | None
    tokens: list[int] | None
    metrics: list[str]
    weights: str | None
    launcher: list[str]
    jobs: int


def nested(overrides: dict) -> dict:
    """``{"model.global_mixer": x, "train": {"lr": y}}`` → nested sections."""
    out: dict = {}
    for key, value in (overrides or {}).items():
        *parents, last = str(key).split(".")
        d = out
        for p in parents:
            d = d.setdefault(p, {})
        if isinstance(value, dict) and isinstance(d.get(last), dict):
            d[last].update(value)
        else:
            d[last] = value
    return out


def load_grid(path: str | Path) -> Grid:
    """Read and check a grid file; every problem is one line naming it."""
    path = Path(path)
    try:
        g = yaml.safe_load(path.read_text())
    except OSError as e:
        raise MrtlabError(f"cannot read grid {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise MrtlabError(f"grid {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(g, dict):
        raise MrtlabError(f"grid {path} is not a mapping")
    unknown = set(g) - {"recipe", "out", "budget", "steps", "axes", "control", "seeds", "seed", "eval",
                        "launcher", "jobs"}
    if unknown:
        raise MrtlabError(f"grid {path}: unknown key {sorted(unknown)[0]!r}")
    for key in ("recipe", "axes", "control"):
        if key not in g:
            raise MrtlabError(f"grid {path}: no {key!r}")
    axes = g["axes"]
    if not isinstance(axes, dict) or not all(isinstance(v, dict) and v for v in axes.values()):
        raise MrtlabError(f"grid {path}: 'axes' maps each axis to its named values (each a dict of overrides)")
    control = g["control"] or {}
    for axis, values in axes.items():
        if control.get(axis) not in values:
            raise MrtlabError(f"grid {path}: the control's value on axis {axis!r} must be one of "
                              f"{', '.join(map(str, values))} (control: {axis}: NAME)")
    ev = g.get("eval") or {}
    base = path.parent
    recipe = (base / g["recipe"]).resolve()
    if not recipe.is_file():
        raise MrtlabError(f"grid {path}: recipe {recipe} not found")
    launcher = g.get("launcher") or [sys.executable, "-m", "mrtlab.cli"]
    return Grid(
        path=path, recipe=recipe, out=Path(g.get("out") or f"runs/ablate/{path.stem}"),
        budget=float(g.get("budget") or 0), steps=g.get("steps"), axes=axes,
        control={a: str(control[a]) for a in axes}, seeds=[int(s) for s in g.get("seeds") or [0]],
        seed=int(g.get("seed", (g.get("seeds") or [0])[0])),
        data=[(base / d) for d in ([ev["data"]] if isinstance(ev.get("data"), str) else ev.get("data") or [])],
        images=ev.get("images"), tokens=ev.get("tokens"),
        metrics=list(ev.get("metrics") or ["psnr", "lowpass-psnr", "ms-ssim", "dists"]),
        weights=str(base / ev["weights"]) if ev.get("weights") else None,
        launcher=launcher.split() if isinstance(launcher, str) else list(launcher),
        jobs=int(g.get("jobs") or 1))


def runs_of(grid: Grid) -> list[Run]:
    """The control with each seed, then every other value of each axis, one axis at a time."""
    def overrides(values):
        merged: dict = {}
        for axis, value in values.items():
            merged = merge(merged, nested(grid.axes[axis][value]))
        return merged

    runs = [Run("control" + (f"-s{s}" if len(grid.seeds) > 1 else ""), dict(grid.control),
                overrides(grid.control), s) for s in grid.seeds]
    for axis, values in grid.axes.items():
        for value in values:
            if value != grid.control[axis]:
                chosen = dict(grid.control, **{axis: value})
                runs.append(Run(f"{axis}={value}", chosen, overrides(chosen), grid.seed))
    for r in runs:
        r.folder = grid.out / r.name.replace("/", "_")
    return runs


def write_recipe(grid: Grid, run: Run) -> Path:
    """``OUT/RUN/recipe.yaml``: the base recipe, the run's overrides, its budget, seed and folder."""
    train = {"out": str(run.folder), "seed": run.seed}
    if grid.budget:
        train["cpu_budget"] = grid.budget
    if grid.steps:
        train["steps"] = int(grid.steps)
    recipe = merge(run.overrides, {"train": train})
    path = run.folder / "recipe.yaml"
    text = f"# {run.name} of {grid.path}\n" + yaml.safe_dump({"include": str(grid.recipe), **recipe}, sort_keys=False)
    if not path.is_file() or path.read_text() != text:
        write_atomic(path, text, force=True)
    return path


def threads(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(jobs, 1))


def train_run(grid: Grid, run: Run, log) -> str | None:
    """Train one run (resuming it), or ``None`` if done; returns a failure's one line."""
    if (run.folder / DONE).is_file() and run.weights.is_file():
        return None
    recipe = write_recipe(grid, run)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads(grid.jobs)), MKL_NUM_THREADS=str(threads(grid.jobs)))
    with open(run.folder / "train.out", "a") as out:
        proc = subprocess.run([*grid.launcher, "train", "--config", str(recipe)], stdout=out,
                              stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        tail = (run.folder / "train.out").read_text().strip().splitlines()[-1:] or ["(no output)"]
        return f"run {run.name} failed (exit {proc.returncode}): {tail[0][:200]}; log: {run.folder / 'train.out'}"
    write_atomic(run.folder / DONE, json.dumps({"finished": time.strftime("%Y-%m-%d %H:%M:%S")}), force=True)
    log(f"trained {run.name}")
    return None


def eval_run(grid: Grid, run: Run, data: Path) -> Path:
    """``OUT/RUN/eval-DATA.json`` (evaluated once)."""
    out = run.folder / f"eval-{data.name}.json"
    if out.is_file():
        return out
    argv = ["eval", "--data", str(data), "--model", str(run.weights), "--metrics", ",".join(grid.metrics),
            "--out", str(out), "--quiet", "--force"]
    if grid.tokens:
        argv += ["--tokens", ",".join(map(str, grid.tokens))]
    if grid.images:
        argv += ["--limit", str(grid.images)]
    if grid.weights:
        argv += ["--weights", grid.weights]
    proc = subprocess.run([sys.executable, "-m", "mrtlab.cli", *argv], capture_output=True, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS=str(threads(grid.jobs))))
    if proc.returncode != 0:
        raise MrtlabError(f"eval of {run.name} on {data} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return out


def model_facts(run: Run) -> dict:
    """Parameters, multiply-accumulates per pixel of a forward pass (256×256), and the
    training's crops/s (mean of its log)."""
    model = load_model(str(run.weights))
    params = sum(p.numel() for p in model.parameters())
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.rand(1, 3, 256, 256))
    log = run.folder / "log.jsonl"
    speeds = [r["crops_per_s"] for r in map(json.loads, log.read_text().splitlines())
              if "crops_per_s" in r] if log.is_file() else []
    return {"params": params, "macs_per_pixel": counter.get_total_flops() / 2 / 256 ** 2,
            "crops_per_s": sum(speeds) / len(speeds) if speeds else None}


def table(grid: Grid, runs: list[Run], results: dict, facts: dict) -> tuple[str, list[dict]]:
    """Markdown and rows: per run and rate point the metrics, per run its BD-rates against
    the (first) control in PSNR and DISTS, its size, cost and speed."""
    control = runs[0]
    rows, lines = [], []
    for data in grid.data:
        lines += [f"## {data.name}", "",
                  "| run | tokens | bpp | PSNR | low-pass PSNR | MS-SSIM | DISTS | LPIPS | enc s | dec s |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for run in runs:
            path = results.get((run.name, data))
            if path is None:
                continue
            s = json.loads(path.read_text())
            res = s["results"]
            for p, point in enumerate(s["points"]):
                def v(key, fmt, res=res, p=p):
                    vals = res.get(key)
                    return format(vals[p], fmt) if vals else "–"
                lines.append(f"| {run.name} | {point.get('tokens', '')} | {v('bpp', '.4f')} | {v('psnr-rgb', '.2f')} | "
                             f"{v('lowpass-psnr', '.2f')} | {v('ms-ssim-rgb', '.4f')} | {v('dists', '.4f')} | "
                             f"{v('lpips', '.4f')} | {v('encoding_time', '.3f')} | {v('decoding_time', '.3f')} |")
                rows.append({"data": data.name, "run": run.name, **point,
                             **{k: res[k][p] for k in res if isinstance(res[k], list)}})
        lines += ["", "| run | BD-rate PSNR | BD-rate DISTS | params | MACs/px | train crops/s |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        anchor = results.get((control.name, data))
        for run in runs:
            path = results.get((run.name, data))
            if path is None:
                continue
            bd = {}
            for metric in ("psnr", "dists"):
                a, t = (load(anchor), load(path)) if anchor else (None, None)
                if a is None or not (a.has(metric) and t.has(metric)):
                    bd[metric] = "–"                      # not measured
                    continue
                try:
                    bd[metric] = f"{bd_rate(a, t, metric)[0]:+.1f} %"
                except MrtlabError as e:                  # e.g. curves that do not overlap
                    why = str(e).replace(f"{path}: ", "").replace(f"{anchor}: ", "")
                    bd[metric] = f"n/a: {why.split(':')[0][:60]}"
            f = facts.get(run.name, {})
            speed = f"{f['crops_per_s']:.2f}" if f.get("crops_per_s") else "–"
            lines.append(f"| {run.name} | {bd['psnr']} | {bd['dists']} | {f.get('params', 0) / 1e6:.2f} M | "
                         f"{f.get('macs_per_pixel', 0) / 1e3:.1f} k | {speed} |")
            rows.append({"data": data.name, "run": run.name, "bd_rate_psnr": bd["psnr"], "bd_rate_dists": bd["dists"],
                         **f})
        lines.append("")
    budget = f"budget {grid.budget:g} process CPU-seconds per run" if grid.budget else "the base recipe's schedule"
    values = ", ".join(f"{a}={v}" for a, v in grid.control.items())
    head = [f"# Ablation: {grid.path}", "",
            f"Base recipe `{grid.recipe}`, {budget}, control: {values} (seeds {', '.join(map(str, grid.seeds))}); "
            f"BD-rates against `{control.name}` (negative: fewer bits; the other control seeds show the spread a "
            f"difference must exceed). Made by `mrtlab ablate {grid.path}`.", ""]
    return "\n".join(head + lines), rows


def run_grid(path: str | Path, jobs: int | None = None, progress: bool = True, log=print) -> dict:
    """Train, evaluate, tabulate; returns the output paths and the failures."""
    grid = load_grid(path)
    if jobs:
        grid.jobs = jobs
    runs = runs_of(grid)
    failures = []
    bar = tqdm(total=len(runs), desc="ablate: train", unit="run", file=sys.stderr, disable=not progress)
    with ThreadPoolExecutor(max_workers=grid.jobs) as pool:
        for failure in pool.map(lambda r: train_run(grid, r, log), runs):
            bar.update()
            if failure:
                failures.append(failure)
                log(f"mrtlab: error: {failure}")
    bar.close()
    trained = [r for r in runs if (r.folder / DONE).is_file()]
    results, facts = {}, {}
    bar = tqdm(total=len(trained) * len(grid.data), desc="ablate: eval", unit="eval", file=sys.stderr,
               disable=not progress)
    for run in trained:
        try:
            facts[run.name] = model_facts(run)
            for data in grid.data:
                results[(run.name, data)] = eval_run(grid, run, data)
                bar.update()
        except MrtlabError as e:
            failures.append(str(e))
            log(f"mrtlab: error: {e}")
    bar.close()
    md, rows = table(grid, trained, results, facts)
    out = grid.out
    paths = {"markdown": write_atomic(out / "table.md", md, force=True),
             "json": write_atomic(out / "table.json", json.dumps(rows, indent=1), force=True)}
    buf = io.StringIO()
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k not in ("data", "run", "tokens"), k))
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    paths["csv"] = write_atomic(out / "table.csv", buf.getvalue(), force=True)
    paths["plots"] = plots(grid, trained, results)
    return {"paths": paths, "failures": failures, "runs": len(runs), "trained": len(trained)}


def plots(grid: Grid, runs: list[Run], results: dict) -> list[Path]:
    out = []
    for data in grid.data:
        curves = []
        for run in runs:
            if (run.name, data) in results:
                c = load(results[(run.name, data)])
                c.name = run.name
                curves.append(c)
        if curves:
            out.append(plot(curves, grid.out / f"rd-{data.name}.png",
                            [m for m in ("psnr", "dists", "lowpass-psnr") if all(c.has(m) for c in curves)],
                            title=f"{grid.path.stem} on {data.name}"))
    return out
