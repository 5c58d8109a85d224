"""What a GPU run touches beyond fla's kernels, checked on CPU: no host-device sync in the
training step, and entropy coding that bf16 autocast cannot change."""
import pytest
import torch

from mrtlab.bench.fla_checks import STEP_PARTS, step_config
from mrtlab.codec import decode, encode
from mrtlab.config import build_model
from mrtlab.train.stages import CodecStep
from mrtlab.zoo import identify

from .helpers import noise_image

V_INDEX = {"wkv6": 2, "wkv7": 3, "gla": 2, "ssd": 2}  # which argument of each op is v


@pytest.mark.parametrize("part", STEP_PARTS)
def test_training_step_has_no_host_device_sync(monkeypatch, part):
    """On the meta device a tensor has no values: ``.item()``, ``.tolist()``, ``.numpy()``,
    ``bool(t)`` — anything that would wait for a GPU — raises. The ops stand in for fla's
    kernels (which do not sync at fixed lengths; the PyTorch forms, which CUDA never runs,
    do: ``gla.py``'s leaf size, ``wkv7.py``'s chunk loop), so the rest of a stage-1 step,
    forward and backward, is what runs here."""
    import importlib
    import sys

    torch.manual_seed(0)
    model = build_model(step_config(part)).train().to("meta")
    for name, v_index in V_INDEX.items():
        op = getattr(importlib.import_module(f"mrtlab.ops.{name}"), name)

        def stand_in(*args, _v=v_index, **kwargs):
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            return args[_v] + 0 * sum(t.sum() for t in tensors), None
        for module in [m for n, m in sys.modules.items() if n.startswith("mrtlab")]:
            if getattr(module, name, None) is op:  # every module that imported the op
                monkeypatch.setattr(module, name, stand_in)
    x = torch.rand(2, 3, 40, 40, device="meta")
    out = CodecStep(model, stage=1, rate_weighted=True)(x)
    loss = (out["x_hat"] - x).square().mean() + (out["em_bits"].sum() + out["bits"].sum()) / 3200
    loss.backward()
    around_ops = [n for n, p in model.named_parameters() if ".glob." in n or "entropy_model" in n]
    assert around_ops and not [n for n in around_ops if model.get_parameter(n).grad is None]


def test_rcm_codes_the_same_bytes_under_bf16_autocast():
    """The RCM computes its coding distributions in float64 on CPU: autocast around the
    coder changes no byte, and a file written under it decodes without."""
    torch.manual_seed(0)
    cfg = step_config("rcm")
    model = identify(build_model(cfg).eval(), cfg, "rcm-small")
    model.update()
    rgb = noise_image(48, 48)
    plain = encode(model, rgb)
    with torch.autocast("cpu", torch.bfloat16):
        symbols_under_autocast = decode(model, plain.data)[1]
        coded_under_autocast = encode(model, rgb)
    assert torch.equal(symbols_under_autocast, plain.symbols)
    assert torch.equal(decode(model, coded_under_autocast.data)[1], coded_under_autocast.symbols)
    if torch.equal(coded_under_autocast.symbols, plain.symbols):
        assert coded_under_autocast.data == plain.data
