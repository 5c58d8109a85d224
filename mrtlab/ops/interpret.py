"""fla's Triton kernels on CPU tensors, in Triton's interpreter: the CUDA path of the ops, run
without a GPU, for the tests and ``mrtlab bench gpu`` on a machine without CUDA.

A test switch, never on in a user's run: with ``MRTLAB_FLA_INTERPRET=1`` in the environment,
:func:`mrtlab.ops.dispatch.use_fla` accepts CPU tensors and calls :func:`install` before fla is
first imported. Triton must run interpreted (``TRITON_INTERPRET=1``), which it reads when a
kernel is decorated, so :func:`install` sets it itself when Triton is not imported yet. fla's
code is never changed; four changes to Triton's interpreter stand in for what a GPU provides:

- the autotuner times each candidate config through the GPU driver; here every config
  times the same, so it takes the first one;
- in a compiled kernel a ``for i in range(n)`` index is a Triton scalar, in the interpreter a
  Python int (fla calls ``i.to(tl.int64)`` on it); for the duration of each launch, the
  kernel's globals get a ``range`` that yields Triton scalars;
- the interpreter swaps ``tl``'s builtins for its own during a launch, but a module that
  bound one to a name of its own at import (fla's ``gather = tl.gather``) still holds the
  original, which refuses to run outside a compiler; during a launch such names look the
  builtin up in ``tl`` when called;
- the interpreter stores bfloat16 as raw 16-bit integers and computes on those bits as if
  they were numbers; here a bfloat16 block holds float32 numbers rounded to bfloat16:
  loads widen the bits, stores and casts to bfloat16 round to nearest even, arithmetic
  between bfloat16 blocks rounds its result, dot products accumulate in float32 (as
  tensor cores do).
"""
from __future__ import annotations

import builtins
import functools
import os
import sys

SWITCH = "MRTLAB_FLA_INTERPRET"
_installed = False


def requested() -> bool:
    """True in a process started with ``MRTLAB_FLA_INTERPRET=1``."""
    return os.environ.get(SWITCH) == "1"


def install() -> bool:
    """Make Triton's interpreter run fla's kernels; idempotent. Returns True."""
    global _installed
    if _installed:
        return True
    if os.environ.get("TRITON_INTERPRET") != "1":
        if "triton" in sys.modules:
            raise RuntimeError(f"{SWITCH}=1 needs TRITON_INTERPRET=1 before triton is imported; "
                               "set both in the environment of a new process")
        os.environ["TRITON_INTERPRET"] = "1"
    import triton.language as tl
    from triton.runtime import autotuner, interpreter

    def constant_timing(self):
        return lambda kernel_call, quantiles: [1.0, 1.0, 1.0]

    def scalar_range(*bounds):
        ints = [int(b.handle.data.item()) if isinstance(b, tl.tensor) else int(b) for b in bounds]
        for i in builtins.range(*ints):
            yield tl.full((), i, tl.int32)

    tl_builtins = {id(f): name for name, f in vars(tl).items() if tl.core.is_builtin(f)}

    def late_bound(name):
        return lambda *args, **kwargs: getattr(tl, name)(*args, **kwargs)

    def with_launch_globals(call):
        @functools.wraps(call)
        def launch(self, *args, **kwargs):
            scope = self.fn.__globals__
            overrides = {"range": scalar_range}
            overrides.update({key: late_bound(tl_builtins[id(value)])
                              for key, value in scope.items() if id(value) in tl_builtins})
            previous = {key: scope.get(key, _absent) for key in overrides}
            scope.update(overrides)
            try:
                return call(self, *args, **kwargs)
            finally:
                for key, value in previous.items():
                    if value is _absent:
                        del scope[key]
                    else:
                        scope[key] = value
        return launch

    _emulate_bfloat16(interpreter, tl)
    autotuner.Autotuner.do_bench = property(constant_timing)
    interpreter.GridExecutor.__call__ = with_launch_globals(interpreter.GridExecutor.__call__)
    interpreter.InterpretedFunction.__call__ = with_launch_globals(
        interpreter.InterpretedFunction.__call__)
    _installed = True
    return True


_absent = object()


def _emulate_bfloat16(interpreter, tl) -> None:
    """bfloat16 blocks as float32 numpy arrays of bfloat16-rounded values (see above)."""
    import numpy as np
    import torch

    bf16 = tl.bfloat16
    TensorHandle, Builder = interpreter.TensorHandle, interpreter.InterpreterBuilder

    def rounded(x):           # float values → float32 values rounded to bfloat16 (RTNE)
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        return t.to(torch.bfloat16).float().numpy()

    def to_bits(x):
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        return t.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)

    def from_bits(bits):
        return (bits.astype(np.uint32) << 16).view(np.float32)

    np_dtype = interpreter._get_np_dtype
    interpreter._get_np_dtype = lambda t: (
        np.dtype(np.float32) if getattr(t, "scalar", t) == bf16
        and not isinstance(t, tl.pointer_type) else np_dtype(t))

    fits = interpreter._validate_np_data_size
    interpreter._validate_np_data_size = lambda x, t: t == bf16 or fits(x, t)

    masked_load, masked_store = Builder.create_masked_load, Builder.create_masked_store

    def load(self, ptrs, mask, other, *args):
        if ptrs.get_element_ty() != bf16:
            return masked_load(self, ptrs, mask, other, *args)
        other = np.zeros(ptrs.data.shape, np.uint16) if other is None else to_bits(other.data)
        bits = interpreter._interpreter.load(ptrs.data, mask.data, other, np.dtype(np.uint16))
        return TensorHandle(from_bits(bits), bf16)

    def store(self, ptrs, value, mask, *args):
        if value.dtype.scalar == bf16:
            value = TensorHandle(to_bits(value.data), tl.uint16)
        return masked_store(self, ptrs, value, mask, *args)

    def cast(self, src, dst_type, *rounding_mode):
        data = src.data.astype(np.float32 if dst_type.scalar == bf16 else np_dtype(dst_type))
        return TensorHandle(rounded(data) if dst_type.scalar == bf16 else data, dst_type.scalar)

    def either_bf16(original):
        def convert(self, src, dst_type, *rest):
            if bf16 in (src.dtype.scalar, dst_type.scalar):
                return cast(self, src, dst_type)
            return original(self, src, dst_type, *rest)
        return convert

    def rounding(original):
        def op(self, *args):
            out = original(self, *args)
            return TensorHandle(rounded(out.data), bf16) if out.dtype.scalar == bf16 else out
        return op

    abs_ = Builder.create_fabs
    Builder.create_masked_load, Builder.create_masked_store = load, store
    Builder.cast_impl = either_bf16(Builder.cast_impl)
    Builder.create_fp_to_fp = either_bf16(Builder.create_fp_to_fp)
    Builder.binary_op = rounding(Builder.binary_op)
    Builder.get_bf16 = lambda self, value: TensorHandle(rounded(np.array([value])), bf16)
    Builder.create_fabs = lambda self, arg: (TensorHandle(np.abs(arg.data), bf16)
                                             if arg.dtype.scalar == bf16 else abs_(self, arg))
