"""One Accelerate training loop (stage 1: distortion + rate)."""
from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..models.zoo import save_model
from .data import RandomCrops


@dataclass
class TrainConfig:
    """Training settings (the ``train:`` section of a recipe)."""
    data: str = "../shared/data/bsds500"
    crop: int = 256
    batch_size: int = 8
    steps: int = 6000
    lr: float = 6e-4
    warmup: int = 300
    weight_decay: float = 0.01
    rate_weight: float = 0.0
    grad_clip: float = 1.0
    mixed_precision: str = "no"
    out: str = "runs/model"
    save_every: int = 200
    log_every: int = 10
    seed: int = 0


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warmup, then cosine decay to 5% of the peak."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(cfg.steps - cfg.warmup, 1)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def train(model, model_cfg: dict, cfg: TrainConfig) -> Path:
    """Train; checkpoints to ``out/state`` (resumed when present), exports ``out/model``."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    acc = Accelerator(mixed_precision=cfg.mixed_precision)
    set_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
    model, opt, sched = acc.prepare(model, opt, sched)
    state_dir, start = out / "state", 0
    # a crash between the two renames of save_checkpoint leaves only state.old: use it
    last = next((d for d in (state_dir, state_dir.with_name("state.old"))
                 if (d / "step.json").is_file()), None)
    if last is not None:
        acc.load_state(str(last))
        start = json.loads((last / "step.json").read_text())["step"]
    data = RandomCrops(cfg.data, cfg.crop, cfg.steps * cfg.batch_size, cfg.seed)
    sampler = range(start * cfg.batch_size, cfg.steps * cfg.batch_size)
    loader = torch.utils.data.DataLoader(data, batch_size=cfg.batch_size, sampler=sampler)
    raw = acc.unwrap_model(model)
    log_file = (out / "log.jsonl").open("a")
    bar = tqdm(total=cfg.steps, initial=start, disable=not acc.is_main_process, desc="train")
    t0, step = time.time(), start
    model.train()
    for step, x in enumerate(loader, start=start + 1):
        with acc.autocast():
            res = model(x)
            pixels = x.shape[0] * x.shape[2] * x.shape[3]
            mse = torch.mean((res["x_hat"] - x) ** 2)
            bpp = res["bits"].sum() / pixels
            # the entropy model always learns the symbol distribution; the encoder sees
            # the rate only through rate_weight
            em_bpp = raw.entropy_model(res["symbols"].detach(), raw.layout(res["grid"])).sum() / pixels
            loss = mse + cfg.rate_weight * bpp + em_bpp
        opt.zero_grad(set_to_none=True)
        acc.backward(loss)
        if cfg.grad_clip:
            acc.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        bar.update(1)
        if step % cfg.log_every == 0 and acc.is_main_process:
            psnr = -10 * math.log10(max(mse.item(), 1e-10))
            row = {"step": step, "loss": loss.item(), "mse": mse.item(), "psnr": psnr,
                   "bpp": em_bpp.item(), "lr": sched.get_last_lr()[0],
                   "crops_per_s": (step - start) * cfg.batch_size / (time.time() - t0)}
            log_file.write(json.dumps(row) + "\n")
            log_file.flush()
            bar.set_postfix(loss=f"{row['loss']:.4f}", psnr=f"{psnr:.2f}", bpp=f"{row['bpp']:.4f}")
        if step % cfg.save_every == 0 or step == cfg.steps:
            save_checkpoint(acc, state_dir, step)
            if acc.is_main_process:
                export(raw, model_cfg, out / "model")
    bar.close()
    log_file.close()
    return out / "model.safetensors"


def save_checkpoint(acc, state_dir: Path, step: int) -> None:
    """Write the state to a fresh folder, then swap it in: a crash leaves the last good one."""
    tmp = state_dir.with_name(state_dir.name + ".tmp")
    if acc.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    acc.wait_for_everyone()
    acc.save_state(str(tmp))
    if acc.is_main_process:
        (tmp / "step.json").write_text(json.dumps({"step": step}))
        old = state_dir.with_name(state_dir.name + ".old")
        if state_dir.exists():
            state_dir.rename(old)
        tmp.rename(state_dir)
        if old.exists():
            shutil.rmtree(old)
    acc.wait_for_everyone()


@torch.no_grad()
def export(model, model_cfg: dict, stem: Path) -> Path:
    was_training = model.training
    model.eval()
    model.update()
    path = save_model(model, model_cfg, stem)
    model.train(was_training)
    return path
