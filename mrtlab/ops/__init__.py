"""Kernels, laid out as in flash-linear-attention (``from mrtlab.ops.wkv6 import wkv6``).

``<op>.py`` holds the op (``wkv6``, ``wkv7``, ``gla``, ``ssd``, ``attention``), which hands
CUDA tensors to fla's Triton kernels when it can (``dispatch.py``), and its chunked
pure-PyTorch form ``<op>_chunk``, for training and encoding. ``naive.py`` holds the naive
forms, one step per token, that the tests and the benchmark check the chunked forms
against; ``utils.py`` what the chunked forms share. Every op takes ``[B, H, T, K]`` and
``scale=None`` meaning ``1/sqrt(K)``, as fla. The functions are not re-exported here, so
that ``mrtlab.ops.wkv6`` stays the module.
"""
