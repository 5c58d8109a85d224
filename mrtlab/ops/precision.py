"""``train.mixed_precision: auto``: bf16 where it is fast, fp32 where it is not.

On a GPU with bf16 support, bf16. On a CPU it depends on the chip: with native bf16
instructions (AVX-512 BF16, AMX) bf16 matrix products ran 1.8–3.6× faster than fp32 on this
project's machines; without them (AVX2 only) 50× slower. So the CPU's flags are read and a
short probe times both; the choice and the reason go to the training log's first line.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

BF16_FLAGS = ("avx512_bf16", "amx_bf16")
PROBE_SIDE = 512       # one 512² matrix product: ~0.3 GFLOP, a few ms
MIN_SPEEDUP = 1.2      # bf16 must beat fp32 by this much to be worth its rounding


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def bf16_speedup(repeat: int = 7) -> float:
    """fp32 time / bf16 time of one matrix product, the best of ``repeat`` interleaved runs
    of each (interleaved, so that another job on the machine slows both alike)."""
    a = torch.randn(PROBE_SIDE, PROBE_SIDE)
    best = {torch.float32: float("inf"), torch.bfloat16: float("inf")}
    mats = {dt: a.to(dt) for dt in best}
    for dt in best:
        mats[dt] @ mats[dt]  # first call: kernel selection
    for _ in range(repeat):
        for dt in best:
            t0 = time.perf_counter()
            mats[dt] @ mats[dt]
            best[dt] = min(best[dt], time.perf_counter() - t0)
    return best[torch.float32] / best[torch.bfloat16]


def choose(setting: str, device: torch.device) -> tuple[str, str]:
    """``(precision, reason)`` for a ``train.mixed_precision`` setting; only ``auto`` is decided
    here, any other value is kept as given."""
    if setting != "auto":
        return setting, "as set in the recipe"
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16", "CUDA device with bf16 support"
        return "no", "CUDA device without bf16 support"
    native = sorted(cpu_flags() & set(BF16_FLAGS))
    if not native:
        return "no", "CPU without native bf16 (no avx512_bf16/amx_bf16 flag)"
    speedup = bf16_speedup()
    if speedup < MIN_SPEEDUP:
        return "no", f"CPU has {'/'.join(native)} but bf16 matmul is only {speedup:.1f}× fp32"
    return "bf16", f"CPU has {'/'.join(native)}; bf16 matmul {speedup:.1f}× fp32"
