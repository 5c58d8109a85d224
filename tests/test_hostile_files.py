"""Forged files: a valid checksum over a header or payload that lies. Decoding is bounded by the
pixel limit before any work, and the payload must be exactly what the encoder wrote (no byte
altered, missing or left over), so a forged file never decodes to garbage with exit 0."""
import resource
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mrtlab.codec import codec, container
from mrtlab.config import build_model
from mrtlab.errors import MrtlabError
from mrtlab.zoo import identify

from .helpers import TINY, make_tiny


@pytest.fixture(scope="module")
def models(rcm_model):
    """The three ways of coding: autoregressive (RCM), factorized, hyperprior."""
    hyper = dict(TINY, entropy_model={"class_path": "hyperprior", "init_args": {"dim": 16}})
    model = build_model(hyper)
    model.update()
    return [rcm_model, make_tiny(), identify(model, hyper, "tiny-hyperprior")]


@pytest.fixture(scope="module")
def valid_files(models):
    rng = np.random.default_rng(0)
    return [(m, codec.encode(m, rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).data)
            for m in models for h, w in ((8, 8), (24, 40), (33, 17))]


FIELDS = ["height", "width", "tokens", "truncate", "extend", "flip", "repeat", "empty", "zeros"]


def forge(data: bytes, field: str, n: int, frac: float) -> bytes:
    """A file with one lie and its checksum recomputed."""
    header, payload = container.unpack(data)
    h, w, k = header.height, header.width, header.tokens
    if field == "height":
        h = 1 + n % 65535
    elif field == "width":
        w = 1 + n % 65535
    elif field == "tokens":
        k = 1 + n % 255
    elif field == "truncate":
        payload = payload[:int(frac * len(payload)) // 4 * 4]
    elif field == "extend":
        payload = payload + bytes((n + i) % 256 for i in range(4 * (1 + n % 3)))
    elif field == "flip":
        b = bytearray(payload)
        if b:
            b[int(frac * len(b))] ^= 1 << (n % 8)
        payload = bytes(b)
    elif field == "repeat":
        payload = payload * (2 + n % 9)
    elif field == "empty":
        payload = b""
    elif field == "zeros":
        payload = bytes(len(payload) or 4)
    return container.pack(container.Header(header.fingerprint, h, w, k), payload)


def is_valid_file(model, data: bytes, symbols) -> bool:
    """Whether ``data`` is exactly what the encoder writes for the ``symbols`` it decoded to:
    then it is a valid file (of another image), which no decoder can tell from an original."""
    header, payload = container.unpack(data)
    layout = model.layout(model.grid(header.height, header.width), header.tokens)
    return model.entropy_model.compress(symbols, layout) == payload


@settings(max_examples=2000, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(which=st.integers(0, 8), field=st.sampled_from(FIELDS), n=st.integers(0, 1 << 20),
       frac=st.floats(0, 1, exclude_max=True))
def test_a_forged_file_with_a_valid_checksum_is_refused_fast(valid_files, which, field, n, frac):
    model, data = valid_files[which]
    bad = forge(data, field, n, frac)
    if bad == data:
        return
    t0 = time.perf_counter()
    try:
        rgb, symbols = codec.decode(model, bad)
    except MrtlabError as e:
        assert "\n" not in str(e) and len(str(e)) < 300
    else:  # never garbage: only a file the encoder itself would write
        assert is_valid_file(model, bad, symbols), (field, n, frac)
        header, _ = container.unpack(bad)
        assert rgb.shape == (header.height, header.width, 3)
    assert time.perf_counter() - t0 < 2.0


def test_a_header_beyond_the_pixel_limit_is_refused_before_any_work(tiny_model):
    data = codec.encode(tiny_model, np.zeros((8, 8, 3), np.uint8)).data
    header, payload = container.unpack(data)
    forged = container.pack(container.Header(header.fingerprint, 65535, 65535, header.tokens), payload)
    t0 = time.perf_counter()
    with pytest.raises(MrtlabError, match=r"image too large to decode \(65535×65535 = 4295 MP; the limit is 50 MP\)"):
        codec.decode(tiny_model, forged)
    with pytest.raises(MrtlabError, match="image too large"):
        codec.read_header(forged)   # what `mrtlab info` reads
    assert time.perf_counter() - t0 < 0.5


@pytest.mark.parametrize("field", ["empty", "truncate"])
def test_a_large_header_over_a_short_payload_is_refused_in_bounded_time_and_memory(tmp_path, tiny_model_file, field):
    """49 MP (under the limit) over 0 or a few bytes: refused before the image is drawn, by
    the least information the header's symbols need, in a process that stays small."""
    from mrtlab.zoo import load_model

    model = load_model(str(tiny_model_file))
    data = codec.encode(model, np.zeros((64, 64, 3), np.uint8)).data
    header, payload = container.unpack(data)
    payload = b"" if field == "empty" else payload[:4]
    (tmp_path / "forged.mrt").write_bytes(container.pack(container.Header(header.fingerprint, 7000, 7000, 2), payload))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mrtlab.cli", "decompress", str(tmp_path / "forged.mrt"),
                           "--model", str(tiny_model_file), "-o", str(tmp_path)], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert proc.returncode == 1 and "payload ends before the image does" in proc.stderr, proc.stderr
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob(".*.part"))
    assert seconds < 20 and (peak_mb < 1500 or before / 1024 >= 1500), (seconds, peak_mb)
