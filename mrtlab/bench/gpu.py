"""``mrtlab bench gpu``: the first command on a CUDA machine.

It checks each op's fla kernel and a training step of every global mixer and of the RCM
through fla against mrtlab's CPU path (:mod:`mrtlab.bench.fla_checks`), then trains a few
steps of a recipe (the paper's by default, scaled by flags) under Accelerate in bf16 and
times each global mixer's forward and forward+backward. Without CUDA it runs the same in a
child process with fla's kernels in Triton's interpreter (:mod:`mrtlab.ops.interpret`) at
tiny sizes: what the test suite runs.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

from ..errors import MrtlabError

MIXERS = ["rwkv6", "rwkv7", "gla", "mamba2"]
RECIPE = "recipes/mrt/paper.yaml"


@dataclass
class Settings:
    recipe: str = RECIPE
    steps: int = 12
    batch_size: int = 16
    crop: int = 256
    dim: int | None = None          # the recipe's model width unless given
    layers: int | None = None       # encoder, decoder and RCM layers unless given
    tokens: int = 4096              # T of the mixer timings
    full: bool = False              # every check (slow in the interpreter)


def cpu_settings(s: Settings) -> Settings:
    """The same run at sizes Triton's interpreter gets through in about a minute: one step
    on one 64×64 crop, a model 48 wide with one layer of each kind, mixers over 16 windows."""
    return Settings(s.recipe, steps=1, batch_size=1, crop=64, dim=48, layers=1, tokens=16,
                    full=s.full)


def checks(device: str, full: bool, progress) -> list[dict]:
    from . import fla_checks as fc

    if device == "cuda" or full:
        cases = fc.default_cases() + fc.slow_cases()
        steps = [(p, a, 72) for p in fc.STEP_PARTS for a in (False, True)]
    else:
        cases = fc.default_cases()
        steps = [(p, False, 40) for p in fc.STEP_PARTS] + [("mamba2", True, 40)]
    jobs = ([(c.name, lambda c=c: fc.check_op(c, device)) for c in cases]
            + [(f"step {p}{' bf16-autocast' if a else ''}",
                lambda p=p, a=a, crop=crop: fc.check_step(p, device, autocast=a, crop=crop))
               for p, a, crop in steps])
    rows = []
    for name, job in jobs:
        try:
            row = job()
        except Exception as e:  # a kernel that fails to run is a failed check, not the end
            row = {"check": name, "passed": False,
                   "problems": [f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"]}
        progress(f"{'ok  ' if row['passed'] else 'FAIL'} {row['check']}"
                 + ("" if row["passed"] else f": {'; '.join(row['problems'])}"))
        rows.append(row)
    return rows


def scaled_model(s: Settings) -> dict:
    from ..config import load_recipe

    model = copy.deepcopy(load_recipe(s.recipe)["model"])
    if s.dim is not None:
        model["dim"] = s.dim
    if s.layers is not None:
        model["encoder_layers"] = model["decoder_layers"] = s.layers
        entropy = model.get("entropy_model", {}).get("init_args", {})
        if "layers" in entropy:
            entropy["layers"] = s.layers
    return model


def training_rows(s: Settings, device: str) -> list[dict]:
    """``s.steps`` stage-1 steps (on CUDA after one warm-up step) of the recipe's model under
    Accelerate in bf16: crops/s and peak GPU memory."""
    import torch
    import torch.nn.functional as F
    from accelerate import Accelerator

    from ..config import build_model
    from ..train.stages import CodecStep

    torch.manual_seed(0)
    acc = Accelerator(mixed_precision="bf16", cpu=device == "cpu")
    model = build_model(scaled_model(s))
    step_mod = CodecStep(model, stage=1, rate_weighted=True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    step_mod, opt = acc.prepare(step_mod, opt)
    x = torch.rand(s.batch_size, 3, s.crop, s.crop, device=acc.device)

    def step():
        with acc.autocast():
            out = step_mod(x)
            loss = F.mse_loss(out["x_hat"].float(), x) + out["em_bits"].float().sum() / x[:, 0].numel()
        acc.backward(loss)
        opt.step()
        opt.zero_grad(set_to_none=True)

    if device == "cuda":  # one warm-up step (autotuning, allocator); the interpreter needs none
        step()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(s.steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2 ** 20 if device == "cuda" else None
    return [{"check": f"train {s.recipe} dim={model.dim} crop={s.crop} batch={s.batch_size}",
             "passed": None, "crops_per_s": round(s.batch_size * s.steps / seconds, 3),
             "peak_mem_mb": None if peak is None else round(peak, 1), "seconds": round(seconds, 3)}]


def mixer_rows(s: Settings, device: str, dim: int) -> list[dict]:
    """Each global mixer's forward and forward+backward tokens/s on a square grid of about
    ``s.tokens`` windows, in bf16 autocast, with the recipe's width."""
    import math

    import torch

    from ..mixers import GlobalMixer  # noqa: F401  (registers the mixers)
    from ..registry import lookup
    from .mixers import timed

    side = math.isqrt(s.tokens)
    rows = []
    for name in MIXERS:
        torch.manual_seed(0)
        module = lookup("global_mixer", name)(dim).to(device)
        x = torch.randn(1, side, side, dim, device=device, requires_grad=True)
        for kind, fn in (("fwd", lambda m=module, x=x: m(x)),
                         ("fwd+bwd", lambda m=module, x=x: m(x).float().square().mean().backward())):
            with torch.autocast(device, torch.bfloat16), torch.set_grad_enabled(kind != "fwd"):
                if device == "cuda":
                    seconds = timed(fn, 3, torch.device(device))
                else:  # the interpreter: once, no warm-up
                    t0 = time.perf_counter()
                    fn()
                    seconds = time.perf_counter() - t0
            rows.append({"check": f"mixer {name} {kind} T={side * side} D={dim}", "passed": None,
                         "tokens_per_s": round(side * side / seconds, 1),
                         "seconds": round(seconds, 4)})
    return rows


