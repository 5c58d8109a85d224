"""Window-major autoregressive entropy models: the common frame of ``rcm`` and ``transformer_ar``.

The symbols of an image are ``rows × cols`` windows of ``slots`` tokens of C channels.
A causal *context model* (RWKV for the RCM, attention for the Transformer baseline) runs
over the windows in raster order; its input at window ``w`` is window ``w-1``'s symbols
and the 2-D position of ``w``. Inside a window the symbols come in *units* — slot by slot,
and within a slot channel group by channel group — each unit conditioned on the context
and on the units of its window already decoded, with a learned embedding of its slot and
group. The context and the unit's embedding go through an MLP head once per window (all
units at once); the window's earlier units enter linearly, through masked weights, into
the unit's distribution parameters. So every token is conditioned on all earlier ones,
while the decoder runs the networks once per window and only a small matrix-vector
product per unit (with the RCM's recurrent state, O(1) work per token).

Training and the encoder compute every distribution in one parallel pass; the decoder
steps through windows and units. Both run in float64 and round the distribution
parameters to a grid before building integer tables, so they code with identical tables.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import MrtlabError
from .base import EntropyModel, Layout, SymbolDecoder, SymbolEncoder, interpolated_bits
from .distributions import make_distribution

POSITION_FREQS = 8


def window_positions(layout: Layout, device=None, dtype=torch.float32) -> torch.Tensor:
    """Sinusoidal features ``[windows, 4·POSITION_FREQS]`` of each window's (row, col)."""
    r, c = torch.meshgrid(torch.arange(layout.rows, device=device, dtype=dtype),
                          torch.arange(layout.cols, device=device, dtype=dtype), indexing="ij")
    f = 2.0 ** -torch.arange(POSITION_FREQS, device=device, dtype=dtype)
    a = torch.stack([r.flatten(), c.flatten()], -1)[..., None] * f          # [W, 2, F]
    return torch.cat([a.sin(), a.cos()], -1).flatten(1)


def slot_presence(layout: Layout, max_slots: int) -> torch.Tensor:
    """``[max_slots]``: 1 for the slots the latent has, 0 for those it leaves out."""
    return (torch.arange(max_slots) < layout.slots).double()


