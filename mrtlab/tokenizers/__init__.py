"""Tokenizers: image ⇄ windowed patch tokens."""
from .base import Grid, Tokenizer
from .conv_window import ConvWindowTokenizer
from .patch_window import PatchWindowTokenizer
from .taef2_window import TAEF2WindowTokenizer

__all__ = ["Grid", "Tokenizer", "ConvWindowTokenizer", "PatchWindowTokenizer", "TAEF2WindowTokenizer"]
