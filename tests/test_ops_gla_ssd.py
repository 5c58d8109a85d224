"""GLA and SSD: the chunked forms equal the step recurrence and fla's references, forward and
backward; the CUDA dispatch hands fla the right arguments."""
import pytest
import torch

from mrtlab.ops import gla as gla_mod
from mrtlab.ops import naive, utils
from mrtlab.ops import ssd as ssd_mod

from .helpers import rel

OPS = {
    "gla": (gla_mod.gla_chunk, naive.gla_recurrent, naive.gla_step),
    "ssd": (ssd_mod.ssd_chunk, naive.ssd_recurrent, naive.ssd_step),
}
DECAYS = ["weak", "medium", "strong", "spiky"]


def inputs(op, B=2, H=3, T=53, K=8, V=6, decay="medium", seed=0):
    """``q, k, v, g, h0`` (leaves needing grad); ``g`` per key channel (GLA) or per head (SSD)."""
    gen = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(B, H, T, K, generator=gen) for _ in range(2))
    v = torch.randn(B, H, T, V, generator=gen)
    shape = (B, H, T, K) if op == "gla" else (B, H, T)
    g = -torch.exp(torch.randn(shape, generator=gen))
    if decay == "weak":
        g = g * 0.05
    elif decay == "strong":
        g = g * 20.0
    elif decay == "spiky":  # weak gates, a few near-total resets: the cumulative sum is huge,
        g = g * 0.05        # the decay between neighbours is not
        g = torch.where(torch.rand(shape, generator=gen) < 0.05, torch.full_like(g, -500.0), g)
    h0 = torch.randn(B, H, K, V, generator=gen)
    return [t.requires_grad_() for t in (q, k, v, g, h0)]


def outputs_and_grads(fn, xs, seed=1):
    """Outputs, final state and the gradients of every input under a random cotangent."""
    o, s = fn(*xs)
    gen = torch.Generator().manual_seed(seed)
    go, gs = torch.randn(o.shape, generator=gen), torch.randn(s.shape, generator=gen)
    grads = torch.autograd.grad((o * go).sum() + (s * gs).sum(), xs, allow_unused=True)
    return [o, s, *grads]


NAMES = ["o", "state", "dq", "dk", "dv", "dg", "dh0"]


def assert_close(got, ref, tol=1e-5):
    for name, a, b in zip(NAMES, got, ref):
        assert a.shape == b.shape, name
        assert rel(a, b) <= tol, (name, rel(a, b))


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("chunk", [1, 2, 16, 64])
@pytest.mark.parametrize("decay", DECAYS)
def test_chunk_equals_recurrence_fp32(op, chunk, decay):
    chunk_fn, recurrent, _ = OPS[op]
    xs = inputs(op, decay=decay)
    ref = outputs_and_grads(lambda q, k, v, g, h0: recurrent(q, k, v, g, 0.35, h0, True), xs)
    got = outputs_and_grads(lambda q, k, v, g, h0: chunk_fn(q, k, v, g, 0.35, h0, True, chunk), xs)
    assert_close(got, ref)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("decay", ["medium", "strong"])
def test_segments_equal_one_pass(op, decay, monkeypatch):
    """Long inputs run as segments of chunks, the state carried: same result, same gradients."""
    chunk_fn = OPS[op][0]
    xs = inputs(op, T=70, decay=decay)
    ref = outputs_and_grads(lambda *x: chunk_fn(*x[:4], 0.5, x[4], True, 8), xs)
    monkeypatch.setattr(utils, "SEGMENT_ELEMENTS", 1)  # one chunk per segment
    got = outputs_and_grads(lambda *x: chunk_fn(*x[:4], 0.5, x[4], True, 8), xs)
    assert_close(got, ref)


def test_ssd_chunk_size_need_not_be_a_power_of_two():
    xs = inputs("ssd", T=23)
    ref = outputs_and_grads(lambda *x: naive.ssd_recurrent(*x[:4], None, x[4], True), xs)
    got = outputs_and_grads(lambda *x: ssd_mod.ssd_chunk(*x[:4], None, x[4], True, 5), xs)
    assert_close(got, ref)


def test_gla_chunk_size_must_be_a_power_of_two():
    q, k, v, g, _ = inputs("gla", T=8)
    with pytest.raises(ValueError):
        gla_mod.gla_chunk(q, k, v, g, chunk_size=24)


