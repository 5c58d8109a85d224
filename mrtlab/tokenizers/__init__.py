"""Tokenizers: image ⇄ windowed patch tokens."""
from .base import Grid, Tokenizer
from .conv_window import ConvWindowTokenizer
from .patch_window import PatchWindowTokenizer

__all__ = ["Grid", "Tokenizer", "ConvWindowTokenizer", "PatchWindowTokenizer"]
