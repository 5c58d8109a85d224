"""Named architectures (create_model / list_models) and the registries of parts."""

import pytest
import torch
import yaml

import mrtlab
from mrtlab.config import build_model, expand_model_section
from mrtlab.models import MRT, CodecModel
from mrtlab.registry import REGISTRIES, register
from mrtlab.zoo.catalog import BUNDLED_DIR


def test_every_architecture_builds_and_codes_an_image():
    names = mrtlab.list_models()
    assert {"mrt_tiny", "mrt_small", "mrt_patchwise", "mrt_default", "mrt_paper", "cnn2d",
            "cnn2d_paper"} <= set(names)
    for name in ("mrt_tiny", "mrt_small", "mrt_default", "cnn2d"):
        model = mrtlab.create_model(name).eval()
        assert isinstance(model, CodecModel) and names[name]
        x = torch.rand(1, 3, 40, 48)
        assert model(x)["x_hat"].shape == x.shape


def test_overrides_change_arguments_and_swap_parts_by_short_name():
    model = mrtlab.create_model("mrt_tiny", dim=16, latent_tokens=3, global_mixer="identity",
                                quantizer={"init_args": {"levels": [7, 7]}})
    assert model.dim == 16 and model.latent_tokens == 3 and model.quantizer.levels == [7, 7]
    assert type(model.encoder.glob[0]).__name__ == "IdentityMixer"
    assert model.config["quantizer"]["init_args"]["levels"] == [7, 7]  # what a model file stores


def listify(d):
    return yaml.safe_load(yaml.safe_dump(d, default_flow_style=None).replace("!!python/tuple", ""))


@pytest.mark.parametrize("bundled,architecture", [("default", "mrt_default"), ("cnn2d", "cnn2d")])
def test_bundled_models_are_their_named_architectures(bundled, architecture):
    """The bundled files keep the model section they were trained with (their fingerprint
    covers it); it is the architecture's, with arguments renamed since given their names now."""
    stored = yaml.safe_load((BUNDLED_DIR / f"{bundled}.yaml").read_text())["model"]
    created = mrtlab.create_model(architecture).config       # every argument, defaults included
    assert listify(build_model(expand_model_section(stored)).config) == listify(created)


def test_mrt_without_arguments_is_mrt_patchwise():
    torch.manual_seed(0)
    a = MRT()
    torch.manual_seed(0)
    b = mrtlab.create_model("mrt_patchwise")
    assert a.state_dict().keys() == b.state_dict().keys()
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())
    assert a.variable_rate and type(a.entropy_model).__name__ == "RCM"


def test_a_short_name_means_one_class_per_kind():
    mixer = REGISTRIES["global_mixer"]["rwkv6"]
    with pytest.raises(ValueError, match="global_mixer 'rwkv6' is already registered"):
        register("rwkv6")(type("Other", (mixer,), {}))
    with pytest.raises(TypeError, match="subclasses no registered interface"):
        register("loose")(type("Loose", (torch.nn.Module,), {}))
    assert REGISTRIES["model"]["mrt"] is MRT  # registered where it is defined


def test_per_token_heads_keep_alike_tokens_apart():
    """The guard against token collapse: latent tokens whose encoder states are the same
    give the same latents through one shared head, different ones through a head each."""
    state = torch.randn(1, 1, 1, 1, 32).expand(1, 1, 1, 2, 32)          # 2 alike tokens
    for per_token, alike in ((False, True), (True, False)):
        model = mrtlab.create_model("mrt_tiny", per_token_heads=per_token)
        y = model.to_latent(state)
        assert torch.allclose(y[..., 0, :], y[..., 1, :]) == alike
        assert model.from_latent(y[..., :1, :]).shape == (1, 1, 1, 1, 32)  # k < L tokens


def test_latent_init_sets_the_scale_of_queries_and_positions():
    torch.manual_seed(0)
    model = mrtlab.create_model("mrt_small", latent_init=1.0)
    assert 0.8 < model.latent_queries.std() < 1.2 and 0.8 < model.latent_positions.std() < 1.2
    assert mrtlab.create_model("mrt_small").latent_queries.std() < 0.03


def test_regions_start_each_latent_token_from_its_part_of_the_window():
    model = mrtlab.create_model("mrt_small", latent_start="regions")
    tokens = torch.zeros(1, 1, 1, 16, 128)                 # one window of 4×4 patch tokens
    tokens.view(1, 1, 1, 4, 4, 128)[0, 0, 0, 2:, :2] = 1.0  # its bottom-left 2×2 patches
    means = model.region_means(tokens)[0, 0, 0, :, 0]
    assert means.tolist() == [0.0, 0.0, 1.0, 0.0]          # regions in raster order
    assert model(torch.rand(1, 3, 64, 64))["x_hat"].shape == (1, 3, 64, 64)


def test_latent_skip_gives_each_token_its_own_gradient():
    """Through attention alone the decoder first reads a sum of the latent tokens; with the
    skip path, two tokens of equal value get different gradients."""
    grads = []
    for skip in (0, 8):
        torch.manual_seed(0)
        model = mrtlab.create_model("mrt_small", latent_skip=skip, latent_init=0.0)
        q = torch.zeros(1, 4, 8, requires_grad=True)       # one window, 4 equal tokens
        model.decode(q, model.grid(32, 32)).sum().backward()
        grads.append(q.grad[0])
    assert torch.allclose(grads[0][0], grads[0][1], atol=1e-6)      # alike without it
    assert not torch.allclose(grads[1][0], grads[1][1], atol=1e-6)  # apart with it


def test_every_registered_part_documents_its_arguments():
    """``Args:`` names every constructor argument of every registered part (what jsonargparse's
    ``--help`` shows for it)."""
    import inspect

    from mrtlab.registry import REGISTRIES

    for kind, parts in REGISTRIES.items():
        for name, cls in parts.items():
            doc = inspect.getdoc(cls) or ""
            args = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
            assert "Args:" in doc, f"{kind} {name}"
            missing = [a for a in args if f"{a}:" not in doc and f"{a}," not in doc]
            assert not missing, f"{kind} {name}: {missing}"