@pytest.mark.parametrize("op", OPS)
def test_default_scale_no_initial_state_uneven_length(op):
    chunk_fn, recurrent, _ = OPS[op]
    q, k, v, g, _ = (t.detach() for t in inputs(op, T=7, V=5))
    o_ref, _ = recurrent(q, k, v, g)
    o, s = chunk_fn(q, k, v, g, chunk_size=16)
    assert o.shape == o_ref.shape and s is None
    assert rel(o, o_ref) <= 1e-5
    o_scaled, _ = recurrent(q, k, v, g, q.shape[-1] ** -0.5)  # fla's default scale
    assert rel(o, o_scaled) <= 1e-5


@pytest.mark.parametrize("op", OPS)
def test_empty_sequence(op):
    chunk_fn = OPS[op][0]
    q, k, v, g, h0 = (t.detach() for t in inputs(op, T=0))
    o, s = chunk_fn(q, k, v, g, None, h0, True)
    assert o.shape == (2, 3, 0, 6) and torch.equal(s, h0)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("decay", ["weak", "strong"])
def test_transposed_views_as_inputs(op, decay):
    """A model holding ``[B, T, H, K]`` may pass ``.transpose(1, 2)`` views: same result."""
    chunk_fn = OPS[op][0]
    xs = [t.detach() for t in inputs(op, T=45, decay=decay)]
    views = [x.transpose(1, 2).contiguous().transpose(1, 2) for x in xs[:4]]
    assert not views[0].is_contiguous()
    o_ref, s_ref = chunk_fn(*xs[:4], None, xs[4], True, 16)
    o, s = chunk_fn(*views, None, xs[4], True, 16)
    assert rel(o, o_ref) <= 1e-6 and rel(s, s_ref) <= 1e-6


@pytest.mark.parametrize("op", OPS)
def test_state_carries_across_calls(op):
    """Splitting a sequence and passing the state on gives the same output."""
    chunk_fn = OPS[op][0]
    q, k, v, g, h0 = (t.detach() for t in inputs(op, T=40))
    full, s_full = chunk_fn(q, k, v, g, None, h0, True, 16)
    a, s_a = chunk_fn(q[:, :, :17], k[:, :, :17], v[:, :, :17], g[:, :, :17], None, h0, True, 16)
    b, s_b = chunk_fn(q[:, :, 17:], k[:, :, 17:], v[:, :, 17:], g[:, :, 17:], None, s_a, True, 16)
    assert rel(torch.cat([a, b], 2), full) <= 1e-5 and rel(s_b, s_full) <= 1e-5


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("decay", ["medium", "strong"])
def test_step_decoding_continues_the_chunked_prefix(op, decay):
    """Encode a prefix with the chunked form, then decode token by token from its state."""
    chunk_fn, _, step = OPS[op]
    q, k, v, g, h0 = (t.detach() for t in inputs(op, T=30, decay=decay))
    full, s_full = chunk_fn(q, k, v, g, 0.7, h0, True, 8)
    _, state = chunk_fn(q[:, :, :13], k[:, :, :13], v[:, :, :13], g[:, :, :13], 0.7, h0, True, 8)
    outs = []
    for t in range(13, 30):
        state, o = step(q[:, :, t], k[:, :, t], v[:, :, t], g[:, :, t], state, 0.7)
        outs.append(o)
    assert rel(torch.stack(outs, 2), full[:, :, 13:]) <= 1e-5 and rel(state, s_full) <= 1e-5


# --- fla's references (fla's own layout is [B, T, H, ...]) ---------------------------------

def bthk(*xs):
    return [x.transpose(1, 2) for x in xs]


@pytest.mark.parametrize("decay", DECAYS)
def test_gla_matches_fla_naive_recurrent(decay):
    pytest.importorskip("fla")
    from fla.ops.gla.naive import naive_recurrent_gla  # scale fixed at 1/sqrt(K)

    def fla_ref(q, k, v, g, h0):
        o, s = naive_recurrent_gla(*bthk(q, k, v, g), initial_state=h0, output_final_state=True)
        return o.transpose(1, 2), s

    xs = inputs("gla", decay=decay)
    ref = outputs_and_grads(fla_ref, xs)
    got = outputs_and_grads(lambda *x: gla_mod.gla_chunk(*x[:4], None, x[4], True), xs)
    assert_close(got, ref)


@pytest.mark.parametrize("decay", DECAYS)
def test_ssd_matches_fla_naive_recurrent_simple_gla(decay):
    pytest.importorskip("fla")
    from fla.ops.simple_gla.naive import naive_recurrent_simple_gla

    def fla_ref(q, k, v, g, h0):
        o, s = naive_recurrent_simple_gla(*bthk(q, k, v, g), scale=0.3, initial_state=h0,
                                          output_final_state=True)
        return o.transpose(1, 2), s

    xs = inputs("ssd", decay=decay)
    ref = outputs_and_grads(fla_ref, xs)
    got = outputs_and_grads(lambda *x: ssd_mod.ssd_chunk(*x[:4], 0.3, x[4], True), xs)
    assert_close(got, ref)


