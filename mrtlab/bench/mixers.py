"""``mrtlab bench mixers``: throughput, peak memory and scaling of every global mixer.

Each (mixer, T) runs in a fresh subprocess, so that its peak memory (CUDA: the allocator's
peak; CPU: the growth of the process's peak RSS over its state before the first pass) is
its own. T windows form a square grid; batch 1.
"""
from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
import time

import numpy as np

from .. import plugins

MIXERS = ["rwkv6", "rwkv7", "mamba2", "gla", "attention", "identity"]
LENGTHS = [256, 1024, 4096, 16384]
OPS = ["wkv6", "wkv7", "gla", "ssd"]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, repeat: int, device) -> float:
    """Median wall time of ``repeat`` runs after one warm-up run."""
    import torch

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()
    fn()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def measure(mixer: str, T: int, dim: int, repeat: int, device: str) -> list[dict]:
    """One (mixer, T): forward and forward+backward rows."""
    import torch

    from ..mixers import GlobalMixer  # noqa: F401  (registers the mixers)
    from ..registry import lookup

    torch.manual_seed(0)
    dev = torch.device(device)
    side = math.isqrt(T)
    module = lookup("global_mixer", mixer)(dim).to(dev)
    x = torch.randn(1, side, side, dim, device=dev, requires_grad=True)
    rows = []
    for name, fn in (("fwd", lambda: module(x)),
                     ("fwd+bwd", lambda: module(x).square().mean().backward())):
        base = rss_mb()
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated() / 2 ** 20
        grad = torch.enable_grad() if name == "fwd+bwd" else torch.no_grad()
        with grad:
            seconds = timed(fn, repeat, dev)
        peak = (torch.cuda.max_memory_allocated() / 2 ** 20 if dev.type == "cuda" else rss_mb()) - base
        rows.append({"mixer": mixer, "T": T, "D": dim, "pass": name, "seconds": seconds,
                     "tokens_per_s": T / seconds, "peak_mem_mb": round(max(peak, 0.0), 1)})
    return rows


def measure_ops(T: int, repeat: int) -> list[dict]:
    """Chunked vs naive (step-by-step) forward of each op at B=1, H=4, K=V=64 (CPU)."""
    import importlib

    import torch

    from ..ops import naive

    torch.manual_seed(0)
    B, H, K = 1, 4, 64
    r, k, v = (torch.randn(B, H, T, K) for _ in range(3))
    logw = -torch.exp(torch.randn(B, H, T, K) - 2)
    kk = torch.nn.functional.normalize(torch.randn(B, H, T, K), dim=-1)
    eta = torch.rand(B, H, T, K)
    args = {
        "wkv6": (r, k, v, logw, torch.randn(H, K)),
        "wkv7": (r, logw, k, v, -kk, kk * eta),
        "gla": (r, k, v, logw),
        "ssd": (r, k, v, -torch.rand(B, H, T)),
    }
    rows = []
    with torch.no_grad():
        for op in OPS:
            chunk = getattr(importlib.import_module(f"mrtlab.ops.{op}"), f"{op}_chunk")
            for form, fn in (("chunk", chunk), ("recurrent", getattr(naive, f"{op}_recurrent"))):
                seconds = timed(lambda fn=fn, a=args[op]: fn(*a), repeat if form == "chunk" else 1,
                                torch.device("cpu"))
                rows.append({"op": op, "form": form, "T": T, "seconds": seconds, "tokens_per_s": T / seconds})
    return rows


def scaling_exponent(rows: list[dict], lo: int = 1024) -> float | None:
    """Least-squares slope of log(time) against log(T) over T ≥ ``lo``."""
    pts = [(math.log(r["T"]), math.log(r["seconds"])) for r in rows if r["T"] >= lo]
    if len(pts) < 2:
        return None
    x, y = np.array(pts).T
    return float(np.polyfit(x, y, 1)[0])


def all_mixers() -> list[str]:
    """The built-in global mixers, then those of loaded plugins (``--plugin``)."""
    from ..mixers import GlobalMixer  # noqa: F401  (registers the mixers)
    from ..registry import REGISTRIES

    return MIXERS + sorted(set(REGISTRIES["global_mixer"]) - set(MIXERS))


