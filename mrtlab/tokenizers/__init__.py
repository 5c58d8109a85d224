"""Tokenizers: image ⇄ windowed patch tokens."""
from .base import Grid, Tokenizer
from .patch_window import PatchWindowTokenizer

__all__ = ["Grid", "Tokenizer", "PatchWindowTokenizer"]
