"""The conformance checks of mrtlab.testing on every built-in part, and that they catch what
they are for (a plugin author runs the same checks on their part)."""
import pytest
import torch

from mrtlab import testing
from mrtlab.entropy.factorized import FactorizedEntropyModel
from mrtlab.mixers.base import GlobalMixer
from mrtlab.registry import REGISTRIES

MIXER_ARGS = {"rwkv6": {"heads": 4}, "rwkv7": {"heads": 4}, "mamba2": {"heads": 4}, "gla": {"heads": 4},
              "attention": {"heads": 2}}


@pytest.mark.parametrize("name", sorted(set(REGISTRIES["global_mixer"]) & {*MIXER_ARGS, "identity"}))
def test_every_builtin_global_mixer_conforms(name):
    testing.check_global_mixer(REGISTRIES["global_mixer"][name], reach=name != "identity",
                               **MIXER_ARGS.get(name, {}))


@pytest.mark.parametrize("name,kwargs", [("transformer", {"heads": 4}), ("identity", {})])
def test_every_builtin_local_mixer_conforms(name, kwargs):
    assert set(REGISTRIES["local_mixer"]) == {"transformer", "identity"}
    testing.check_local_mixer(REGISTRIES["local_mixer"][name], **kwargs)


@pytest.mark.parametrize("name,kwargs", [
    ("factorized", {}), ("hyperprior", {"dim": 16, "max_slots": 4}),
    ("rcm", {"dim": 16, "max_slots": 4}), ("rcm", {"dim": 16, "max_slots": 4, "distribution": "logistic"}),
    ("transformer_ar", {"dim": 16, "max_slots": 4, "channel_groups": 3}),
])
def test_every_builtin_entropy_model_conforms(name, kwargs):
    testing.check_entropy_model(REGISTRIES["entropy_model"][name], **kwargs)


class OneWay(GlobalMixer):
    """Mixes along rows, left to right only: what the reach check is there to catch."""

    def __init__(self, dim):
        super().__init__()
        self.proj = torch.nn.Linear(dim, dim)

    def forward(self, x):
        return x + self.proj(x).cumsum(dim=2)


class Unfinished(FactorizedEntropyModel):
    """Decodes without checking that the payload was used up."""

    def decompress(self, data, layout):
        from mrtlab.entropy.base import SymbolDecoder

        sym = SymbolDecoder(data).decode(self.table(layout.tokens))
        return torch.from_numpy(sym.reshape(len(self.levels), layout.tokens).T.copy())


def test_the_checks_catch_a_one_way_mixer_and_an_unchecked_payload():
    with pytest.raises(AssertionError, match="bidirectional reach"):
        testing.check_global_mixer(OneWay)
    with pytest.raises(AssertionError, match="SymbolDecoder.finish"):
        testing.check_entropy_model(Unfinished)