def test_ssd_matches_fla_naive_chunk_simple_gla():
    pytest.importorskip("fla")
    from fla.ops.simple_gla.naive import naive_chunk_simple_gla

    def fla_ref(q, k, v, g, h0):
        o, s = naive_chunk_simple_gla(*bthk(q, k, v, g), initial_state=h0,
                                      output_final_state=True, chunk_size=16)
        return o.transpose(1, 2), s

    xs = inputs("ssd", decay="medium")  # its decay is a difference of cumulative sums
    ref = outputs_and_grads(fla_ref, xs)
    got = outputs_and_grads(lambda *x: ssd_mod.ssd_chunk(*x[:4], None, x[4], True), xs)
    assert_close(got, ref)


# --- the CUDA dispatch, its argument mapping checked on CPU -------------------------------

B, H, T, K, V = 2, 3, 11, 4, 5  # all different: a swapped axis cannot go unnoticed


def fake_chunk_gla(q, k, v, g, scale=None, initial_state=None, output_final_state=False,
                   state_v_first=False, cu_seqlens=None, cu_seqlens_cpu=None):
    """``fla.ops.gla.chunk_gla`` as documented: ``[B, T, H, K]`` in and out, state ``[B,H,K,V]``."""
    from fla.ops.gla.naive import naive_recurrent_gla
    assert q.shape == k.shape == g.shape == (B, T, H, K) and v.shape == (B, T, H, V)
    assert not state_v_first and cu_seqlens is None and cu_seqlens_cpu is None
    if initial_state is not None:
        assert initial_state.shape == (B, H, K, V) and initial_state.dtype == torch.float32
    scale = K ** -0.5 if scale is None else scale
    fake_chunk_gla.calls += 1
    return naive_recurrent_gla(q * (scale * K ** 0.5), k, v, g, initial_state, output_final_state)


def fake_chunk_simple_gla(q, k, v, g=None, g_gamma=None, scale=None, initial_state=None,
                          output_final_state=False, state_v_first=False, cu_seqlens=None,
                          cu_seqlens_cpu=None, **kwargs):
    """``fla.ops.simple_gla.chunk_simple_gla`` as documented: ``g: [B, T, H]``."""
    from fla.ops.simple_gla.naive import naive_recurrent_simple_gla
    assert q.shape == k.shape == (B, T, H, K) and v.shape == (B, T, H, V)
    assert g is not None and g.shape == (B, T, H) and g_gamma is None
    assert not state_v_first and cu_seqlens is None and cu_seqlens_cpu is None and not kwargs
    if initial_state is not None:
        assert initial_state.shape == (B, H, K, V)
    scale = K ** -0.5 if scale is None else scale
    fake_chunk_simple_gla.calls += 1
    return naive_recurrent_simple_gla(q, k, v, g, scale, initial_state, output_final_state)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("scale", [None, 0.6])
@pytest.mark.parametrize("with_state", [False, True])
def test_dispatch_maps_arguments_to_fla(op, scale, with_state, monkeypatch):
    pytest.importorskip("fla")
    import fla.ops.gla
    import fla.ops.simple_gla

    module, entry = (gla_mod, gla_mod.gla) if op == "gla" else (ssd_mod, ssd_mod.ssd)
    fake = fake_chunk_gla if op == "gla" else fake_chunk_simple_gla
    xs = inputs(op, B=B, H=H, T=T, K=K, V=V)
    h0 = xs[4] if with_state else None
    ref = outputs_and_grads(lambda *x: OPS[op][0](*x[:4], scale, h0, True), xs)

    fake.calls = 0
    monkeypatch.setattr(module, "use_fla", lambda x: True)
    if op == "gla":
        monkeypatch.setattr(fla.ops.gla, "chunk_gla", fake)
    else:
        monkeypatch.setattr(fla.ops.simple_gla, "chunk_simple_gla", fake)
    got = outputs_and_grads(lambda *x: entry(*x[:4], scale, h0, True), xs)
    assert fake.calls == 1
    if not with_state:  # h0 took no part: its gradient is None on both paths
        got, ref = got[:-1], ref[:-1]
    assert_close(got, ref)

    o, s = entry(*(x.detach() for x in xs[:4]), scale, None, False)
    assert s is None and o.shape == (B, H, T, V)
