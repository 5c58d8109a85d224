from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass

import constriction
import numpy as np
import torch
from torch import nn

from ..errors import MrtlabError
from ..registry import interface

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


def integer_pmfs(logp: np.ndarray) -> np.ndarray:
    """Rows of log-probabilities ``[N, n]`` (−inf: impossible symbol) → int64 frequencies,
    ≥ 1 on each row's possible symbols, 0 elsewhere, summing to 2**PROB_BITS.

    Done in float64 numpy from parameters already on a grid, so that encoder and decoder,
    whatever their thread count, derive the same table.
    """
    possible = np.isfinite(logp)
    p = np.exp(logp - logp.max(-1, keepdims=True))
    total = 1 << PROB_BITS
    scale = (total - possible.sum(-1, keepdims=True)) / p.sum(-1, keepdims=True)
    freq = np.floor(p * scale).astype(np.int64) + possible
    freq[np.arange(len(freq)), freq.argmax(-1)] += total - freq.sum(-1)
    return freq


class SymbolEncoder:
    """Range coding (constriction) of symbols, each under its own integer frequency row."""

    def __init__(self):
        self._enc = constriction.stream.queue.RangeEncoder()

    def encode(self, symbols: np.ndarray, freq: np.ndarray) -> None:
        """``symbols [N]`` under ``freq [N, n]`` (rows from :func:`integer_pmfs`)."""
        self._enc.encode(np.ascontiguousarray(symbols, dtype=np.int32), _FAMILY,
                         np.ascontiguousarray(freq, dtype=np.float64) / (1 << PROB_BITS))

    def data(self) -> bytes:
        return self._enc.get_compressed().tobytes()


class SymbolDecoder:
    """The inverse of :class:`SymbolEncoder`, for a payload that must be exactly what the
    encoder wrote. A symbol the table deems impossible, more information decoded than the
    payload can hold (a payload that ends before the image does: the coder itself would go
    on reading zeros), or, at :meth:`finish`, a payload other than the one the decoded
    symbols encode to (bytes altered, missing or left over) mean a damaged payload."""

    SLACK_BITS = 64  # the coder's flush: at most two 32-bit words beyond the information

    def __init__(self, data: bytes):
        if len(data) % 4:
            raise MrtlabError("damaged payload: length is not a whole number of 32-bit words")
        self._data = bytes(data)
        self._dec = constriction.stream.queue.RangeDecoder(np.frombuffer(data, np.uint32).copy())
        self._again = SymbolEncoder()   # the decoded symbols encoded again, for finish()
        self._bits, self._capacity = 0.0, 8 * len(data) + self.SLACK_BITS

    def decode(self, freq: np.ndarray) -> np.ndarray:
        freq = np.ascontiguousarray(freq, dtype=np.int64)
        # the least information these symbols can hold, before decoding them: a forged header
        # over a short payload is refused at once, not after decoding a large image of zeros
        self._check_capacity(self._bits + float(PROB_BITS * len(freq) - np.log2(freq.max(-1)).sum()))
        try:
            sym = self._dec.decode(_FAMILY, freq / (1 << PROB_BITS)).astype(np.int64)
        except (ValueError, RuntimeError, AssertionError) as e:  # what constriction raises on data it cannot decode
            raise MrtlabError(f"damaged payload: {e}") from None
        chosen = freq[np.arange(len(sym)), sym]
        if (chosen == 0).any():
            raise MrtlabError("damaged payload: decoded a symbol outside the alphabet")
        # A range coder's output holds at least the symbols' information (its intervals are
        # never wider than the probabilities); 1 % covers constriction's own rounding.
        self._bits += float(PROB_BITS * len(sym) - np.log2(chosen).sum())
        self._check_capacity(self._bits)
        self._again.encode(sym, freq)
        return sym

    def _check_capacity(self, bits: float) -> None:
        """``bits`` of information must fit the payload (1 % for constriction's own rounding)."""
        if bits > 1.01 * self._capacity:
            raise MrtlabError(f"damaged payload: {len(self._data)} bytes cannot hold the symbols "
                              "the header implies (the payload ends before the image does)")

    def finish(self) -> None:
        """Check that the payload is exactly the encoding of the symbols decoded so far."""
        if self._again.data() != self._data:
            raise MrtlabError("damaged payload: its bytes are not the encoding of the symbols they "
                              "decode to (altered, or bytes missing or left over)")


_FAMILY = constriction.stream.model.Categorical(perfect=False)


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


@interface("entropy_model")
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
    def decompress(self, data: bytes, layout: Layout) -> torch.Tensor:
        """The inverse of :meth:`compress`; decode with a :class:`SymbolDecoder` and call its
        ``finish()`` at the end, so that a payload not exactly consumed is refused."""

    def coding_copy(self) -> EntropyModel:
        """A float64 CPU copy without gradients: what conditional models code with, so that
        the encoder's and the decoder's parameters agree to ~1e-15 on any device."""
        return copy.deepcopy(self).cpu().double().eval().requires_grad_(False)

    def half_width(self) -> torch.Tensor:
        """Per channel ``(levels − 1) / 2``: symbol positions → values in [−1, 1]."""
        return (torch.tensor(self.levels, dtype=torch.float64) - 1) / 2
