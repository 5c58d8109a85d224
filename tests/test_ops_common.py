"""What every op promises alike: ``scale=None`` is ``1/sqrt(K)``, and an empty sequence
returns its initial state (zeros when none is given), in the chunked and the naive form."""
import pytest
import torch

from mrtlab.ops import gla, naive, ssd, wkv6, wkv7

B, H, K, V = 2, 3, 8, 6


def op_inputs(name, T, seed=0):
    """The op's sequence inputs ``[B, H, T, ...]`` and its fixed extras (WKV-6's ``u``)."""
    g = torch.Generator().manual_seed(seed)
    r, k = torch.randn(B, H, T, K, generator=g), torch.randn(B, H, T, K, generator=g)
    v = torch.randn(B, H, T, V, generator=g)
    w = -torch.exp(torch.randn(B, H, T, K, generator=g))
    if name == "wkv6":
        return (r, k, v, w, torch.randn(H, K, generator=g))
    if name == "wkv7":
        kk = torch.nn.functional.normalize(torch.randn(B, H, T, K, generator=g), dim=-1)
        return (r, w, k, v, -kk, kk * 0.5)
    if name == "ssd":
        return (r, k, v, w[..., 0])
    return (r, k, v, w)


FORMS = {  # name: (dispatching op, chunked form, naive form)
    "wkv6": (wkv6.wkv6, wkv6.wkv6_chunk, naive.wkv6_recurrent),
    "wkv7": (wkv7.wkv7, wkv7.wkv7_chunk, naive.wkv7_recurrent),
    "gla": (gla.gla, gla.gla_chunk, naive.gla_recurrent),
    "ssd": (ssd.ssd, ssd.ssd_chunk, naive.ssd_recurrent),
}
CASES = [(name, i) for name in FORMS for i in range(3)]


@pytest.mark.parametrize("name, form", CASES)
def test_empty_sequence_returns_the_initial_or_zero_state(name, form):
    fn = FORMS[name][form]
    xs = op_inputs(name, T=0)
    h0 = torch.randn(B, H, K, V)
    o, s = fn(*xs, None, h0, True)
    assert o.shape == (B, H, 0, V) and torch.equal(s, h0)
    o, s = fn(*xs, output_final_state=True)
    assert o.shape == (B, H, 0, V) and torch.equal(s, torch.zeros(B, H, K, V))
    assert fn(*xs)[1] is None


@pytest.mark.parametrize("name, form", CASES)
def test_scale_none_is_one_over_sqrt_k(name, form):
    fn = FORMS[name][form]
    xs = op_inputs(name, T=11)
    o_default, _ = fn(*xs)
    o_explicit, _ = fn(*xs, K ** -0.5)
    o_one, _ = fn(*xs, 1.0)
    assert torch.allclose(o_default, o_explicit, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(o_default, o_one, rtol=1e-3, atol=1e-3)
