"""Entropy models of the 1-D symbol sequence (see docs/entropy_models.md)."""
from .base import EntropyModel, Layout, SymbolDecoder, SymbolEncoder, integer_pmfs, interpolated_bits, level_mask
from .factorized import FactorizedEntropyModel
from .hyperprior import Hyperprior
from .rcm import RCM
from .transformer_ar import TransformerAR

__all__ = ["EntropyModel", "Layout", "SymbolDecoder", "SymbolEncoder", "FactorizedEntropyModel",
           "Hyperprior", "RCM", "TransformerAR", "integer_pmfs", "interpolated_bits", "level_mask"]
