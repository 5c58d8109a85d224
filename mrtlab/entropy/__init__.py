"""Entropy models of the 1-D symbol sequence."""
from .base import EntropyModel, Layout, integer_pmf, interpolated_bits, level_mask
from .factorized import FactorizedEntropyModel

__all__ = ["EntropyModel", "Layout", "FactorizedEntropyModel", "integer_pmf", "interpolated_bits", "level_mask"]
