"""The chunked WKV-6 form equals the step-by-step recurrence, forward and backward."""
import pytest
import torch

from mrtlab.ops import wkv6_chunk, wkv6_recurrent


def rel(a, b):
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


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