def run(s: Settings, progress=print) -> list[dict]:
    import torch

    from ..ops import interpret

    scaled_model(s)  # a bad recipe or override fails here, before any work
    if not torch.cuda.is_available() and not interpret.requested():
        return run_interpreted(s, progress)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        s = cpu_settings(s)
    rows = checks(device, s.full, progress)
    rows += training_rows(s, device)
    progress(f"     {rows[-1]['check']}: {rows[-1]['crops_per_s']} crops/s")
    rows += mixer_rows(s, device, scaled_model(s)["dim"])
    return rows


def run_interpreted(s: Settings, progress) -> list[dict]:
    """:func:`run` in a child process with fla's kernels in Triton's interpreter (the switch
    must be in the environment before triton is imported); its progress passes through."""
    env = dict(os.environ, MRTLAB_FLA_INTERPRET="1", TRITON_INTERPRET="1")
    env.pop("MRTLAB_NO_FLA", None)
    proc = subprocess.Popen([sys.executable, "-m", "mrtlab.bench.gpu", json.dumps(asdict(s))],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    other = []
    for line in proc.stderr:
        if line.startswith(("ok  ", "FAIL", "     ")):
            progress(line.rstrip())
        else:
            other.append(line.rstrip())
    out = proc.stdout.read()
    if proc.wait():
        raise MrtlabError(f"the interpreted run failed: {(other or ['?'])[-1]}")
    return json.loads(out)


def table(rows: list[dict]) -> str:
    lines = [f"{'check':<58} {'result':>20}"]
    for r in rows:
        if r["passed"] is not None:
            result = "pass" if r["passed"] else "FAIL"
        elif "crops_per_s" in r:
            mem = "" if r["peak_mem_mb"] is None else f", {r['peak_mem_mb']:.0f} MB"
            result = f"{r['crops_per_s']:.2f} crops/s{mem}"
        else:
            result = f"{r['tokens_per_s']:.0f} tokens/s"
        lines.append(f"{r['check']:<58} {result:>20}")
    failed = sum(r["passed"] is False for r in rows)
    lines.append(f"{failed} of {sum(r['passed'] is not None for r in rows)} checks failed")
    return "\n".join(lines)


if __name__ == "__main__":  # the child of run_interpreted
    import warnings
    warnings.filterwarnings("ignore")  # fla warns that Triton has no GPU here
    result = run(Settings(**json.loads(sys.argv[1])),
                 progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(result))
