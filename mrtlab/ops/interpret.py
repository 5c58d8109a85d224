"""fla's Triton kernels on CPU tensors, in Triton's interpreter: the CUDA path of the ops, run
without a GPU, for the tests and ``mrtlab bench gpu`` on a machine without CUDA.

A test switch, never on in a user's run: with ``MRTLAB_FLA_INTERPRET=1`` in the environment,
:func:`mrtlab.ops.dispatch.use_fla` accepts CPU tensors and calls :func:`install` before fla is
first imported. Triton must run interpreted (``TRITON_INTERPRET=1``), which it reads when a
kernel is decorated, so :func:`install` sets it itself when Triton is not imported yet. fla's
code is never changed; two things in Triton's interpreter stand in for what a GPU provides:

- the autotuner times each candidate config through the GPU driver; here every config
  times the same, so it takes the first one;
- in a compiled kernel a ``for i in range(n)`` index is a Triton scalar, in the interpreter a
  Python int (fla calls ``i.to(tl.int64)`` on it); for the duration of each launch, the
  kernel's globals get a ``range`` that yields Triton scalars;
- the interpreter swaps ``tl``'s builtins for its own during a launch, but a module that
  bound one to a name of its own at import (fla's ``gather = tl.gather``) still holds the
  original, which refuses to run outside a compiler; during a launch such names look the
  builtin up in ``tl`` when called.
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

    autotuner.Autotuner.do_bench = property(constant_timing)
    interpreter.GridExecutor.__call__ = with_launch_globals(interpreter.GridExecutor.__call__)
    interpreter.InterpretedFunction.__call__ = with_launch_globals(
        interpreter.InterpretedFunction.__call__)
    _installed = True
    return True


_absent = object()
