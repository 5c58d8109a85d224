"""Model files written before a model's identity was stored in them: one migration upgrades
their tensor names, their recipe arguments and computes their identity as it was then."""
import json

import pytest
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import save_file

from mrtlab import create_model
from mrtlab.codec import decode, encode
from mrtlab.config import build_model
from mrtlab.models.sides import fingerprint
from mrtlab.zoo import catalog, load_model, save_model
from mrtlab.zoo.migrate import upgrade

from .helpers import TINY, make_tiny, smooth_image


def old_file(tmp_path, model, section, rename=lambda k: k, drop=()):
    """``model``'s tensors saved as an old release saved them: no metadata, names as ``rename``
    gives them, the tensors named in ``drop`` (parts added since) left out."""
    state = {rename(k): v for k, v in model.state_dict().items() if not k.endswith(drop)}
    save_file(state, str(tmp_path / "old.safetensors"))
    (tmp_path / "old.yaml").write_text(yaml.safe_dump({"model": section}))
    return tmp_path / "old.safetensors"


def test_every_bundled_model_stores_its_identity_and_it_is_the_one_of_its_files():
    """Bundled files carry their identity; the golden files prove it reads their .mrt files."""
    for name in catalog.BUNDLED:
        identity = catalog.stored_identity(catalog.BUNDLED_DIR / f"{name}.safetensors")
        model = load_model(name)
        assert identity == {"fingerprint": model.fingerprint.hex(), "decoder_hash": model.decoder_hash}
        assert fingerprint(model, model.config) == model.fingerprint  # what an export would store


def test_an_old_bundled_file_upgrades_to_the_identity_it_was_written_with(tmp_path):
    """The bundled default as it shipped before: float16, no identity, no noise strengths (a
    part added since): the migration gives its tensors and its fingerprint and decoder hash."""
    name = "default"
    weights = catalog.BUNDLED_DIR / f"{name}.safetensors"
    with safe_open(str(weights), "pt") as f:
        state = {k: f.get_tensor(k) for k in f.keys() if "noise" not in k}
    shipped = load_model(name)
    section = yaml.safe_load((catalog.BUNDLED_DIR / f"{name}.yaml").read_text())["model"]
    tensors, identity = upgrade(build_model(section), state, section)
    assert identity == {"fingerprint": shipped.fingerprint.hex(), "decoder_hash": shipped.decoder_hash}
    assert all(not tensors[k].any() for k in tensors if "noise" in k)


def test_old_parameter_and_argument_names_load_with_the_fingerprint_of_then(tmp_path):
    model = create_model("cnn2d", channels=8)
    section = {"architecture": "cnn2d", "channels": 8, "slots": 4}   # "latent_tokens" was "slots"
    path = old_file(tmp_path, model, section, lambda k: "dropped" if k == "dropped_token" else k)
    loaded = load_model(str(path))
    assert torch.equal(loaded.dropped_token, model.dropped_token) and loaded.latent_tokens == 4
    assert loaded.fingerprint == fingerprint(loaded, section)  # the section as the file holds it


@pytest.mark.parametrize("old_names", [
    {"block.norm1.": "norm.", "block.qkv.": "qkv.", "block.proj.": "out."},   # the attention mixer
    {"norm1.": "ln1.", "norm2.": "ln2.", "proj.": "out."},                    # transformer_ar's blocks
])
def test_old_module_names_load(tmp_path, old_names):
    section = dict(TINY, global_mixer={"class_path": "attention", "init_args": {"heads": 2}},
                   entropy_model={"class_path": "transformer_ar", "init_args": {"dim": 16}})
    model = build_model(section)

    def rename(name):
        for new, old in old_names.items():
            if f".{new}" in f".{name}" and (name.startswith(("encoder.glob", "decoder.glob")) == ("block." in new)):
                return f".{name}".replace(f".{new}", f".{old}", 1)[1:]
        return name
    path = old_file(tmp_path, model, section, rename)
    assert any(rename(k) != k for k in model.state_dict())
    loaded = load_model(str(path))
    for name, t in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], t), name


def test_an_upgraded_file_decodes_the_files_it_wrote_and_saves_as_a_file_of_now(tmp_path):
    """A .mrt written by the old file decodes with the upgraded model; saving the upgraded
    model stores the same identity, which then loads without any migration."""
    model = make_tiny(3)
    old = old_file(tmp_path, model, TINY)
    upgraded = load_model(str(old))
    data = encode(upgraded, smooth_image(24, 40)).data
    assert upgraded.fingerprint == fingerprint(model, TINY)   # nothing renamed: the rule of now
    new = save_model(upgraded, upgraded.config, tmp_path / "new")
    with safe_open(str(new), "pt") as f:
        assert json.loads(f.metadata()["identity"])["fingerprint"] == upgraded.fingerprint.hex()
    rgb, _ = decode(load_model(str(new)), data)
    assert rgb.shape == (24, 40, 3)
