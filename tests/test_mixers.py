"""Global mixers: each equals its explicit O(T²) formula, and every window sees every other."""
import importlib
import sys

import pytest
import torch

from mrtlab.mixers import GlobalMixer
from mrtlab.registry import lookup

from .helpers import rel

LINEAR = ["rwkv6", "rwkv7", "mamba2", "gla"]
ALL = LINEAR + ["attention", "identity"]


def pair_decay(A_rows, A_cols, inclusive: bool):
    """``exp(A_t − A_s)`` over all pairs, masked to ``s < t`` (or ``s ≤ t``); A is [..., T, K]."""
    T = A_rows.shape[-2]
    keep = torch.ones(T, T, dtype=torch.bool).tril(0 if inclusive else -1)
    diff = A_rows.unsqueeze(-2) - A_cols.unsqueeze(-3)            # [..., T, S, K]
    return diff.masked_fill(~keep[..., None], float("-inf")).exp()


# Explicit quadratic formulas of each recurrence, written from the equations in docs/mixers.md
def quad_wkv6(r, k, v, w, u, scale=1.0, **_):
    A = w.cumsum(-2)
    D = pair_decay(A - w, A, inclusive=False)
    att = torch.einsum("bhtk,bhsk,bhtsk->bhts", r * scale, k, D)
    return att @ v + ((r * scale) * u[None, :, None] * k).sum(-1, keepdim=True) * v, None


def quad_gla(q, k, v, g, scale=None, **_):
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    A = g.cumsum(-2)
    att = torch.einsum("bhtk,bhsk,bhtsk->bhts", q * scale, k, pair_decay(A, A, inclusive=True))
    return att @ v, None


def quad_ssd(q, k, v, g, scale=None, **_):
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    A = g.cumsum(-1).unsqueeze(-1)
    D = pair_decay(A, A, inclusive=True).squeeze(-1)
    return ((q * scale) @ k.transpose(-1, -2) * D) @ v, None


def quad_wkv7(r, w, k, v, a, b, scale=1.0, **_):
    """o_t = S_t r_t with S_t = Σ_{s≤t} v_sᵀ k_s M_{s+1} ⋯ M_t, M_j = diag(exp w_j) + a_jᵀ b_j."""
    B, H, T, K = r.shape
    M = torch.diag_embed(w.exp()) + a.unsqueeze(-1) * b.unsqueeze(-2)   # [B,H,T,K,K]
    outs = []
    for t in range(T):
        S = 0
        for s in range(t + 1):
            P = v[:, :, s].unsqueeze(-1) * k[:, :, s].unsqueeze(-2)     # [B,H,V,K]
            for j in range(s + 1, t + 1):
                P = P @ M[:, :, j]
            S = S + P
        outs.append((S @ (r[:, :, t] * scale).unsqueeze(-1)).squeeze(-1))
    return torch.stack(outs, 2), None


def quad_attention(q, k, v, causal=False):
    s = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    if causal:
        s = s.masked_fill(torch.ones_like(s, dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(s, dim=-1) @ v


QUADRATIC = {"rwkv6": ("mrtlab.mixers.rwkv6", "wkv6", quad_wkv6),
             "rwkv7": ("mrtlab.mixers.rwkv7", "wkv7", quad_wkv7),
             "mamba2": ("mrtlab.mixers.mamba2", "ssd", quad_ssd),
             "gla": ("mrtlab.mixers.gla", "gla", quad_gla),
             "attention": ("mrtlab.ops.attention", "attention", quad_attention)}


def make(name, dim=32, seed=0):
    torch.manual_seed(seed)
    m = lookup("global_mixer", name)(dim).double()
    with torch.no_grad():  # leave the zero-initialized output layers out of the picture
        for p in m.parameters():
            if p.ndim >= 1 and p.abs().sum() == 0:
                p.normal_(0, 0.2)
    return m


@pytest.mark.parametrize("name", list(QUADRATIC))
def test_mixer_equals_explicit_quadratic_formula(name, monkeypatch):
    module_name, op_name, quad = QUADRATIC[name]
    m = make(name)
    x = torch.randn(2, 3, 5, 32, dtype=torch.float64)
    fast = m(x)
    monkeypatch.setattr(sys.modules[module_name], op_name, quad)
    slow = m(x)
    assert rel(fast, slow) <= 1e-10


@pytest.mark.parametrize("name", ALL)
def test_every_window_sees_every_other(name):
    """The gradient of one window's output reaches every window (none for identity)."""
    m = make(name)
    x = torch.randn(1, 4, 5, 32, dtype=torch.float64, requires_grad=True)
    for (i, j) in [(0, 0), (3, 4), (1, 2)]:
        grad, = torch.autograd.grad(m(x)[0, i, j].sum(), x)
        reach = grad[0].abs().sum(-1) > 0
        if name == "identity":
            assert reach.sum() == 1 and reach[i, j]
        else:
            assert reach.all(), f"window {(i, j)} does not see {(~reach).nonzero().tolist()}"


@pytest.mark.parametrize("name", ALL)
def test_shapes_dtypes_and_registration(name):
    m = lookup("global_mixer", name)(64)
    assert isinstance(m, GlobalMixer)
    x = torch.randn(2, 1, 7, 64, requires_grad=True)
    y = m(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_attention_dispatches_to_xformers(monkeypatch):
    """On CUDA with xformers installed, attention goes through memory_efficient_attention
    in its ``[B, T, H, K]`` layout (a CPU stand-in checks the mapping)."""
    import types

    ops_attention = importlib.import_module("mrtlab.ops.attention")
    calls = []

    class LowerTriangularMask:
        pass

    def fake_mea(q, k, v, attn_bias=None, p=0.0, scale=None):
        calls.append(q.shape)
        def t(x):
            return x.transpose(1, 2)
        return t(quad_attention(t(q), t(k), t(v), isinstance(attn_bias, LowerTriangularMask)))

    fake = types.ModuleType("xformers.ops")
    fake.memory_efficient_attention = fake_mea
    fake.LowerTriangularMask = LowerTriangularMask
    monkeypatch.setitem(sys.modules, "xformers", types.ModuleType("xformers"))
    monkeypatch.setitem(sys.modules, "xformers.ops", fake)
    monkeypatch.setattr(ops_attention, "use_xformers", lambda x: True)
    q, k, v = (torch.randn(2, 3, 10, 8) for _ in range(3))
    out = ops_attention.attention(q, k, v)
    assert calls == [(2, 10, 3, 8)]
    assert rel(out, torch.nn.functional.scaled_dot_product_attention(q, k, v)) <= 1e-5
    out = ops_attention.attention(q, k, v, causal=True)
    sdpa = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert rel(out, sdpa) <= 1e-5
