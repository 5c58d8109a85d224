"""The fla path of the ops against mrtlab's CPU ops: each op through its dispatch, forward
and backward, compared with the PyTorch chunked form in float64 on CPU.

On CUDA this checks the real kernels on the GPU; on CPU it needs Triton's interpreter
(``MRTLAB_FLA_INTERPRET=1``, :mod:`mrtlab.ops.interpret`), where the same kernels run on
NumPy. Each check returns a row: the largest error of the output, the final state and the
gradient of every input, each relative to the largest value of its reference.

Tolerances: float32 in the interpreter computes in float32 throughout (errors ~2e-6; 1e-4
leaves room for the summation order); on a GPU, fla's ``tl.dot`` rounds float32 inputs to
TF32 (10-bit mantissa, relative 5e-4 per product), so 1e-2. bfloat16 rounds the output and
each stored intermediate to 8 bits (relative 2e-3 each); the reference starts from the same
rounded inputs, so what remains is a few such roundings (measured 3-5e-3): 2e-2.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

OPS = ["wkv6", "wkv7", "gla", "ssd"]


@dataclass(frozen=True)
class OpCase:
    op: str
    T: int = 70                     # > 64, not a multiple of fla's chunks: two chunks, one partial
    initial_state: bool = True
    final_state: bool = True
    dtype: str = "float32"
    B: int = 1
    H: int = 2
    K: int = 16
    V: int = 32                     # ≠ K, so a transposed state cannot pass

    @property
    def name(self) -> str:
        return (f"{self.op} T={self.T} B={self.B} {self.dtype}"
                f"{' h0' if self.initial_state else ''}{' hT' if self.final_state else ''}")


def default_cases() -> list[OpCase]:
    """Per op: fp32 with and without an initial state, bf16, and fp32 without a final state."""
    return [c for op in OPS for c in (OpCase(op), OpCase(op, initial_state=False),
                                      OpCase(op, dtype="bfloat16"),
                                      OpCase(op, initial_state=False, final_state=False))]


def slow_cases() -> list[OpCase]:
    """Longer sequences (several chunks, then one partial), two sequences, bf16 with state."""
    return [c for op in OPS for c in (OpCase(op, T=200, B=2),
                                      OpCase(op, T=200, B=2, dtype="bfloat16",
                                             initial_state=False))]


def tolerance(dtype: str, device: str) -> float:
    """The largest error allowed, relative to the reference's largest value."""
    if dtype == "bfloat16":
        return 2e-2
    return 1e-2 if device == "cuda" else 1e-4


def op_inputs(case: OpCase, gen: torch.Generator) -> tuple[list[torch.Tensor], dict]:
    """float64 CPU inputs shaped and ranged as the mixers make them, in the op's argument
    order, and the op's keyword arguments (the scale the mixers pass)."""
    B, H, T, K, V = case.B, case.H, case.T, case.K, case.V

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    q, k, v = randn(B, H, T, K), randn(B, H, T, K), randn(B, H, T, V)
    if case.op == "wkv6":        # RWKV-6: log decay -exp(w0 + lora), w0 in [-6, -1] at init
        w = -torch.exp(torch.rand(B, H, T, K, generator=gen, dtype=torch.float64) * 6.5 - 6)
        return [q, k, v, w, 0.5 * randn(H, K)], {"scale": K ** -0.5}
    if case.op == "wkv7":        # RWKV-7: log decay in [-0.61, 0], a = -kk, b = kk * iclr
        w = -0.606531 * torch.sigmoid(randn(B, H, T, K))
        kk = F.normalize(randn(B, H, T, K), dim=-1)
        iclr = torch.sigmoid(randn(B, H, T, K))
        return [q, w, k, v, -kk, kk * iclr], {"scale": 1.0}
    if case.op == "gla":         # GLA: logsigmoid / 16 in the mixer; stronger here
        return [q, k, v, F.logsigmoid(randn(B, H, T, K))], {"scale": K ** -0.5}
    if case.op == "ssd":         # Mamba-2: -A dt per head, A in [1, 16], dt = softplus(...)
        A = torch.exp(torch.rand(B, H, 1, generator=gen, dtype=torch.float64) * math.log(16))
        return [q, k, v, -A * F.softplus(randn(B, H, T) - 2)], {"scale": 1.0}
    raise ValueError(f"unknown op {case.op!r}")