def window_values(q: torch.Tensor, layout: Layout, half_width: torch.Tensor,
                  max_slots: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Symbol positions ``[B, T, C]`` → per window: values in [-1, 1] padded to
    ``max_slots`` slots, ``[B, W, max_slots·C]``, and slot presence ``[B, W, max_slots]``."""
    if layout.slots > max_slots:
        raise MrtlabError(f"entropy model codes at most {max_slots} latent tokens per "
                          f"window, the latent has {layout.slots}")
    B, C = q.shape[0], q.shape[-1]
    v = (q / half_width.to(q) - 1).reshape(B, layout.windows, layout.slots, C)
    v = nn.functional.pad(v, (0, 0, 0, max_slots - layout.slots)).flatten(2)
    present = slot_presence(layout, max_slots).to(q).expand(B, layout.windows, -1)
    return v, present


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """``nn.LayerNorm`` of one vector, in NumPy (the step forms)."""
    x = x - x.sum() / len(x)
    return x / np.sqrt(x @ x / len(x) + eps) * weight + bias


class WindowAutoregressive(EntropyModel):
    """Subclasses give the blocks of the causal context model over windows (``set_context``)."""

    def __init__(self, levels: list[int], dim: int = 128, max_slots: int = 8,
                 channel_groups: int = 1, distribution: str = "categorical"):
        super().__init__(levels)
        C = len(levels)
        if C % channel_groups:
            raise ValueError(f"{C} channels cannot be split into {channel_groups} equal groups")
        self.dim, self.max_slots, self.groups = dim, max_slots, channel_groups
        self.dist = make_distribution(distribution, levels)
        E = max_slots * C
        self.window_in = nn.Linear(E + max_slots, dim)   # previous window: values + presence
        self.position = nn.Linear(4 * POSITION_FREQS, dim, bias=False)
        units, out = max_slots * channel_groups, C * self.dist.params
        self.unit_emb = nn.Parameter(torch.zeros(units, dim))
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.GELU(),
                                  nn.Linear(2 * dim, out))
        self.intra = nn.Parameter(torch.zeros(units, out, E))   # earlier units of the window
        # unit u = (slot s, group g) sees entry (s', c') when s' < s, or s' = s and c' in an
        # earlier group; channel groups are contiguous blocks, so token-major order is unit order
        s = torch.arange(units) // channel_groups
        g = torch.arange(units) % channel_groups
        s_e = torch.arange(E) // C
        g_e = (torch.arange(E) % C) // (C // channel_groups)
        visible = (s_e[None] < s[:, None]) | ((s_e[None] == s[:, None]) & (g_e[None] < g[:, None]))
        self.register_buffer("visible", visible.float(), persistent=False)

    # -- the context model: a causal stack of blocks, given by the subclass ----------------
    def set_context(self, blocks) -> None:
        """The subclass's blocks: each has ``forward`` (parallel, ``[B, W, dim]``),
        ``initial_state(length)`` and ``step(x, state, weights)`` (float64 NumPy, one window)."""
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(self.dim)

    def context(self, x: torch.Tensor) -> torch.Tensor:
        """Causal parallel pass ``[B, W, dim]`` → ``[B, W, dim]``."""
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def context_state(self, length: int) -> dict:
        """The empty state of the step form for up to ``length`` windows, with the weights
        as float64 NumPy arrays."""
        def numpy(module):
            return {k: t.detach().double().numpy() for k, t in module.state_dict().items()}
        return {"weights": [numpy(b) for b in self.blocks], "norm": numpy(self.norm),
                "states": [b.initial_state(length) for b in self.blocks]}

    def context_step(self, x: np.ndarray, state: dict) -> tuple[np.ndarray, dict]:
        """One window ``[dim]`` → (``[dim]``, next state); equals :meth:`context`."""
        for i, (block, w) in enumerate(zip(self.blocks, state["weights"])):
            x, state["states"][i] = block.step(x, state["states"][i], w)
        return layer_norm(x, state["norm"]["weight"], state["norm"]["bias"]), state

    # -- shared ------------------------------------------------------------------------------
    def _intra(self) -> torch.Tensor:
        """``[U, C·P, E]``: each unit's weights on the entries it may see."""
        return self.intra * self.visible[:, None, :].to(self.intra)

    def params(self, q: torch.Tensor, layout: Layout) -> torch.Tensor:
        """Distribution parameters of every symbol, in one parallel pass: ``[B, T, C, P]``."""
        B, W, S, G, C = q.shape[0], layout.windows, layout.slots, self.groups, len(self.levels)
        v, present = window_values(q, layout, self.half_width(), self.max_slots)
        prev = torch.cat([v, present], -1)[:, :-1]
        x = self.window_in(nn.functional.pad(prev, (0, 0, 1, 0)))
        x = x + self.position(window_positions(layout, q.device, x.dtype))
        h = self.context(x).unsqueeze(-2) + self.unit_emb[:S * G]           # [B,W,U,dim]
        p = self.head(h) + torch.einsum("bwe,uoe->bwuo", v, self._intra()[:S * G])
        p = p.unflatten(-1, (C, -1)).unflatten(2, (S, G))                   # [B,W,S,G,C,P]
        group = torch.arange(C, device=q.device) // (C // G)
        p = p[:, :, :, group, torch.arange(C, device=q.device)]            # [B,W,S,C,P]
        return p.reshape(B, W * S, C, -1)

    def forward(self, q, layout):
        return interpolated_bits(self.dist.log_probs(self.params(q, layout)), q, self.levels)

    def update(self):
        """Nothing to tabulate: coding tables come from each symbol's gridded parameters."""

    @torch.no_grad()
    def compress(self, symbols, layout):
        m = self.coding_copy()
        params = m.params(symbols[None].double(), layout)[0].numpy()
        enc = SymbolEncoder()
        enc.encode(symbols.cpu().numpy().reshape(-1), m.dist.freq(params))
        return enc.data()

    @torch.no_grad()
    def decompress(self, data, layout):
        dec = SymbolDecoder(data)
        steps = self.coding_copy().stepwise(layout)
        freq = next(steps)
        try:
            while True:
                freq = steps.send(dec.decode(freq))
        except StopIteration as done:
            dec.finish()
            return torch.from_numpy(done.value)

    def stepwise(self, layout: Layout):
        """The decoder's loop as a generator: yields the frequency rows of the next unit's
        symbols, receives those symbols, returns all symbols ``[T, C]``. Call it on a
        float64 copy (:meth:`coding_copy`)."""
        C, S, G = len(self.levels), layout.slots, self.groups
        U, cg = S * G, C // G
        out = np.zeros((layout.windows, U, cg), dtype=np.int64)
        win_w, win_b = self.window_in.weight.numpy(), self.window_in.bias.numpy()
        pos = self.position(window_positions(layout, dtype=torch.float64)).numpy()
        intra, emb = self._intra()[:U].numpy(), self.unit_emb[:U]
        half = self.half_width().numpy().reshape(G, cg)
        present = slot_presence(layout, self.max_slots).numpy()
        prev = np.zeros(win_w.shape[1])                  # the input before window 0
        state = self.context_state(layout.windows)
        for w in range(layout.windows):
            h, state = self.context_step(win_w @ prev + win_b + pos[w], state)
            base = self.head(torch.from_numpy(h) + emb).numpy()         # [U, C·P]
            v = np.zeros(self.max_slots * C)
            for u in range(U):
                g = u % G
                p = (base[u] + intra[u] @ v).reshape(C, -1)[g * cg:(g + 1) * cg]
                out[w, u] = sym = yield self.dist.freq(p, slice(g * cg, (g + 1) * cg))
                v[u * cg:(u + 1) * cg] = sym / half[g] - 1              # entries of unit u
            prev = np.concatenate([v, present])
        return out.reshape(layout.tokens, C)
