"""Factorized prior: one learned categorical distribution per channel, shared by all tokens."""
from __future__ import annotations

import constriction
import numpy as np
import torch

from ..errors import MrtlabError
from ..registry import register
from .base import EntropyModel, integer_pmf, interpolated_bits, level_mask


@register("factorized")
class FactorizedEntropyModel(EntropyModel):
    def __init__(self, levels: list[int]):
        super().__init__(levels)
        self.logits = torch.nn.Parameter(torch.zeros(len(levels), max(levels)))
        self.register_buffer("mask", level_mask(levels), persistent=False)
        self.register_buffer("pmf", torch.zeros(len(levels), max(levels), dtype=torch.int32))

    def log_probs(self) -> torch.Tensor:
        return self.logits.masked_fill(~self.mask, float("-inf")).log_softmax(-1)

    def forward(self, q, layout):
        logp = self.log_probs().expand(*q.shape, -1)
        return interpolated_bits(logp, q, self.levels)

    @torch.no_grad()
    def update(self):
        logits = self.logits.double().cpu().numpy()
        for c, n in enumerate(self.levels):
            self.pmf[c, :n] = torch.from_numpy(integer_pmf(logits[c], n))

    def _models(self):
        if int(self.pmf[0].sum()) == 0:
            raise MrtlabError("entropy model has no coding tables (run update() before coding)")
        return [constriction.stream.model.Categorical(
            self.pmf[c, :n].double().numpy() / float(self.pmf[c, :n].sum()), perfect=False)
            for c, n in enumerate(self.levels)]

    def compress(self, symbols, layout):
        enc = constriction.stream.queue.RangeEncoder()
        sym = symbols.cpu().numpy().astype(np.int32)
        for c, model in enumerate(self._models()):
            enc.encode(np.ascontiguousarray(sym[:, c]), model)
        return enc.get_compressed().tobytes()

    def decompress(self, data, layout):
        if len(data) % 4:
            raise MrtlabError("payload length is not a whole number of 32-bit words")
        dec = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype=np.uint32).copy())
        cols = [dec.decode(model, layout.tokens) for model in self._models()]
        return torch.from_numpy(np.stack(cols, axis=1).astype(np.int64))
