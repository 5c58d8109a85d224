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

import contextlib
import copy
import math
import os
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
    """Per op: fp32 with an initial state, bf16, and fp32 with neither state."""
    return [c for op in OPS for c in (OpCase(op), OpCase(op, dtype="bfloat16"),
                                      OpCase(op, initial_state=False, final_state=False))]


def slow_cases() -> list[OpCase]:
    """fp32 with only a final state; longer sequences (several chunks, then one partial)
    of two sequences, fp32 with states and bf16 without an initial one."""
    return [c for op in OPS for c in (OpCase(op, initial_state=False),
                                      OpCase(op, T=200, B=2),
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


# -- one training step of MRT through the fla path against the PyTorch path -------------------

STEP_PARTS = ["rwkv6", "rwkv7", "gla", "mamba2", "rcm"]


def step_config(part: str, dim: int = 32, heads: int = 2) -> dict:
    """A small MRT whose global mixer (or, for ``rcm``, entropy model) runs the fla path;
    heads of 16 channels (fla's smallest tile), two scan orders (one flipped, one transposed)."""
    mixer = "rwkv6" if part == "rcm" else part
    init = {"heads": heads, "scans": ["rows", "cols_reversed"]}
    if mixer in ("rwkv6", "rwkv7", "gla"):
        init["decay_rank" if mixer != "gla" else "gate_rank"] = 8
    if mixer == "mamba2":
        init["state"] = 16
    entropy = ({"class_path": "rcm", "init_args": {"dim": dim, "layers": 1, "heads": heads}}
               if part == "rcm" else {"class_path": "factorized"})
    return {
        "dim": dim, "latent_tokens": 2, "encoder_layers": 1, "decoder_layers": 1,
        "tokenizer": {"class_path": "patch_window",
                      "init_args": {"patch": 4, "window": 2, "refine_channels": 8}},
        "local_mixer": {"class_path": "transformer", "init_args": {"heads": 2}},
        "global_mixer": {"class_path": mixer, "init_args": init},
        "quantizer": {"class_path": "fsq", "init_args": {"levels": [5, 3, 4]}},
        "entropy_model": entropy,
    }


@contextlib.contextmanager
def fla_enabled(on: bool):
    """The dispatch's own switch (``MRTLAB_NO_FLA``) for the duration of a block."""
    previous = os.environ.pop("MRTLAB_NO_FLA", None)
    if not on:
        os.environ["MRTLAB_NO_FLA"] = "1"
    try:
        yield
    finally:
        os.environ.pop("MRTLAB_NO_FLA", None)
        if previous is not None:
            os.environ["MRTLAB_NO_FLA"] = previous


def training_step(model, x: torch.Tensor, seed: int, autocast: bool) -> tuple[torch.Tensor, dict]:
    """Stage-1 loss (MSE + rate of the symbols, with gradient to the encoder, + the entropy
    model's own bits) and every parameter's gradient."""
    from ..train.stages import CodecStep

    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)            # the same draws (quantization noise, ...) on both paths
    with torch.autocast(x.device.type, torch.bfloat16, enabled=autocast):
        out = CodecStep(model, stage=1, rate_weighted=True)(x)
        pixels = x.shape[0] * x.shape[2] * x.shape[3]
        loss = (F.mse_loss(out["x_hat"].float(), x)
                + (out["em_bits"].float().sum() + 0.02 * out["bits"].float().sum()) / pixels)
    loss.backward()
    grads = {n: p.grad.detach().double().cpu() for n, p in model.named_parameters()
             if p.grad is not None}
    return loss.detach().double().cpu(), grads


def check_step(part: str, device: str = "cpu", autocast: bool = False, crop: int = 40,
               seed: int = 0) -> dict:
    """One training step with the fla path on ``device`` against the PyTorch path on CPU,
    from the same weights and crop: the loss and every parameter's gradient. ``crop`` 40
    makes 5×5 windows (sequences of 25); 72 makes 81, two of fla's chunks, one partial.

    In float32 the two must agree (:func:`tolerance`). Under bf16 autocast both paths round
    different intermediates to bf16, so each is measured against the float32 step: the fla
    path must come about as close to it as the PyTorch path does (3× its error + 5e-2: bf16
    noise moves single gradients by a few 1e-2, and the PyTorch path's own errors reach 0.45
    on the RCM's decay weights; a wrong layout, scale or sign is off by order 1)."""
    from ..config import build_model

    torch.manual_seed(seed)
    reference = build_model(step_config(part)).train()
    with torch.no_grad():  # zero-initialised projections would hide the mixers from the loss
        for p in reference.parameters():
            if not p.any():
                p.normal_(0, 0.1)
    x = torch.rand(1, 3, crop, crop, generator=torch.Generator().manual_seed(seed))
    with fla_enabled(False):
        ref = training_step(reference, x, seed, autocast=False)
        plain = training_step(reference, x, seed, autocast=True) if autocast else None
    model = copy.deepcopy(reference).to(device)
    t0 = time.perf_counter()
    with fla_enabled(True):
        fast = training_step(model, x.to(device), seed, autocast)
    seconds = time.perf_counter() - t0

    def step_errors(step):
        loss, grads = step
        errors = {"loss": rel_error(loss, ref[0])}
        errors.update({f"d{name}": rel_error(grads.get(name), g) for name, g in ref[1].items()})
        return errors

    errors = step_errors(fast)
    if autocast:
        allowed = {k: 3 * e + 5e-2 for k, e in step_errors(plain).items()}
    else:
        allowed = dict.fromkeys(errors, tolerance("float32", device))
    problems = [f"{k} {e:.2e} > {allowed[k]:.1e}" for k, e in errors.items() if not e <= allowed[k]]
    if set(fast[1]) != set(ref[1]):
        problems.append(f"gradients of different parameters: {sorted(set(fast[1]) ^ set(ref[1]))}")
    worst = max(errors, key=lambda k: errors[k] / allowed[k])
    return {"check": f"step {part} crop={crop}{' bf16-autocast' if autocast else ''}",
            "op": part, "dtype": "bfloat16" if autocast else "float32", "device": device,
            "passed": not problems, "problems": problems,
            "errors": {"loss": round(errors["loss"], 8), "worst": worst,
                       "worst_error": round(errors[worst], 8),
                       "worst_allowed": round(allowed[worst], 8)},
            "seconds": round(seconds, 3)}
