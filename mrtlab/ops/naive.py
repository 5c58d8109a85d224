"""The naive forms of the ops: one Python step per token, as the recurrences are written.

They are the references the tests check the chunked forms against, and what the
benchmark compares them with (``mrtlab bench mixers``). Nothing in the codec runs them:
the decoder steps through tokens with the RCM's own float64 NumPy WKV-6
(:meth:`mrtlab.entropy.rcm.RWKVBlock.step`). ``NAME_step`` takes one token (``[B, H, K]``
and a state ``[B, H, K, V]``) and returns ``(state, o)``; ``NAME_recurrent`` loops it over
``T`` and takes and returns what the chunked op does. ``scale=None`` means ``1/sqrt(K)``.
"""
from __future__ import annotations

import torch

from .utils import default_scale, start_state


def step_through(step, seqs, value_dim: int, initial_state=None, output_final_state: bool = False):
    """Run ``step(tokens, state) → (state, o)`` over dim 2 of ``seqs`` (``[B, H, T, ...]``,
    the first one ``[B, H, T, K]``) from ``initial_state`` (zeros if None) →
    (``o: [B, H, T, V]``, final state ``[B, H, K, V]`` or None)."""
    B, H, T = seqs[0].shape[:3]
    state = start_state(seqs[0], value_dim, initial_state)
    outs = []
    for t in range(T):
        state, o = step([x[:, :, t] for x in seqs], state)
        outs.append(o)
    o = torch.stack(outs, dim=2) if outs else seqs[0].new_zeros(B, H, 0, value_dim)
    return o, (state if output_final_state else None)


def wkv6_step(r, k, v, w, u, state, scale: float | None = None):
    """One token of :func:`mrtlab.ops.wkv6.wkv6`: ``r, k, w: [B,H,K]``, ``v: [B,H,V]``,
    ``u: [H,K]``, ``state: [B,H,K,V]`` → (state, o ``[B,H,V]``)."""
    scale = default_scale(scale, r.shape[-1])
    kv = k.unsqueeze(-1) * v.unsqueeze(-2)
    o = torch.einsum("bhk,bhkv->bhv", r * scale, state + u.unsqueeze(-1) * kv)
    return state * w.exp().unsqueeze(-1) + kv, o


def wkv6_recurrent(r, k, v, w, u, scale: float | None = None, initial_state=None,
                   output_final_state: bool = False):
    """:func:`mrtlab.ops.wkv6.wkv6`, one step per token."""
    return step_through(lambda x, s: wkv6_step(*x, u, s, scale), (r, k, v, w), v.shape[-1],
                        initial_state, output_final_state)


def wkv7_step(r, w, k, v, a, b, state, scale: float | None = None):
    """One token of :func:`mrtlab.ops.wkv7.wkv7`: ``r, w, k, a, b: [B,H,K]``, ``v: [B,H,V]``,
    ``state: [B,H,K,V]`` → (state, o ``[B,H,V]``). The low-rank term reads the *undecayed*
    previous state, as in fla and RWKV-7."""
    scale = default_scale(scale, r.shape[-1])
    sa = torch.einsum("bhk,bhkv->bhv", a, state)           # a^T S_{t-1}
    state = (state * w.exp().unsqueeze(-1) + b.unsqueeze(-1) * sa.unsqueeze(-2)
             + k.unsqueeze(-1) * v.unsqueeze(-2))
    return state, torch.einsum("bhk,bhkv->bhv", r * scale, state)


def wkv7_recurrent(r, w, k, v, a, b, scale: float | None = None, initial_state=None,
                   output_final_state: bool = False):
    """:func:`mrtlab.ops.wkv7.wkv7`, one step per token."""
    return step_through(lambda x, s: wkv7_step(*x, s, scale), (r, w, k, v, a, b), v.shape[-1],
                        initial_state, output_final_state)


def gla_step(q, k, v, g, state, scale: float | None = None):
    """One token of :func:`mrtlab.ops.gla.gla`: ``q, k, g: [B,H,K]``, ``v: [B,H,V]``,
    ``state: [B,H,K,V]`` → (state, o ``[B,H,V]``)."""
    scale = default_scale(scale, q.shape[-1])
    state = state * g.exp().unsqueeze(-1) + k.unsqueeze(-1) * v.unsqueeze(-2)
    return state, torch.einsum("bhk,bhkv->bhv", q * scale, state)


def gla_recurrent(q, k, v, g, scale: float | None = None, initial_state=None,
                  output_final_state: bool = False):
    """:func:`mrtlab.ops.gla.gla`, one step per token."""
    return step_through(lambda x, s: gla_step(*x, s, scale), (q, k, v, g), v.shape[-1],
                        initial_state, output_final_state)


def ssd_step(q, k, v, g, state, scale: float | None = None):
    """One token of :func:`mrtlab.ops.ssd.ssd`: ``q, k: [B,H,K]``, ``v: [B,H,V]``,
    ``g: [B,H]``, ``state: [B,H,K,V]`` → (state, o ``[B,H,V]``)."""
    scale = default_scale(scale, q.shape[-1])
    state = state * g.exp()[..., None, None] + k.unsqueeze(-1) * v.unsqueeze(-2)
    return state, torch.einsum("bhk,bhkv->bhv", q * scale, state)


def ssd_recurrent(q, k, v, g, scale: float | None = None, initial_state=None,
                  output_final_state: bool = False):
    """:func:`mrtlab.ops.ssd.ssd`, one step per token."""
    return step_through(lambda x, s: ssd_step(*x, s, scale), (q, k, v, g), v.shape[-1],
                        initial_state, output_final_state)
