"""The chunked WKV-6 form equals the step-by-step recurrence, forward and backward."""
import pytest
import torch

from mrtlab.ops.naive import wkv6_recurrent
from mrtlab.ops.wkv6 import wkv6_chunk

from .helpers import rel


def inputs(B=2, H=3, T=53, K=8, V=8, decay_scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    r, k = (torch.randn(B, H, T, K, generator=g) for _ in range(2))
    v = torch.randn(B, H, T, V, generator=g)
    w = -torch.exp(torch.randn(B, H, T, K, generator=g)) * decay_scale
    u = torch.randn(H, K, generator=g)
    h0 = torch.randn(B, H, K, V, generator=g)
    return [t.requires_grad_() for t in (r, k, v, w, u, h0)]


@pytest.mark.parametrize("chunk", [1, 4, 16, 64])
@pytest.mark.parametrize("decay_scale", [0.1, 1.0, 20.0])
def test_chunk_equals_recurrence_fp32(chunk, decay_scale):
    r, k, v, w, u, h0 = inputs(decay_scale=decay_scale)
    o_ref, s_ref = wkv6_recurrent(r, k, v, w, u, 0.35, h0, True)
    o, s = wkv6_chunk(r, k, v, w, u, 0.35, h0, True, chunk_size=chunk)
    assert rel(o, o_ref) <= 1e-5 and rel(s, s_ref) <= 1e-5
    go, gs = torch.randn_like(o), torch.randn_like(s)
    ref = torch.autograd.grad((o_ref * go).sum() + (s_ref * gs).sum(), (r, k, v, w, u, h0))
    got = torch.autograd.grad((o * go).sum() + (s * gs).sum(), (r, k, v, w, u, h0))
    for name, a, b in zip("r k v w u h0".split(), got, ref):
        assert rel(a, b) <= 1e-5, name


def test_chunk_without_initial_state_and_uneven_length():
    r, k, v, w, u, _ = inputs(T=7, V=5)
    o_ref, _ = wkv6_recurrent(r, k, v, w, u)
    o, s = wkv6_chunk(r, k, v, w, u, chunk_size=16)
    assert o.shape == o_ref.shape and s is None
    assert rel(o, o_ref) <= 1e-5


def test_state_carries_across_calls():
    """Splitting a sequence and passing the state on gives the same output."""
    r, k, v, w, u, h0 = (t.detach() for t in inputs(T=40))
    full, s_full = wkv6_chunk(r, k, v, w, u, 1.0, h0, True)
    a, s_a = wkv6_chunk(r[:, :, :17], k[:, :, :17], v[:, :, :17], w[:, :, :17], u, 1.0, h0, True)
    b, s_b = wkv6_chunk(r[:, :, 17:], k[:, :, 17:], v[:, :, 17:], w[:, :, 17:], u, 1.0, s_a, True)
    assert rel(torch.cat([a, b], 2), full) <= 1e-5 and rel(s_b, s_full) <= 1e-5


def test_against_fla_references():
    pytest.importorskip("fla")
    from fla.ops.rwkv6.chunk_naive import naive_chunk_rwkv6
    from fla.ops.rwkv6.recurrent_naive import naive_recurrent_rwkv6
    r, k, v, w, u, h0 = inputs(T=64)
    o, s = wkv6_chunk(r, k, v, w, u, 0.125, h0, True)
    ref, s_ref = naive_recurrent_rwkv6(r, k, v, w, u, scale=0.125, initial_state=h0,
                                       output_final_state=True)
    assert rel(o, ref) <= 1e-5 and rel(s, s_ref) <= 1e-5
    go = torch.randn_like(o)
    got = torch.autograd.grad((o * go).sum(), (r, k, v, w, u, h0))
    want = torch.autograd.grad((ref * go).sum(), (r, k, v, w, u, h0))
    for name, a, b in zip("r k v w u h0".split(), got, want):
        assert rel(a, b) <= 1e-4, name
    # fla's naive chunk form has no scale, no initial state and scale 1
    o1, _ = wkv6_chunk(r, k, v, w, u, 1.0)
    assert rel(o1, naive_chunk_rwkv6(r, k, v, w, u, chunk_size=16)) <= 1e-4


def test_cuda_dispatch_maps_arguments_to_fla(monkeypatch):
    """With the device check patched, ``wkv6`` calls fla's ``chunk_rwkv6`` in its
    ``[B, T, H, K]`` layout; a CPU stand-in built on fla's reference checks the mapping."""
    pytest.importorskip("fla")
    import fla.ops.rwkv6 as fla_rwkv6
    from fla.ops.rwkv6.recurrent_naive import naive_recurrent_rwkv6

    import mrtlab.ops.wkv6 as mod

    calls = []

    def fake_chunk_rwkv6(r, k, v, w, u, scale=None, initial_state=None, output_final_state=False,
                         cu_seqlens=None, **kw):
        calls.append(r.shape)
        def t(x):
            return x.transpose(1, 2)  # [B,T,H,K] -> [B,H,T,K]
        o, s = naive_recurrent_rwkv6(t(r), t(k), t(v), t(w), u, scale=scale,
                                     initial_state=initial_state, output_final_state=output_final_state)
        return t(o), s

    monkeypatch.setattr(mod, "use_fla", lambda x: True)
    monkeypatch.setattr(fla_rwkv6, "chunk_rwkv6", fake_chunk_rwkv6)
    r, k, v, w, u, h0 = (t.detach() for t in inputs(B=2, H=3, T=20, K=8, V=6))
    o, s = mod.wkv6(r, k, v, w, u, 0.3, h0, True)
    ref, s_ref = wkv6_chunk(r, k, v, w, u, 0.3, h0, True)
    assert calls == [(2, 20, 3, 8)]
    assert o.shape == ref.shape and rel(o, ref) <= 1e-5 and rel(s, s_ref) <= 1e-5


def test_cpu_never_imports_fla():
    import subprocess
    import sys
    code = ("import sys, torch; from mrtlab.mixers import RWKV6Mixer; "
            "m = RWKV6Mixer(32, heads=4); m(torch.randn(1, 3, 5, 32)).sum().backward(); "
            "print('fla' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
