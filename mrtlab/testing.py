"""Conformance checks a plugin author calls in their own tests (docs/plugins.md):

    from mrtlab.testing import check_global_mixer, check_entropy_model
    def test_my_mixer():
        check_global_mixer(MyMixer, heads=4)

Each builds the part, randomises its weights (parts that start as the identity would pass
anything) and raises ``AssertionError`` naming what failed. The built-in parts pass them
(tests/test_conformance.py).
"""
from __future__ import annotations

import torch
from torch import nn

from .entropy.base import EntropyModel, Layout
from .errors import MrtlabError
from .mixers.base import GlobalMixer, LocalMixer
from .mixers.scan import ScanMixer, scan


def randomise(module: nn.Module, seed: int = 0, scale: float = 0.3) -> nn.Module:
    """Every floating-point parameter drawn at random (a zero-initialised output projection
    would make any mixer look like the identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.is_floating_point():
                p.copy_(torch.randn(p.shape, generator=g) * scale)
    return module


def with_threads(n: int, fn, *args):
    """``fn(*args)`` on ``n`` threads."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(old)


def check_global_mixer(cls: type, dim: int = 32, reach: bool = True, **kwargs) -> None:
    """A global mixer ``cls(dim, **kwargs)``:

    - keeps the shape ``[B, nWh, nWw, D]`` on square, wide, tall and single-window grids;
    - mixes each batch item alone (no leak between images);
    - reaches both ways (``reach``): every window's output depends on every other window,
      before and after it in raster order (the identity ablation passes ``reach=False``);
    - for a ``ScanMixer``, its op is causal in scan order, so that its chunked form equals
      its step form: the op on a prefix of the sequence gives the full sequence's outputs there;
    - gives the same output with 1 and 2 threads (to 1e-5).
    """
    assert issubclass(cls, GlobalMixer), f"{cls.__name__} does not subclass GlobalMixer"
    mixer = randomise(cls(dim, **kwargs)).eval()
    g = torch.Generator().manual_seed(1)
    for h, w in ((4, 4), (2, 5), (5, 1), (1, 1)):
        x = torch.randn(2, h, w, dim, generator=g)
        y = mixer(x)
        assert y.shape == x.shape, f"{cls.__name__}: output {list(y.shape)} for input {list(x.shape)}"
        assert torch.isfinite(y).all(), f"{cls.__name__}: non-finite output on a {h}×{w} grid"
        alone = mixer(x[1:])
        assert torch.allclose(alone, y[1:], atol=1e-5), f"{cls.__name__}: batch items leak into each other"
    x = torch.randn(1, 3, 4, dim, generator=g, requires_grad=True)
    if reach:
        for i, j in ((0, 0), (2, 3), (1, 2)):
            grad, = torch.autograd.grad(mixer(x)[0, i, j].sum(), x)
            seen = grad[0].abs().sum(-1) > 0
            assert seen.all(), (f"{cls.__name__}: window ({i}, {j}) does not see windows "
                                f"{[tuple(p) for p in (~seen).nonzero().tolist()]} (bidirectional reach)")
    if isinstance(mixer, ScanMixer):
        check_scan_op(mixer, dim)
    x = x.detach()
    one, two = with_threads(1, mixer, x), with_threads(2, mixer, x)
    assert torch.allclose(one, two, atol=1e-5), f"{cls.__name__}: 1 and 2 threads differ"


