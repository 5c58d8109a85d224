"""Kernels: pure-PyTorch chunked forms for training/encoding, step forms for decoding."""
from .wkv6 import wkv6_chunk, wkv6_recurrent, wkv6_step

__all__ = ["wkv6_chunk", "wkv6_recurrent", "wkv6_step"]
