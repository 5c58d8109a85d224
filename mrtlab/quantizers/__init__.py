"""Quantizers: continuous latent ⇄ per-channel symbol alphabets."""
from .base import Quantizer, ste_round
from .fsq import FSQ
from .scalar import ScalarQuantizer

__all__ = ["Quantizer", "ste_round", "FSQ", "ScalarQuantizer"]
