"""Model files: own copies for every caller, one-line mismatches, parameters renamed since."""
import numpy as np
import pytest
import torch

from mrtlab import create_model
from mrtlab.codec import codec
from mrtlab.errors import MrtlabError
from mrtlab.zoo import load_model, save_model

from .helpers import TINY, make_tiny


@pytest.fixture
def tiny_file(tmp_path):
    return save_model(make_tiny(2), TINY, tmp_path / "tiny")


def test_every_caller_gets_a_model_of_its_own(tiny_file):
    a, b = load_model(str(tiny_file)), load_model(str(tiny_file))
    assert a is not b and a.fingerprint == b.fingerprint
    a.double()
    with torch.no_grad():
        a.latent_queries.zero_()
    assert b.latent_queries.dtype == torch.float32 and b.latent_queries.abs().sum() > 0


def test_a_tensor_of_another_shape_is_named(tmp_path):
    save_model(create_model("mrt_tiny", latent_tokens=3), dict(TINY, latent_tokens=3), tmp_path / "three")
    (tmp_path / "three.yaml").write_text((tmp_path / "three.yaml").read_text().replace("3", "2"))
    with pytest.raises(MrtlabError) as e:
        load_model(str(tmp_path / "three.safetensors"))
    assert ("(0 missing, 0 unexpected, 2 of another shape; latent_positions is [3, 32] in the "
            "file, [2, 32] in the model)") in str(e.value)


def test_fewer_tokens_on_a_fixed_rate_model_is_a_one_line_error(tiny_model):
    with pytest.raises(MrtlabError, match="fixed rate"):
        tiny_model(torch.rand(1, 3, 16, 16), tokens=1)


def test_a_bug_in_decoding_is_not_reported_as_a_damaged_payload(tiny_model, monkeypatch):
    data = codec.encode(tiny_model, np.zeros((16, 16, 3), np.uint8)).data

    def broken(*_):
        raise TypeError("a bug")
    monkeypatch.setattr(tiny_model, "reconstruct", broken)
    with pytest.raises(TypeError, match="a bug"):
        codec.decode(tiny_model, data)


def test_a_half_file_keeps_its_fingerprint_when_its_tables_are_rebuilt(tmp_path):
    """Its coding tables are those of its float16 weights: stage 2 from a bundled model
    rebuilds them at export and must find the same (else its files would be refused)."""
    from mrtlab.zoo import identify

    model = load_model(str(save_model(make_tiny(2), TINY, tmp_path / "half", half=True)))
    fingerprint = model.fingerprint
    model.update()
    assert identify(model, model.config, "rebuilt").fingerprint == fingerprint
