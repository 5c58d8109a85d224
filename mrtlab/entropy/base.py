from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

PROB_BITS = 16  # integer probability tables sum to 2**PROB_BITS


def level_mask(levels: list[int]) -> torch.Tensor:
    """``[C, max(levels)]`` boolean: which symbols exist in each channel's alphabet."""
    return torch.arange(max(levels))[None, :] < torch.tensor(levels)[:, None]


def interpolated_bits(logp: torch.Tensor, q: torch.Tensor, levels: list[int]) -> torch.Tensor:
    """−log2 p at symbol positions ``q`` (``[..., C]``) from log-probs ``[..., C, n]``.

    At integer ``q`` (always, in the forward pass) this is exactly the symbol's code
    length; between integers it interpolates linearly, which gives the encoder a rate
    gradient through a straight-through quantizer.
    """
    top = torch.tensor(levels, device=q.device) - 1          # last symbol of each channel
    lo = torch.minimum(q.detach().floor().clamp_min(0), (top - 1).clamp_min(0))
    frac = q - lo
    lo = lo.long().unsqueeze(-1)
    hi = torch.minimum(lo + 1, top.unsqueeze(-1))
    nats_lo = -logp.gather(-1, lo)
    nats_hi = -logp.gather(-1, hi.expand_as(lo))
    return (nats_lo + frac.unsqueeze(-1) * (nats_hi - nats_lo)).squeeze(-1) / np.log(2)


def integer_pmf(logp: np.ndarray, n: int) -> np.ndarray:
    """Quantize one distribution over ``n`` symbols to integers ≥ 1 summing to 2**PROB_BITS.

    Done in float64 numpy from stored parameters so that encoder and decoder, whatever
    their thread count, derive the same table.
    """
    p = np.exp(logp[:n] - logp[:n].max())
    p /= p.sum()
    total = 1 << PROB_BITS
    freq = np.floor(p * (total - n)).astype(np.int64) + 1
    freq[np.argmax(freq)] += total - freq.sum()
    return freq


@dataclass(frozen=True)
class Layout:
    """How a symbol sequence lies on the image: ``rows × cols`` windows, ``slots`` tokens each.

    The sequence is window-major (raster order of windows, then slot), so token ``t`` is
    slot ``t % slots`` of window ``t // slots``. A 2-D latent is the case ``slots = 1``.
    """
    slots: int
    rows: int
    cols: int

    @property
    def windows(self) -> int:
        return self.rows * self.cols

    @property
    def tokens(self) -> int:
        return self.rows * self.cols * self.slots


class EntropyModel(nn.Module, ABC):
    """Prices and codes the symbol sequence of a 1-D latent.

    The sequence is ``[B, T, C]``: T tokens laid out as ``layout`` says, C channels,
    channel ``c`` drawn from ``levels[c]`` symbols. ``forward`` returns bits per symbol
    (differentiable, for training; side information is attributed to the symbols it
    describes); ``compress``/``decompress`` turn the integer symbols ``[T, C]`` of one image
    into bytes and back.
    """

    def __init__(self, levels: list[int]):
        super().__init__()
        self.levels = list(levels)

    @abstractmethod
    def forward(self, q: torch.Tensor, layout: Layout) -> torch.Tensor: ...

    @abstractmethod
    def update(self) -> None:
        """Build the integer tables used for coding (call after training, before export)."""

    @abstractmethod
    def compress(self, symbols: torch.Tensor, layout: Layout) -> bytes: ...

    @abstractmethod
    def decompress(self, data: bytes, layout: Layout) -> torch.Tensor: ...