def run(mixers=MIXERS, lengths=LENGTHS, dim=256, repeat=3, device="cpu", budget=120.0,
        ops_T=4096, progress=print) -> list[dict]:
    from ..errors import MrtlabError

    known = all_mixers()
    if unknown := [m for m in mixers if m not in known]:
        raise MrtlabError(f"unknown global mixer {unknown[0]!r} (known: {', '.join(known)}; "
                          "a plugin's: --plugin MODULE)")
    rows = []
    for mixer in mixers:
        done = []
        for T in lengths:
            if done:  # skip what would take too long: quadratic mixers at large T
                prev = done[-1]
                k = 2.0 if mixer == "attention" else 1.0
                predicted = prev["seconds"] * (T / prev["T"]) ** k * (repeat + 1) * 3
                if predicted > budget:
                    progress(f"{mixer:>10} T={T:>6}: skipped (predicted {predicted:.0f} s > budget {budget:.0f} s)")
                    continue
            cmd = [sys.executable, "-m", "mrtlab.bench.mixers", "--worker", mixer, str(T), str(dim),
                   str(repeat), device]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=plugins.environment())
            if proc.returncode:
                progress(f"{mixer:>10} T={T:>6}: failed ({proc.stderr.strip().splitlines()[-1:]})")
                continue
            got = json.loads(proc.stdout.strip().splitlines()[-1])
            for r in got:
                progress(f"{mixer:>10} T={T:>6} {r['pass']:>8}: {r['tokens_per_s']:>10.0f} tokens/s "
                         f"{r['peak_mem_mb']:>8.1f} MB")
            rows += got
            done.append(got[1])
        for p in ("fwd", "fwd+bwd"):
            exp = scaling_exponent([r for r in rows if r["mixer"] == mixer and r["pass"] == p])
            if exp is not None:
                rows.append({"mixer": mixer, "pass": p, "scaling_exponent": round(exp, 3)})
    if ops_T:
        for r in measure_ops(ops_T, repeat):
            progress(f"op {r['op']:>5} {r['form']:>9} T={r['T']}: {r['tokens_per_s']:>10.0f} tokens/s")
            rows.append(r)
    return rows


def table(rows: list[dict]) -> str:
    lines = [f"{'mixer':<10} {'pass':<8} " + " ".join(f"{'T=' + str(T):>12}" for T in LENGTHS)
             + f" {'exponent':>9}   (tokens/s; peak MB)"]
    mixers = list(dict.fromkeys(r["mixer"] for r in rows if "mixer" in r))
    for m in mixers:
        for p in ("fwd", "fwd+bwd"):
            cells = []
            for T in LENGTHS:
                r = next((r for r in rows if r.get("mixer") == m and r.get("pass") == p and r.get("T") == T), None)
                cells.append(f"{r['tokens_per_s']:>7.0f};{r['peak_mem_mb']:<4.0f}" if r else f"{'—':>12}")
            e = next((r["scaling_exponent"] for r in rows if r.get("mixer") == m and r.get("pass") == p
                      and "scaling_exponent" in r), None)
            lines.append(f"{m:<10} {p:<8} " + " ".join(cells) + f" {e if e is not None else '—':>9}")
    ops = [r for r in rows if "op" in r]
    for op in dict.fromkeys(r["op"] for r in ops):
        c = next(r for r in ops if r["op"] == op and r["form"] == "chunk")
        s = next(r for r in ops if r["op"] == op and r["form"] == "recurrent")
        lines.append(f"op {op}: chunked forward {c['seconds'] * 1e3:.1f} ms, step-by-step "
                     f"{s['seconds'] * 1e3:.1f} ms at T={c['T']}: {s['seconds'] / c['seconds']:.1f}× faster")
    return "\n".join(lines)


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    _, _, mixer, T, dim, repeat, device = sys.argv
    plugins.load_all()   # the parent's, through $MRTLAB_PLUGINS
    print(json.dumps(measure(mixer, int(T), int(dim), int(repeat), device)))