def check_scan_op(mixer: ScanMixer, dim: int) -> None:
    """The op's output at position t depends on positions ≤ t only (its recurrent step form),
    for each head group's scan order."""
    g = torch.Generator().manual_seed(2)
    z = torch.randn(1, 3, 4, dim, generator=g)
    with torch.no_grad():
        tensors, _ = mixer.inputs(mixer.norm(z))
        group = mixer.heads // len(mixer.scans)
        for i, order in enumerate(mixer.scans):
            heads = slice(i * group, (i + 1) * group)
            seq = [scan(t[:, :, :, heads], order).transpose(1, 2) for t in tensors]   # [B, h, T, …]
            full = mixer.op(*seq, heads=heads)
            T = full.shape[2]
            for t in (1, T // 2, T - 1):
                prefix = mixer.op(*(s[:, :, :t] for s in seq), heads=heads)
                assert torch.allclose(prefix, full[:, :, :t], atol=1e-4), (
                    f"{type(mixer).__name__}: op in scan order {order!r} is not causal: its output on the "
                    f"first {t} tokens changes with later tokens (its chunked and step forms differ)")


def check_local_mixer(cls: type, dim: int = 32, **kwargs) -> None:
    """A local mixer ``cls(dim, **kwargs)`` keeps ``[N, T, D]``, mixes each window alone, and
    gives the same output with 1 and 2 threads."""
    assert issubclass(cls, LocalMixer), f"{cls.__name__} does not subclass LocalMixer"
    mixer = randomise(cls(dim, **kwargs)).eval()
    x = torch.randn(3, 20, dim, generator=torch.Generator().manual_seed(3))
    y = mixer(x)
    assert y.shape == x.shape, f"{cls.__name__}: output {list(y.shape)} for input {list(x.shape)}"
    assert torch.allclose(mixer(x[1:2]), y[1:2], atol=1e-5), f"{cls.__name__}: windows leak into each other"
    assert torch.allclose(with_threads(1, mixer, x), with_threads(2, mixer, x), atol=1e-5)


LAYOUTS = (Layout(1, 1, 1), Layout(2, 3, 4), Layout(4, 2, 3), Layout(1, 5, 2))


def check_entropy_model(cls: type, levels: tuple[int, ...] = (5, 5, 3), **kwargs) -> None:
    """An entropy model ``cls(list(levels), **kwargs)``, its weights random, after ``update()``:

    - ``forward`` prices every symbol (``[B, T, C]`` bits, finite, ≥ 0) and the payload's size
      agrees with that price (within 2 % and 64 bits: what it trains for is what it codes);
    - the round trip is exact for random symbols over several layouts (1…4 slots, a single
      window, wide and tall grids), encoding with 1 thread and decoding with 2 and the other
      way round (encoder and decoder compute identical tables; a sequential decoder that
      peeked at a token before decoding it could not be exact);
    - a payload with a word appended or removed is refused (``MrtlabError``), unless it is
      itself exactly what the encoder writes for what it decodes to.
    """
    assert issubclass(cls, EntropyModel), f"{cls.__name__} does not subclass EntropyModel"
    model = randomise(cls(list(levels), **kwargs), scale=0.1).eval()
    model.update()
    g = torch.Generator().manual_seed(4)
    name = cls.__name__
    for layout in LAYOUTS:
        if layout.slots > getattr(model, "max_slots", layout.slots):
            continue
        symbols = torch.stack([torch.randint(0, n, (layout.tokens,), generator=g) for n in levels], dim=-1)
        bits = model(symbols[None].float(), layout)
        assert bits.shape == (1, layout.tokens, len(levels)), f"{name}: bits of shape {list(bits.shape)}"
        assert torch.isfinite(bits).all() and (bits >= -1e-6).all(), f"{name}: bits not finite and ≥ 0"
        payload = with_threads(1, model.compress, symbols, layout)
        decoded = with_threads(2, model.decompress, payload, layout)
        assert torch.equal(decoded.long(), symbols), f"{name}: round trip not exact on {layout}"
        assert with_threads(2, model.compress, symbols, layout) == payload, (
            f"{name}: encoding with 2 threads gives other bytes than with 1 on {layout}")
        assert torch.equal(with_threads(1, model.decompress, payload, layout).long(), symbols)
        total = float(bits.sum())
        assert abs(8 * len(payload) - total) <= 0.02 * total + 64, (
            f"{name}: the payload is {8 * len(payload)} bits where forward prices {total:.0f} on {layout}")
        for bad in (payload + b"\0\0\0\0", payload[:-4]):
            if bad == payload or not payload:
                continue
            try:
                again = model.decompress(bad, layout)
            except MrtlabError:
                continue
            assert model.compress(again.long(), layout) == bad, (
                f"{name}: a payload with a word {'added' if len(bad) > len(payload) else 'removed'} "
                f"decoded without an error (call SymbolDecoder.finish() at the end of decompress)")