def op_functions(op: str):
    """(the dispatching op, mrtlab's PyTorch chunked form)."""
    import importlib
    mod = importlib.import_module(f"mrtlab.ops.{op}")
    return getattr(mod, op), getattr(mod, f"{op}_chunk")


def rel_error(x: torch.Tensor | None, ref: torch.Tensor) -> float:
    if x is None:
        return math.inf
    x, ref = x.detach().double().cpu(), ref.detach().double()
    return float((x - ref).abs().max() / ref.abs().max().clamp_min(1e-30))


def run_op(fn, inputs, kwargs, h0, case: OpCase):
    """Forward and backward through ``fn``: (output, final state, gradients of inputs and h0)."""
    inputs = [x.detach().requires_grad_() for x in inputs]
    h0 = h0.detach().requires_grad_() if h0 is not None else None
    o, state = fn(*inputs, **kwargs, initial_state=h0, output_final_state=case.final_state)
    return o, state, inputs, h0


def check_op(case: OpCase, device: str = "cpu", seed: int = 0) -> dict:
    """One case through the dispatch on ``device`` against the chunked form in float64."""
    gen = torch.Generator().manual_seed(seed)
    inputs, kwargs = op_inputs(case, gen)
    dtype = getattr(torch, case.dtype)
    inputs = [x.to(dtype).double() for x in inputs]   # the reference starts from the same values
    B, H, K, V = case.B, case.H, case.K, case.V
    h0 = 0.5 * torch.randn(B, H, K, V, generator=gen, dtype=torch.float64) if case.initial_state else None
    do = torch.randn(B, H, case.T, V, generator=gen, dtype=torch.float64)
    dh = torch.randn(B, H, K, V, generator=gen, dtype=torch.float64)
    fast, reference = op_functions(case.op)

    t0 = time.perf_counter()
    # the state stays float32 under bf16 inputs, as fla keeps it
    o, state, xs, h = run_op(fast, [x.to(device, dtype) for x in inputs], kwargs,
                             None if h0 is None else h0.to(device, torch.float32), case)
    loss = (o.double() * do.to(device)).sum()
    if case.final_state and state is not None:
        loss = loss + (state.double() * dh.to(device)).sum()
    loss.backward()
    seconds = time.perf_counter() - t0

    ro, rstate, rxs, rh = run_op(reference, inputs, kwargs, h0, case)
    rloss = (ro * do).sum() + ((rstate * dh).sum() if case.final_state else 0)
    rloss.backward()

    errors = {"o": rel_error(o, ro)}
    if case.final_state:
        errors["state"] = rel_error(state, rstate)
    problems = [] if case.final_state or state is None else ["a final state nobody asked for"]
    names = {"wkv6": "rkvwu", "wkv7": "rwkvab", "gla": "qkvg", "ssd": "qkvg"}[case.op]
    for name, x, rx in zip(names, xs, rxs):
        errors[f"d{name}"] = rel_error(x.grad, rx.grad)
    if h0 is not None:
        errors["dh0"] = rel_error(h.grad, rh.grad)
    tol = tolerance(case.dtype, device)
    for key, err in errors.items():
        if not err <= tol:
            problems.append(f"{key} {err:.2e} > {tol:.0e}")
    return {"check": case.name, "op": case.op, "dtype": case.dtype, "device": device,
            "passed": not problems, "problems": problems,
            "errors": {k: round(v, 8) for k, v in errors.items()}, "seconds": round(seconds, 3)}
