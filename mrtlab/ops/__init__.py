"""Kernels, one module per op (``from mrtlab.ops.wkv6 import wkv6``).

Each op has a chunked pure-PyTorch form for training and encoding, a step form for
sequential decoding, and an entry point that dispatches to fla on CUDA (``dispatch.py``).
The functions are not re-exported here, so that ``mrtlab.ops.wkv6`` stays the module.
"""
