"""What several test files use: pictures, the tiny model, training settings, CLI runs.

Fixtures are in conftest.py."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from mrtlab.train import TrainConfig

SAMPLES = ("astronaut", "coffee", "chelsea", "rocket")


def image_folder(root: Path, size: int = 96, n: int = 4) -> Path:
    """``n`` of skimage's pictures, resized to ``size`` px, as PNG and JPEG."""
    from skimage import data

    root.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(SAMPLES[:n]):
        im = Image.fromarray(getattr(data, name)()).convert("RGB").resize((size, size))
        im.save(root / f"{name}.{'png' if i % 2 else 'jpg'}")
    return root


def tiny_train(root: Path, data: Path, **kw) -> TrainConfig:
    """A few steps on 32-px crops, logging every step, no TensorBoard."""
    cfg = dict(data=str(data), crop=32, batch_size=2, steps=4, warmup=1, log_every=1,
               save_every=100, out=str(root), tensorboard=False)
    cfg.update(kw)
    return TrainConfig(**cfg)


def read_log(out) -> list[dict]:
    import json
    return [json.loads(line) for line in (Path(out) / "log.jsonl").read_text().splitlines()]


def smooth_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth ``h×w×3`` uint8 picture (sines and a ramp): what a codec is made for."""
    g = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([np.sin(6 * xx + g.random() * 3), np.cos(5 * yy), xx * yy], -1)
    return ((img - img.min()) / (np.ptp(img) + 1e-9) * 255).astype(np.uint8)


def noise_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def rel(a, b) -> float:
    """Relative error ‖a − b‖ / ‖b‖ of two tensors."""
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


TINY = {"architecture": "mrt_tiny"}   # a recipe's model section; dict(TINY, dim=16) changes it
TINY_RCM = dict(TINY, entropy_model={"class_path": "rcm", "init_args": {"dim": 16, "max_slots": 2}})


def make_tiny(seed=0):
    """The tests' tiny model, with a non-uniform prior (so coding is not trivially uniform)."""
    import torch

    from mrtlab import create_model
    from mrtlab.zoo import identify

    torch.manual_seed(seed)
    model = create_model("mrt_tiny")
    with torch.no_grad():
        model.entropy_model.logits.normal_()
    model.update()
    return identify(model, TINY, f"tiny{seed}")


def two_processes(*argv) -> list[str]:
    """The command that runs ``ARGV`` (a script, or ``-m module``, and its arguments) as two
    processes on this machine: torchrun, as ``accelerate launch`` does, with ``--standalone``
    so that its rendezvous store binds a free port itself (a port probed free beforehand may
    be taken by another process before the launch binds it)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            *map(str, argv)]


def run(capsys, *argv):
    """``mrtlab ARGV`` in this process → (exit code, stdout, stderr)."""
    from mrtlab.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mrtlab: error: "), err
    assert "Traceback" not in err
    return lines[0]


def traced_encoder_side(model, size: int | None = None) -> set[str]:
    """The reference for every model's declared coder side (``coder_modules``): the state-dict
    names of the floating-point tensors in the autograd graph of ``encode``, traced on a
    ``size``-px image (default: 2×2 windows; on one window RWKV-6's decay weights would have
    no effect). A tokenizer in a frozen autoencoder's latent is traced from that latent."""
    import contextlib

    import torch

    tokenizer = getattr(model, "tokenizer", None)
    latent = getattr(tokenizer, "latent_channels", 0)
    size = size or 2 * model.grid(1, 1).window_px
    shape = (1, latent, size // tokenizer.patch, size // tokenizer.patch) if latent else (1, 3, size, size)
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    named = {n: t for n, t in model.state_dict(keep_vars=True).items() if t.is_floating_point()}
    flags = {n: t.requires_grad for n, t in named.items()}
    try:
        model.eval()
        for t in named.values():
            t.requires_grad_(True)
        with torch.enable_grad(), (tokenizer.in_latent_space() if latent else contextlib.nullcontext()):
            y, _ = model.encode(x)
            grads = torch.autograd.grad(y.float().sum(), list(named.values()), allow_unused=True)
    finally:
        for n, t in named.items():
            t.requires_grad_(flags[n])
    return {n for n, g in zip(named, grads) if g is not None}
