"""Entropy models: exact round trips, parallel = step-by-step, causality, bits, determinism."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from mrtlab.entropy import RCM, FactorizedEntropyModel, Hyperprior, Layout, TransformerAR, integer_pmfs
from mrtlab.entropy.base import PROB_BITS
from mrtlab.entropy.distributions import make_distribution, to_grid
from mrtlab.errors import MrtlabError

AUTOREGRESSIVE = {"rcm": RCM, "transformer_ar": TransformerAR}
CASES = [  # distribution, levels, channel groups
    ("categorical", [5] * 8, 1),
    ("categorical", [8, 5, 5, 5], 2),
    ("gaussian", [15] * 6, 3),
    ("logistic", [9] * 4, 1),
]


def build(name, dist="categorical", levels=(5,) * 8, groups=1, std=0.2, seed=0):
    torch.manual_seed(seed)
    if name == "hyperprior":
        m = Hyperprior(list(levels), dim=32, max_slots=4, distribution=dist)
    elif name == "factorized":
        m = FactorizedEntropyModel(list(levels))
    else:
        m = AUTOREGRESSIVE[name](list(levels), dim=32, heads=2, max_slots=4,
                                 channel_groups=groups, distribution=dist)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, std)
    m.update()
    return m.eval()


def random_symbols(levels, layout, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, n, (layout.tokens,), generator=g) for n in levels], -1)


@pytest.mark.parametrize("name", ["rcm", "transformer_ar", "hyperprior"])
@pytest.mark.parametrize("dist,levels,groups", CASES)
def test_round_trip_every_model_and_distribution(name, dist, levels, groups):
    m = build(name, dist, levels, groups)
    layout = Layout(3, 4, 5)
    q = random_symbols(levels, layout)
    assert torch.equal(m.decompress(m.compress(q, layout), layout), q)


@pytest.mark.parametrize("name", ["rcm", "transformer_ar"])
def test_twenty_random_latents_round_trip(name):
    m = build(name, levels=[8, 5, 5, 5], groups=2, std=0.5)
    for seed in range(20):
        layout = Layout(1 + seed % 4, 1 + seed % 3, 2 + seed % 5)
        q = random_symbols(m.levels, layout, seed)
        assert torch.equal(m.decompress(m.compress(q, layout), layout), q), seed


@pytest.mark.parametrize("name", ["rcm", "transformer_ar"])
@pytest.mark.parametrize("dist,levels,groups", CASES)
def test_step_form_equals_parallel_pass(name, dist, levels, groups):
    """The decoder's step-by-step parameters are the encoder's parallel ones (float64)."""
    m = build(name, dist, levels, groups).coding_copy()
    layout = Layout(2, 3, 4)
    q = random_symbols(levels, layout, seed=1)
    parallel = m.params(q[None].double(), layout)[0].numpy()          # [T, C, P]
    expected = m.dist.freq(parallel)
    steps, rows, cg = m.stepwise(layout), [], len(levels) // groups
    freq = next(steps)
    flat = q.reshape(-1, cg).numpy()            # unit order = token-major, group by group
    try:
        for unit in flat:
            rows.append(freq)
            freq = steps.send(unit)
    except StopIteration as done:
        assert np.array_equal(done.value, q.numpy())
    assert np.array_equal(np.concatenate(rows), expected)


@pytest.mark.parametrize("name", ["rcm", "transformer_ar"])
def test_each_symbol_depends_only_on_earlier_ones(name):
    m = build(name, levels=[5] * 4, groups=2, std=0.5).double()
    layout = Layout(3, 2, 3)
    q = random_symbols(m.levels, layout).double()
    base = m(q[None], layout)[0].flatten()
    flat = q.flatten()
    for i in [0, 5, 13, len(flat) - 1]:
        changed = flat.clone()
        changed[i] = (changed[i] + 1) % 5
        bits = m(changed.reshape(q.shape)[None], layout)[0].flatten()
        # symbols before i keep their bits; with 2 groups a unit is 2 channels wide
        unit_start = i - i % 2
        assert torch.equal(bits[:unit_start], base[:unit_start]), i
        if i + 2 < len(flat):
            assert not torch.equal(bits[unit_start + 2:], base[unit_start + 2:]), i


@pytest.mark.parametrize("name", ["rcm", "transformer_ar", "hyperprior", "factorized"])
def test_payload_size_matches_estimated_bits(name):
    m = build(name, std=0.1)
    layout = Layout(4, 6, 8)
    q = random_symbols(m.levels, layout)
    estimated = float(m(q[None].float(), layout).sum().detach())
    actual = 8 * len(m.compress(q, layout))
    assert abs(actual - estimated) <= 0.01 * estimated + 32, (actual, estimated)


@pytest.mark.parametrize("name", ["rcm", "transformer_ar", "hyperprior"])
@pytest.mark.parametrize("dist,levels,groups", CASES)
def test_gradients_are_finite_and_reach_the_symbols_and_every_parameter(name, dist, levels, groups):
    m = build(name, dist, levels, groups).train()
    layout = Layout(2, 2, 3)
    q = random_symbols(m.levels, layout).float().requires_grad_()
    m(q[None], layout).sum().backward()
    assert q.grad is not None and torch.isfinite(q.grad).all() and q.grad.abs().sum() > 0
    for p in m.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


def test_fewer_slots_than_the_maximum_and_too_many():
    m = build("rcm")
    layout = Layout(2, 3, 3)                      # max_slots is 4
    q = random_symbols(m.levels, layout)
    assert torch.equal(m.decompress(m.compress(q, layout), layout), q)
    with pytest.raises(MrtlabError, match="at most 4 latent tokens"):
        m(q[None].float(), Layout(6, 1, 3))


@pytest.mark.parametrize("dist,levels,groups", CASES)
def test_coding_tables_follow_the_training_distribution(dist, levels, groups):
    d = make_distribution(dist, levels)
    torch.manual_seed(0)
    params = to_grid(torch.randn(50, len(levels), d.params).double().numpy())
    p_train = d.log_probs(torch.from_numpy(params)).exp().numpy().reshape(-1, max(levels))
    p_code = d.freq(params) / (1 << PROB_BITS)
    assert np.abs(p_train - p_code).max() < 2e-3
    assert (d.freq(params).sum(-1) == 1 << PROB_BITS).all()


def test_integer_pmfs_keep_every_possible_symbol_codable():
    logp = np.array([[0.0, -800.0, -np.inf], [-1e-9, -1e3, -2.0]])
    freq = integer_pmfs(logp)
    assert freq.tolist()[0][2] == 0 and (freq[0, :2] >= 1).all() and (freq[1] >= 1).all()
    assert (freq.sum(-1) == 1 << PROB_BITS).all()


ENCODE_DECODE = """
import sys, torch
sys.path.insert(0, {tests!r})
from test_entropy import build, random_symbols
from mrtlab.entropy import Layout
torch.set_num_threads(int(sys.argv[1]))
m, layout = build("rcm", levels=[8, 5, 5, 5], groups=2, std=0.5), Layout(4, 16, 24)
if sys.argv[2] == "encode":
    sys.stdout.buffer.write(m.compress(random_symbols(m.levels, layout, 3), layout))
