"""Factorized prior: one learned categorical distribution per channel, shared by all tokens.

Categorical over each channel's finite alphabet, so it serves FSQ and scalar symbols alike.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import MrtlabError
from ..registry import register
from .base import EntropyModel, SymbolDecoder, SymbolEncoder, integer_pmfs, interpolated_bits, level_mask


@register("factorized")
class FactorizedEntropyModel(EntropyModel):
    """One learned distribution per channel, shared by every token: the baseline without
    context. Its integer table (``pmf``) is built by ``update()`` and stored in the model file.

    Args:
        levels: symbols per channel (the quantizer's ``levels``).

    Symbols ``[B, T, C]`` → bits ``[B, T, C]`` (``forward``).
    """

    def __init__(self, levels: list[int]):
        super().__init__(levels)
        self.logits = torch.nn.Parameter(torch.zeros(len(levels), max(levels)))
        self.register_buffer("mask", level_mask(levels), persistent=False)
        # the integer coding table, built by update() and stored in the model file
        self.register_buffer("pmf", torch.zeros(len(levels), max(levels), dtype=torch.int32))

    def log_probs(self) -> torch.Tensor:
        return self.logits.masked_fill(~self.mask, float("-inf")).log_softmax(-1)

    def forward(self, q, layout):
        logp = self.log_probs().expand(*q.shape, -1)
        return interpolated_bits(logp, q, self.levels)

    @torch.no_grad()
    def update(self):
        logits = self.logits.double().masked_fill(~self.mask, float("-inf")).cpu().numpy()
        self.pmf.copy_(torch.from_numpy(integer_pmfs(logits)))

    def table(self, tokens: int) -> np.ndarray:
        """Frequencies for the channel-major order ``[C·T, n]`` in which symbols are coded."""
        if int(self.pmf[0].sum()) == 0:
            raise MrtlabError("entropy model has no coding tables (run update() before coding)")
        return np.repeat(self.pmf.cpu().numpy().astype(np.int64), tokens, axis=0)

    def compress(self, symbols, layout):
        enc = SymbolEncoder()
        enc.encode(symbols.cpu().numpy().T.reshape(-1), self.table(len(symbols)))
        return enc.data()

    def decompress(self, data, layout):
        dec = SymbolDecoder(data)
        sym = dec.decode(self.table(layout.tokens))
        dec.finish()
        return torch.from_numpy(sym.reshape(len(self.levels), layout.tokens).T.copy())
