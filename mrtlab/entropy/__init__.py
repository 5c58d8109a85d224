"""Entropy models of the 1-D symbol sequence."""
from .base import EntropyModel, integer_pmf, interpolated_bits, level_mask
from .factorized import FactorizedEntropyModel

__all__ = ["EntropyModel", "FactorizedEntropyModel", "integer_pmf", "interpolated_bits", "level_mask"]