else:
    q = m.decompress(sys.stdin.buffer.read(), layout)
    print("same" if torch.equal(q, random_symbols(m.levels, layout, 3)) else "different")
"""


@pytest.mark.parametrize("enc_threads,dec_threads", [(2, 1), (1, 2)])
def test_encode_and_decode_with_different_thread_counts(enc_threads, dec_threads, tmp_path):
    script = ENCODE_DECODE.format(tests=str(__import__("pathlib").Path(__file__).parent))
    data = subprocess.run([sys.executable, "-c", script, str(enc_threads), "encode"],
                          capture_output=True, check=True).stdout
    out = subprocess.run([sys.executable, "-c", script, str(dec_threads), "decode"],
                         input=data, capture_output=True, check=True).stdout
    assert out.strip() == b"same"


def test_decoding_twice_gives_the_same_symbols_and_garbage_is_an_error():
    m = build("rcm", levels=[8, 5, 5, 5], groups=2)
    layout = Layout(4, 3, 3)
    data = m.compress(random_symbols(m.levels, layout), layout)
    assert torch.equal(m.decompress(data, layout), m.decompress(data, layout))
    with pytest.raises(MrtlabError, match="32-bit words"):
        m.decompress(data[:-1], layout)


@pytest.mark.parametrize("name,quantizer,dist", [
    ("rcm", "fsq", "categorical"), ("transformer_ar", "fsq", "categorical"),
    ("hyperprior", "fsq", "categorical"), ("rcm", "scalar", "gaussian"),
    ("hyperprior", "scalar", "logistic")])
def test_mrt_codec_round_trip_with_each_entropy_model(name, quantizer, dist):
    from mrtlab.codec import codec
    from mrtlab.config import build_model
    from mrtlab.zoo import identify

    from .helpers import TINY

    cfg = dict(TINY, entropy_model={"class_path": name, "init_args": {
        "dim": 16, "max_slots": 2, "distribution": dist}})
    if quantizer == "scalar":
        cfg["quantizer"] = {"class_path": "scalar", "init_args": {"channels": 4, "bound": 5}}
    torch.manual_seed(0)
    model = identify(build_model(cfg), cfg, name)
    model.update()
    rgb = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    enc = codec.encode(model, rgb)
    decoded, symbols = codec.decode(model, enc.data)
    assert torch.equal(symbols, enc.symbols)
    grid = model.grid(40, 56)
    assert np.array_equal(decoded, model.reconstruct(symbols, grid).permute(1, 2, 0).numpy())


def test_docs_example_entropy_model():
    """The worked example of docs/entropy_models.md runs and round-trips."""
    import re
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "entropy_models.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "@register(" in b)
    namespace = {}
    exec(compile(code.replace('@register("bigram")', ""), "entropy_models.md", "exec"), namespace)
    m = namespace["Bigram"]([5, 3, 4])
    with torch.no_grad():
        m.logits.normal_()
    layout = Layout(2, 3, 4)
    q = random_symbols(m.levels, layout)
    bits = m(q[None].float(), layout)
    data = m.compress(q, layout)
    assert torch.equal(m.decompress(data, layout), q)
    assert abs(8 * len(data) - float(bits.sum())) <= 0.02 * float(bits.sum()) + 32
