"""Damaged files: 2,000 mutations of valid .mrt files, each must end in a clean error, fast."""
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mrtlab.codec import codec, container
from mrtlab.errors import MrtlabError


@pytest.fixture(scope="module")
def valid_files(rcm_model):
    rng = np.random.default_rng(0)
    shapes = [(8, 8), (24, 40), (33, 17)]
    return [codec.encode(rcm_model, rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).data
            for h, w in shapes]


ANYWHERE = ["flip", "truncate", "append", "overwrite", "insert", "delete"]
HEADER_FIELDS = ["magic", "version", "fingerprint"]


def mutations(kinds=ANYWHERE + HEADER_FIELDS):
    """A mutation: (kind, position fraction, byte or length, bit)."""
    return st.tuples(st.sampled_from(kinds), st.floats(0, 1, exclude_max=True),
                     st.integers(1, 255), st.integers(0, 7))


def mutate(data: bytes, kind: str, frac: float, n: int, bit: int) -> bytes:
    b = bytearray(data)
    i = int(frac * len(b))
    if kind == "flip":
        b[i] ^= 1 << bit
    elif kind == "truncate":
        del b[i:]
    elif kind == "append":
        b += bytes((n * k) % 256 for k in range(1, n % 40 + 2))
    elif kind == "overwrite":
        b[i:i + 1 + n % 8] = bytes((n + k) % 256 for k in range(len(b[i:i + 1 + n % 8])))
        b[i] ^= 0xFF  # make sure at least one byte changes
    elif kind == "insert":
        b[i:i] = bytes([n])
    elif kind == "delete":
        del b[i]
    elif kind == "magic":
        b[n % 2] ^= 1 << bit
    elif kind == "version":
        b[2] = (b[2] + n) % 256 or 2
    elif kind == "fingerprint":
        b[3 + n % 4] ^= 1 << bit
    return bytes(b)


@settings(max_examples=2000, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(which=st.integers(0, 2), mutation=mutations())
def test_every_damaged_file_is_rejected_cleanly_and_fast(rcm_model, valid_files, which, mutation):
    data = valid_files[which]
    bad = mutate(data, *mutation)
    if bad == data:
        return
    t0 = time.perf_counter()
    with pytest.raises(MrtlabError) as err:
        codec.decode(rcm_model, bad)
    assert time.perf_counter() - t0 < 2.0
    assert "\n" not in str(err.value) and len(str(err.value)) < 300


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(which=st.integers(0, 2), mutation=mutations(ANYWHERE))
def test_a_damaged_payload_behind_a_valid_checksum_never_crashes(rcm_model, valid_files, which,
                                                                 mutation):
    """Past the checksum (a collision, or a forged file) the decoder still only ever gives a
    clean error or an image of the header's size: no other exception, no hang."""
    header, payload = container.unpack(valid_files[which])
    bad_payload = mutate(payload, *mutation) if payload else payload
    t0 = time.perf_counter()
    try:
        rgb, _ = codec.decode(rcm_model, container.pack(header, bad_payload))
        assert rgb.shape == (header.height, header.width, 3)
    except MrtlabError as e:
        assert "\n" not in str(e)
    assert time.perf_counter() - t0 < 2.0
