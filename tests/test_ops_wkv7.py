"""WKV-7: the chunked form equals the recurrence and fla's reference, forward and backward;
the fla dispatch maps our ``[B, H, T, K]`` arguments onto ``chunk_rwkv7`` correctly."""
import inspect

import pytest
import torch
import torch.nn.functional as F

from mrtlab.ops import utils
from mrtlab.ops import wkv7 as wkv7_module
from mrtlab.ops.naive import wkv7_recurrent, wkv7_step
from mrtlab.ops.wkv7 import wkv7, wkv7_chunk

from .helpers import rel

TOL = 1e-5
NAMES = "r w k v a b h0".split()


def inputs(B=2, H=2, T=45, K=16, V=12, decay="weak", seed=0):
    """RWKV-7-like inputs: ``a = -kk``, ``b = kk * iclr`` (``kk`` unit-norm, ``iclr`` in [0, 1])."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g)

    r, k = randn(B, H, T, K), randn(B, H, T, K)
    v = randn(B, H, T, V)
    if decay == "weak":      # RWKV-7's own range, w in (-0.61, 0)
        w = -0.6065 * torch.sigmoid(randn(B, H, T, K))
    elif decay == "strong":
        w = -torch.exp(randn(B, H, T, K)) * 20
    else:                    # "mixed": rare huge decays among near-zero ones, in every channel
        strong = torch.rand(B, H, T, K, generator=g) < 0.2
        w = torch.where(strong, -torch.exp(randn(B, H, T, K) + 3) * 20,
                        -0.01 * torch.sigmoid(randn(B, H, T, K)))
    kk = F.normalize(randn(B, H, T, K), dim=-1)
    iclr = torch.sigmoid(randn(B, H, T, K))
    a, b = -kk, kk * iclr
    h0 = randn(B, H, K, V)
    return [x.requires_grad_() for x in (r, w, k, v, a, b, h0)]


def grads(o, s, xs, seed=1):
    g = torch.Generator().manual_seed(seed)
    go, gs = torch.randn(o.shape, generator=g), torch.randn(s.shape, generator=g)
    return torch.autograd.grad((o * go).sum() + (s * gs).sum(), xs)


def assert_close(got, ref, names, tol=TOL):
    for name, x, y in zip(names, got, ref):
        assert torch.isfinite(x).all(), name
        assert rel(x, y) <= tol, (name, rel(x, y))


@pytest.mark.parametrize("chunk", [1, 4, 16, 64])
@pytest.mark.parametrize("decay", ["weak", "strong", "mixed"])
def test_chunk_equals_recurrence(chunk, decay):
    xs = inputs(decay=decay)
    r, w, k, v, a, b, h0 = xs
    o_ref, s_ref = wkv7_recurrent(r, w, k, v, a, b, 0.35, h0, True)
    o, s = wkv7_chunk(r, w, k, v, a, b, 0.35, h0, True, chunk_size=chunk)
    assert o.shape == o_ref.shape and s.shape == s_ref.shape
    assert_close((o, s), (o_ref, s_ref), ("o", "state"))
    assert_close(grads(o, s, xs), grads(o_ref, s_ref, xs), NAMES)


@pytest.mark.parametrize("chunk", [4, 16])
def test_pairwise_decay_path(monkeypatch, chunk):
    """Weak decays take the factored path; forcing the pairwise one gives the same result."""
    xs = inputs(T=37)
    r, w, k, v, a, b, h0 = xs
    o_ref, s_ref = wkv7_chunk(r, w, k, v, a, b, 1.0, h0, True, chunk_size=chunk)
    monkeypatch.setattr(wkv7_module, "MAX_CHUNK_DECAY", -1.0)
    o, s = wkv7_chunk(r, w, k, v, a, b, 1.0, h0, True, chunk_size=chunk)
    assert_close((o, s), (o_ref, s_ref), ("o", "state"))
    assert_close(grads(o, s, xs), grads(o_ref, s_ref, xs), NAMES)


def test_uneven_length_without_initial_state():
    r, w, k, v, a, b, _ = inputs(T=7, V=5)
    o_ref, s_ref = wkv7_recurrent(r, w, k, v, a, b, output_final_state=True)
    o, s = wkv7_chunk(r, w, k, v, a, b, chunk_size=16)
    assert o.shape == o_ref.shape and s is None
    assert rel(o, o_ref) <= TOL
    _, s = wkv7_chunk(r, w, k, v, a, b, output_final_state=True, chunk_size=4)
    assert rel(s, s_ref) <= TOL


@pytest.mark.parametrize("op", [wkv7_chunk, wkv7_recurrent])
def test_empty_sequence(op):
    r, w, k, v, a, b, h0 = (x.detach() for x in inputs(T=0))
    o, s = op(r, w, k, v, a, b, 1.0, h0, True)
    assert o.shape == (2, 2, 0, 12) and torch.equal(s, h0)
    o, s = op(r, w, k, v, a, b, output_final_state=True)
    assert torch.equal(s, torch.zeros_like(h0))


@pytest.mark.parametrize("split", [0, 1, 20])
def test_step_decoding_continues_chunked_prefix(split):
    """Encode a prefix with the chunked form, then decode token by token from its state."""
    r, w, k, v, a, b, h0 = (x.detach() for x in inputs(T=40, decay="mixed"))
    full, s_full = wkv7_chunk(r, w, k, v, a, b, 0.5, h0, True)
    pre, state = wkv7_chunk(*(x[:, :, :split] for x in (r, w, k, v, a, b)), 0.5, h0, True)
    outs = [pre]
    for t in range(split, r.shape[2]):
        state, o = wkv7_step(r[:, :, t], w[:, :, t], k[:, :, t], v[:, :, t], a[:, :, t],
                             b[:, :, t], state, 0.5)
        outs.append(o.unsqueeze(2))
    assert rel(torch.cat(outs, 2), full) <= TOL and rel(state, s_full) <= TOL


@pytest.mark.parametrize("scale", [1.0, 16 ** -0.5, 0.3])
@pytest.mark.parametrize("decay", ["weak", "strong"])
def test_matches_fla_reference(scale, decay):
    """fla's ``dplr_recurrence`` with ``q=r, gk=w, alpha=a, beta=b`` (as ``chunk_rwkv7`` calls
    the dplr op); it always scales ``q`` by ``K ** -0.5``, so ``r`` is pre-scaled to match."""
    pytest.importorskip("fla")
    from fla.ops.generalized_delta_rule.dplr.naive import dplr_recurrence

    xs = inputs(T=32, decay=decay)
    r, w, k, v, a, b, h0 = xs
    K = r.shape[-1]
    o_ref, s_ref = dplr_recurrence(r * (scale * K ** 0.5), k, v, a, b, w, h0, True)
    g_ref = grads(o_ref, s_ref, xs)
    for o, s in (wkv7_recurrent(r, w, k, v, a, b, scale, h0, True),
                 wkv7_chunk(r, w, k, v, a, b, scale, h0, True, chunk_size=16)):
        assert_close((o, s), (o_ref, s_ref), ("o", "state"))
        assert_close(grads(o, s, xs), g_ref, NAMES)


def test_matches_fla_chunkwise_reference():
    pytest.importorskip("fla")
    from fla.ops.generalized_delta_rule.dplr.naive import dplr_chunkwise

    r, w, k, v, a, b, h0 = (x.detach() for x in inputs(T=32))
    K = r.shape[-1]
    o_ref, s_ref = dplr_chunkwise(r * K ** 0.5, k, v, a, b, w, h0, True, chunk_size=16)
    o, s = wkv7_chunk(r, w, k, v, a, b, 1.0, h0, True, chunk_size=8)
    assert rel(o, o_ref) <= TOL and rel(s, s_ref) <= TOL


def test_fla_dispatch_mapping(monkeypatch):
    """With fla "on", ``wkv7`` calls ``chunk_rwkv7`` with its documented ``[B, T, H, K]``
    arguments; a CPU stand-in built on fla's reference must reproduce ``wkv7_chunk``."""
    fla_rwkv7 = pytest.importorskip("fla.ops.rwkv7")
    from fla.ops.generalized_delta_rule.dplr.naive import dplr_recurrence

    B, H, T, K, V = 2, 3, 21, 8, 12          # all distinct, so a wrong transpose cannot pass
    r, w, k, v, a, b, h0 = (x.detach() for x in inputs(B, H, T, K, V, decay="weak"))
    signature = inspect.signature(fla_rwkv7.chunk_rwkv7)
    calls = []

    def fake_chunk_rwkv7(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)   # our call must fit the real signature
        bound.apply_defaults()
        p = bound.arguments
        for name in "rwkab":
            assert p[name].shape == (B, T, H, K), name
        assert p["v"].shape == (B, T, H, V)
        assert p["cu_seqlens"] is None and p["cp_context"] is None
        if p["initial_state"] is not None:
            assert p["initial_state"].shape == (B, H, K, V)
        # chunk_rwkv7 = dplr op with q=r, k=k, v=v, a=a, b=b, gk=w and the given scale
        q, kk, vv, aa, bb, gk = (p[n].transpose(1, 2) for n in "rkvabw")
        o, s = dplr_recurrence(q * (p["scale"] * K ** 0.5), kk, vv, aa, bb, gk,
                               p["initial_state"], p["output_final_state"])
        calls.append(p)
        return o.transpose(1, 2), s

    monkeypatch.setattr(fla_rwkv7, "chunk_rwkv7", fake_chunk_rwkv7)
    monkeypatch.setattr(wkv7_module, "use_fla", lambda x: True)
    for kwargs in ({}, {"scale": 0.3, "initial_state": h0, "output_final_state": True},
                   {"initial_state": h0}, {"output_final_state": True}):
        o, s = wkv7(r, w, k, v, a, b, **kwargs)
        o_ref, s_ref = wkv7_chunk(r, w, k, v, a, b, **kwargs)
        assert o.shape == o_ref.shape and rel(o, o_ref) <= TOL
        assert (s is None) == (s_ref is None)
        if s is not None:
            assert rel(s, s_ref) <= TOL
    assert len(calls) == 4


def test_cpu_does_not_dispatch():
    r, w, k, v, a, b, h0 = (x.detach() for x in inputs(T=9))
    o, s = wkv7(r, w, k, v, a, b, 1.0, h0, True)
    o_ref, s_ref = wkv7_chunk(r, w, k, v, a, b, 1.0, h0, True)
    assert torch.equal(o, o_ref) and torch.equal(s, s_ref)


def test_segments_equal_one_pass(monkeypatch):
    """Long inputs run as segments of chunks, the state carried: same result, same gradients."""
    xs = inputs(T=37, decay="mixed")
    r, w, k, v, a, b, h0 = xs
    o_ref, s_ref = wkv7_chunk(r, w, k, v, a, b, 0.5, h0, True, chunk_size=4)
    monkeypatch.setattr(utils, "SEGMENT_ELEMENTS", 1)  # one chunk per segment
    o, s = wkv7_chunk(r, w, k, v, a, b, 0.5, h0, True, chunk_size=4)
    assert_close((o, s), (o_ref, s_ref), ("o", "state"))
    assert_close(grads(o, s, xs), grads(o_ref, s_ref, xs), NAMES)
