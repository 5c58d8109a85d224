"""Hyperprior: side information per window (after Ballé et al., 2018, on the 1-D latent).

An analysis MLP summarizes each window's symbols into a few FSQ side symbols ``z``, coded
first with a factorized prior; a synthesis MLP turns ``z`` into the distributions of the
window's symbols, which are then coded independently of each other. No sequential
decoding: every window decodes in parallel. The side bits are attributed evenly to the
symbols of their window.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import MrtlabError
from ..quantizers.fsq import FSQ
from ..registry import register
from .autoregressive import slot_presence, window_values
from .base import EntropyModel, Layout, SymbolDecoder, SymbolEncoder, interpolated_bits
from .distributions import make_distribution
from .factorized import FactorizedEntropyModel


@register("hyperprior")
class Hyperprior(EntropyModel):
    """Side information per window (Ballé et al.'s hyperprior on the window axis): a small
    network summarises each window's tokens into ``side_channels`` quantized side symbols,
    coded first under a factorized prior; the window's token distributions are computed from
    them. Decoding checks that the side symbols are those of the decoded tokens.

    Args:
        levels: symbols per channel (the quantizer's ``levels``).
        dim: width of the side analysis and synthesis networks.
        side_channels: side symbols per window.
        side_levels: levels of each side symbol (FSQ).
        max_slots: the most latent tokens per window it codes (L of the model).
        distribution: ``categorical``, ``gaussian`` or ``logistic`` (as the RCM's).

    Symbols ``[B, windows·slots, C]`` → bits ``[B, windows·slots, C]``, the side bits
    attributed to the window's symbols.
    """

    def __init__(self, levels: list[int], dim: int = 64, side_channels: int = 4,
                 side_levels: int = 7, max_slots: int = 8, distribution: str = "categorical"):
        super().__init__(levels)
        C, self.max_slots = len(levels), max_slots
        E = max_slots * C
        self.dist = make_distribution(distribution, levels)
        self.analysis = nn.Sequential(nn.Linear(E + max_slots, dim), nn.GELU(), nn.Linear(dim, side_channels))
        self.side_quantizer = FSQ([side_levels] * side_channels)
        self.side = FactorizedEntropyModel(self.side_quantizer.levels)
        # the slot presence tells the synthesis how many slots the latent has
        self.synthesis = nn.Sequential(nn.Linear(side_channels + max_slots, dim), nn.GELU(),
                                       nn.Linear(dim, dim), nn.GELU(),
                                       nn.Linear(dim, E * self.dist.params))

    def _side(self, q, layout):
        """Side symbol positions ``[B, W, Z]`` and the slot presence."""
        v, present = window_values(q, layout, self.half_width(), self.max_slots)
        return self.side_quantizer(self.analysis(torch.cat([v, present], -1))), present

    def _params(self, z, present, layout):
        """Side symbols → distribution parameters of the window's symbols ``[B, T, C, P]``."""
        x = torch.cat([self.side_quantizer.dequantize(z), present], -1)
        p = self.synthesis(x).unflatten(-1, (self.max_slots, len(self.levels), self.dist.params))
        return p[:, :, :layout.slots].flatten(1, 2)

    def _side_layout(self, layout):
        return Layout(1, layout.rows, layout.cols)

    def forward(self, q, layout):
        z, present = self._side(q, layout)
        bits = interpolated_bits(self.dist.log_probs(self._params(z, present, layout)), q, self.levels)
        side = self.side(z, self._side_layout(layout)).sum(-1)            # [B, W]
        per_symbol = side / (layout.slots * len(self.levels))
        return (bits.unflatten(1, (layout.windows, layout.slots)) + per_symbol[..., None, None]).flatten(1, 2)

    @torch.no_grad()
    def update(self):
        self.side.update()

    @torch.no_grad()
    def compress(self, symbols, layout):
        m, enc = self.coding_copy(), SymbolEncoder()
        z, present = m._side(symbols[None].double(), layout)
        z_sym = m.side_quantizer.symbols(z)[0]                            # [W, Z]
        enc.encode(z_sym.numpy().T.reshape(-1), m.side.table(layout.windows))
        params = m._params(z_sym[None].double(), present, layout)[0].numpy()
        enc.encode(symbols.cpu().numpy().reshape(-1), m.dist.freq(params))
        return enc.data()

    @torch.no_grad()
    def decompress(self, data, layout):
        m, dec = self.coding_copy(), SymbolDecoder(data)
        Z, W, C = self.side_quantizer.channels, layout.windows, len(self.levels)
        z = dec.decode(m.side.table(W)).reshape(Z, W).T
        present = slot_presence(layout, self.max_slots).expand(1, W, -1)
        params = m._params(torch.from_numpy(z)[None].double(), present, layout)[0].numpy()
        symbols = torch.from_numpy(dec.decode(m.dist.freq(params)).reshape(layout.tokens, C))
        dec.finish()
        side, _ = m._side(symbols[None].double(), layout)   # what the encoder sends for them
        if not np.array_equal(m.side_quantizer.symbols(side)[0].numpy(), z):
            raise MrtlabError("damaged payload: its side information is not the symbols' own")
        return symbols
