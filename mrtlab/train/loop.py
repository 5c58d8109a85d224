"""One Accelerate training loop for every model and both stages (docs/training.md)."""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from pathlib import Path

import torch

from ..errors import MrtlabError
from ..models.zoo import save_model
from .align import Teacher
from .data import RandomCrops, shard_indices, validation_images
from .discriminator import PatchGAN, hinge_d_loss, hinge_g_loss
from .ema import EMA
from .logs import TrainLog
from .losses import Distortion
from .settings import TrainConfig, lr_factor
from .stages import CodecStep, start_stage
from .validate import validate


def train(model, model_cfg: dict, cfg: TrainConfig) -> Path:
    """Train ``model`` in place; checkpoints to ``out/state`` (resumed when present),
    exports ``out/model.safetensors`` + ``out/model.yaml`` (EMA weights when enabled)."""
    from accelerate.utils import set_seed

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    acc = accelerator(model, cfg)
    set_seed(cfg.seed)
    start_stage(model, cfg)
    step_mod = CodecStep(model, cfg.stage, cfg.rate_weight > 0)
    opt = torch.optim.AdamW([p for p in step_mod.parameters() if p.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    disc = opt_d = None
    if cfg.adv:
        disc = PatchGAN(cfg.disc_width)
        opt_d = torch.optim.AdamW(disc.parameters(), lr=cfg.disc_lr, betas=(0.5, 0.9), weight_decay=0)
        step_mod, opt, disc, opt_d = acc.prepare(step_mod, opt, disc, opt_d)
    else:
        step_mod, opt = acc.prepare(step_mod, opt)
    raw = acc.unwrap_model(step_mod).codec
    ema = EMA(raw, cfg.ema).to(acc.device) if cfg.ema else None
    if ema is not None:
        acc.register_for_checkpointing(ema)
    distortion = Distortion(cfg).to(acc.device)
    if cfg.align and not cfg.teacher:
        raise MrtlabError("train.align needs a teacher model: set train.teacher")
    teacher = Teacher(cfg.teacher, raw, cfg.crop, acc.device) if cfg.align else None

    state_dir = out / "state"
    start = resume(acc, state_dir)
    indices = shard_indices(start, cfg.steps, cfg.batch_size, cfg.grad_accum,
                            acc.process_index, acc.num_processes)
    loader = torch.utils.data.DataLoader(RandomCrops(cfg.data, cfg.crop, cfg.seed), sampler=indices,
                                         batch_size=cfg.batch_size, num_workers=cfg.workers)
    val = (validation_images(cfg.val_data, cfg.val_images)
           if cfg.val_data and cfg.val_every and acc.is_main_process else None)
    logs = TrainLog(out, start, cfg.steps, acc.is_main_process, cfg.tensorboard)
    exported = ema.model if ema is not None else raw
    batches, t0 = iter(loader), time.time()
    step_mod.train()
    for step in range(start + 1, cfg.steps + 1):
        factor = lr_factor(step - 1, cfg)
        stats = {}
        for k in range(cfg.grad_accum):
            x = next(batches).to(acc.device)
            with no_sync(acc, [step_mod, disc], k < cfg.grad_accum - 1):
                terms = micro_step(acc, step_mod, distortion, teacher, disc, x, cfg, step)
            for name, v in terms.items():
                stats[name] = stats.get(name, 0.0) + v.detach().float() / cfg.grad_accum
        optimizer_step(acc, step_mod, opt, cfg.lr * factor, cfg.grad_clip)
        if disc is not None:
            optimizer_step(acc, disc, opt_d, cfg.disc_lr * factor, cfg.grad_clip)
        if ema is not None:
            ema.update(raw)
        logs.step()
        if step % cfg.log_every == 0 or step == cfg.steps:
            row = {"step": step, **{name: acc.reduce(v, "mean").item() for name, v in sorted(stats.items())}}
            crops = (step - start) * cfg.batch_size * cfg.grad_accum * acc.num_processes
            row.update(psnr=-10 * math.log10(max(row["mse"], 1e-10)), lr=cfg.lr * factor,
                       crops_per_s=crops / (time.time() - t0))
            logs.write(row)
        if val is not None and (step % cfg.val_every == 0 or step == cfg.steps):
            logs.write({"step": step, **validate(exported, val)})
        if step % cfg.save_every == 0 or step == cfg.steps:
            save_checkpoint(acc, state_dir, step)
            if acc.is_main_process:
                export(exported, model_cfg, out / "model")
    logs.close()
    return out / "model.safetensors"


def accelerator(model, cfg: TrainConfig):
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    # a variable-rate model leaves its "dropped token" unused when it keeps every token
    ddp = DistributedDataParallelKwargs(find_unused_parameters=model.variable_rate)
    # several processes and no GPU: Accelerate runs DDP over gloo only when told "cpu"
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return Accelerator(mixed_precision=cfg.mixed_precision, kwargs_handlers=[ddp],
                       cpu=several and not torch.cuda.is_available())


def micro_step(acc, step_mod, distortion, teacher, disc, x, cfg: TrainConfig, step: int) -> dict:
    """Forward and backward of one micro-batch; returns the named loss terms.

    The codec's loss is ``Σ weight·distortion + λ·bpp (+ align) (+ adv)`` plus the entropy
    model's own bits on detached symbols; the discriminator (when there is one) learns
    from the first step, the decoder sees it after ``adv_start`` steps.
    """
    with acc.autocast():
        res = step_mod(x)
        x_hat = res["x_hat"]
        pixels = x.shape[0] * x.shape[2] * x.shape[3]
        loss, terms = distortion(x_hat, x)
        terms["bpp"] = res["em_bits"].float().sum() / pixels
        loss = loss + terms["bpp"]
        if "bits" in res:
            loss = loss + cfg.rate_weight * res["bits"].float().sum() / pixels
        if teacher is not None:
            terms["align"] = teacher.loss(res["q"], x, res["tokens"])
            loss = loss + cfg.align * terms["align"]
        if disc is not None and step > cfg.adv_start:
            d = acc.unwrap_model(disc).requires_grad_(False)  # its gradients come from d_loss only
            terms["adv"] = hinge_g_loss(d(x_hat))
            d.requires_grad_(True)
            loss = loss + cfg.adv * terms["adv"]
    terms["loss"] = loss
    acc.backward(loss / cfg.grad_accum)
    if disc is not None:
        with acc.autocast():
            real, fake = disc(torch.cat([x, x_hat.detach()])).chunk(2)
            terms["d_loss"] = hinge_d_loss(real, fake)
        acc.backward(terms["d_loss"] / cfg.grad_accum)
    return terms


def no_sync(acc, models, skip: bool):
    """Skip the gradient all-reduce on all but the last micro-batch of a step."""
    stack = contextlib.ExitStack()
    if skip:
        for m in models:
            if m is not None:
                stack.enter_context(acc.no_sync(m))
    return stack


def optimizer_step(acc, model, opt, lr: float, clip: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr
    if clip:
        acc.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    opt.zero_grad(set_to_none=True)


def resume(acc, state_dir: Path) -> int:
    """Load the last checkpoint, if any; returns its step (0 for a fresh run).

    A crash between the two renames of ``save_checkpoint`` leaves only ``state.old``: use it.
    """
    last = next((d for d in (state_dir, state_dir.with_name("state.old"))
                 if (d / "step.json").is_file()), None)
    if last is None:
        return 0
    try:
        acc.load_state(str(last))
    except Exception as e:  # another model, stage or set of losses wrote it
        raise MrtlabError(f"checkpoint {last} does not fit this recipe ({type(e).__name__}: "
                          f"{' '.join(str(e).split())[:200]}); give another train.out") from None
    return json.loads((last / "step.json").read_text())["step"]


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
    """Weights with their coding tables built + the recipe's model section, written
    beside and then renamed over the previous export (a crash leaves a usable pair)."""
    was_training = model.training
    model.eval()
    model.update()
    tmp = stem.with_name(stem.name + "-tmp")
    save_model(model, model_cfg, tmp)
    model.train(was_training)
    for suffix in (".safetensors", ".yaml"):
        os.replace(tmp.with_suffix(suffix), stem.with_suffix(suffix))
    return stem.with_suffix(".safetensors")
