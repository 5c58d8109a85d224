"""One Accelerate training loop for every model and both stages (docs/training.md)."""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import torch

from ..errors import MrtlabError
from ..ops.precision import choose as choose_precision
from ..zoo.model_files import save_model
from .align import Teacher
from .data import LatentCrops, RandomCrops, ShardSampler, validation_images
from .discriminator import PatchGAN, hinge_d_loss, hinge_g_loss
from .ema import EMA
from .logs import TrainLog
from .losses import Distortion
from .settings import TrainConfig, lr_factor, rate_weight
from .stages import CodecStep, exported_section, start_stage
from .validate import validate


def train(model, model_cfg: dict, cfg: TrainConfig) -> Path:
    """Train ``model`` in place; checkpoints to ``out/state`` (resumed when present),
    exports ``out/model.safetensors`` + ``out/model.yaml`` (EMA weights when enabled)."""
    from accelerate.utils import set_seed

    out = Path(cfg.out)
    check_settings(cfg)
    state_dir = out / "state"
    if last_checkpoint(state_dir) is None and not cfg.force:
        check_fresh(out)
    out.mkdir(parents=True, exist_ok=True)
    acc = accelerator(model, cfg)
    set_seed(cfg.seed)
    fresh = start_stage(model, cfg)
    step_mod = CodecStep(model, cfg.stage, cfg.rate_weight > 0, cfg.token_decorrelation > 0, cfg.latent_space)
    if cfg.channels_last:
        step_mod.to(memory_format=torch.channels_last)
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
    distortion = Distortion(cfg, max(raw.periods().values(), default=0)).to(acc.device)
    teacher = Teacher(cfg.teacher, raw, cfg.crop, acc.device) if cfg.align else None

    recipe = json.loads(json.dumps({"train": vars(cfg), "model": model_cfg}, default=str))
    start, cpu_before = resume(acc, state_dir, recipe)
    if fresh and start == 0 and acc.is_main_process:
        parts = ", ".join(sorted({name.split(".")[0] for name in fresh}))
        print(f"mrtlab: note: warm start from {cfg.init}: {len(fresh)} tensors start fresh ({parts})",
              file=sys.stderr)
    if start == 0 and cfg.init_step:  # a lost run, continued from its export
        start, cpu_before = cfg.init_step, cfg.init_cpu_s
        if acc.is_main_process:
            print(f"mrtlab: note: continuing from {cfg.init} at step {start} ({cpu_before:.0f} CPU-s); "
                  f"the optimizer starts afresh, so the learning rate warms up again", file=sys.stderr)
    sampler = ShardSampler(start, cfg.steps, cfg.batch_size, cfg.grad_accum,
                           acc.process_index, acc.num_processes)
    crops = (LatentCrops(cfg.data, cfg.crop, cfg.seed, model.tokenizer, Path(cfg.latent_cache or out),
                         acc.is_main_process) if cfg.latent_space else RandomCrops(cfg.data, cfg.crop, cfg.seed))
    loader = torch.utils.data.DataLoader(crops, sampler=sampler,
                                         batch_size=cfg.batch_size, num_workers=cfg.workers)
    val = (validation_images(cfg.val_data, cfg.val_images)
           if cfg.val_data and cfg.val_every and acc.is_main_process else None)
    logs = TrainLog(out, start, cfg.steps, acc.is_main_process, cfg.tensorboard)
    exported = ema.model if ema is not None else raw
    exported_cfg = exported_section(model_cfg, cfg)
    batches, t0, cpu0 = iter(loader), time.time(), time.process_time()
    step_mod.train()
    try:
        cpu_s = cpu_before
        end = start if cfg.cpu_budget and cpu_before >= cfg.cpu_budget else cfg.steps
        for step in range(start + 1, end + 1):
            factor = lr_factor(step - 1, cfg, cpu_s)
            stats = {}
            for k in range(cfg.grad_accum):
                x = next(batches).to(acc.device)
                if cfg.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
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
            cpu_s = spent(acc, cpu_before + time.process_time() - cpu0, cfg)
            last = step == cfg.steps or (cfg.cpu_budget and cpu_s >= cfg.cpu_budget)
            if step % cfg.log_every == 0 or last:
                row = {"step": step, **{k: acc.reduce(v, "mean").item() for k, v in sorted(stats.items())}}
                crops = (step - start) * cfg.batch_size * cfg.grad_accum * acc.num_processes
                seconds = time.time() - t0
                row.update(psnr=-10 * math.log10(max(row["mse"], 1e-10)), lr=cfg.lr * factor,
                           crops_per_s=crops / seconds, time_s=seconds, cpu_s=cpu_s)
                logs.write(row)
            if val is not None and (step % cfg.val_every == 0 or last):
                logs.write({"step": step, **validate(exported, val)})
            if step % cfg.save_every == 0 or last:
                save_checkpoint(acc, state_dir, step, recipe, cpu_s)
                if acc.is_main_process:
                    export(exported, exported_cfg, out / "model", {"step": step, "cpu_s": round(cpu_s)})
            if last:
                break
    finally:
        logs.close()
    return out / "model.safetensors"


def spent(acc, cpu_s: float, cfg: TrainConfig) -> float:
    """The CPU seconds of the run; with a ``cpu_budget`` under several processes, the largest
    of them, so that every process stops at the same step."""
    if cfg.cpu_budget and acc.num_processes > 1:
        return float(acc.reduce(torch.tensor(cpu_s, device=acc.device), "max"))
    return cpu_s


def check_settings(cfg: TrainConfig) -> None:
    """Combinations the loop cannot train, refused before anything starts."""
    if not cfg.data:
        raise MrtlabError("train.data is not set: give a folder of images (or a list of folders)")
    if cfg.align and not cfg.teacher:
        raise MrtlabError("train.align needs a teacher model: set train.teacher")
    if cfg.init_partial and (cfg.stage != 1 or not cfg.init):
        raise MrtlabError("train.init_partial is a stage-1 warm start: it needs train.init and stage 1")
    if (cfg.init_step or cfg.init_cpu_s) and not (cfg.init and cfg.init_step > 0 and cfg.init_cpu_s >= 0):
        raise MrtlabError("train.init_step continues a lost run from its export: it needs train.init "
                          "and a step > 0 (train.init_cpu_s: the CPU seconds spent, >= 0)")
    if cfg.latent_space:
        pixel_terms = [n for n in ("msssim", "lpips", "dists", "window_pattern", "phase_pattern", "adv", "align")
                       if getattr(cfg, n)]
        if cfg.stage != 1 or pixel_terms:
            raise MrtlabError("train.latent_space is stage 1 with the MSE alone (the latent has no pixels)"
                              + (f": unset {', '.join(pixel_terms)}" if pixel_terms else ": set train.stage 1"))
        if cfg.crop % 8:
            raise MrtlabError(f"train.latent_space: train.crop must be a multiple of 8 px, got {cfg.crop}")
    if cfg.mixed_precision not in ("auto", "no", "bf16", "fp16"):
        raise MrtlabError(f"train.mixed_precision must be auto, no, bf16 or fp16, not {cfg.mixed_precision!r}")
    if cfg.mixed_precision == "fp16" and cfg.adv:
        # Accelerate's one GradScaler would unscale the discriminator's gradients twice
        raise MrtlabError("train.mixed_precision fp16 cannot train the adversarial loss (train.adv); "
                          "use bf16")


def check_fresh(out: Path) -> None:
    """A new run never overwrites the log or model of another one in ``out``."""
    taken = [name for name in ("log.jsonl", "model.safetensors") if (out / name).exists()]
    if taken:
        raise MrtlabError(f"{out} holds another run ({', '.join(taken)}) and no checkpoint to resume: "
                          f"pick another --train.out, remove it, or set --train.force true")


def accelerator(model, cfg: TrainConfig):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedDataParallelKwargs

    # a variable-rate model leaves its "dropped token" unused when it keeps every token
    ddp = DistributedDataParallelKwargs(find_unused_parameters=model.variable_rate)
    # several processes and no GPU: Accelerate runs DDP over gloo only when told "cpu"
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precision, why = choose_precision(cfg.mixed_precision, device)
    # the precision is per run: forget the last run's in this process (the process group stays)
    AcceleratorState._reset_state()
    acc = Accelerator(mixed_precision=precision, kwargs_handlers=[ddp],
                      cpu=several and not torch.cuda.is_available())
    if acc.is_main_process:
        print(f"mrtlab: note: mixed precision {precision if precision != 'no' else 'off (fp32)'}: {why}",
              file=sys.stderr)
    return acc


def micro_step(acc, step_mod, distortion, teacher, disc, x, cfg: TrainConfig, step: int) -> dict:
    """Forward and backward of one micro-batch; returns the named loss terms.

    The codec's loss is ``Σ weight·distortion + λ·bpp (+ align) (+ adv)`` plus, in stage 1,
    the entropy model's own bits on detached symbols (stage 2 only logs the bits of its
    fixed symbols); the discriminator (when there is one) learns from the first step, the
    decoder sees it after ``adv_start`` steps.
    """
    with acc.autocast():
        res = step_mod(x, keep_all=step <= cfg.nested_dropout_start)
        x_hat = res["x_hat"]
        pixels = res["pixels"]
        loss, terms = distortion(x_hat, x)
        if "em_bits" in res:
            terms["bpp"] = res["em_bits"].float().sum() / pixels
            loss = loss + terms["bpp"]
        else:
            terms["bpp"] = res["coded_bits"].float().sum() / pixels
        if "bits" in res:
            loss = loss + rate_weight(step, cfg) * res["bits"].float().sum() / pixels
        if "similarity" in res:
            terms["similarity"] = res["similarity"]
            loss = loss + cfg.token_decorrelation * terms["similarity"]
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


def last_checkpoint(state_dir: Path) -> Path | None:
    """``state/``, or ``state.old/`` when a crash fell between the renames of ``save_checkpoint``."""
    return next((d for d in (state_dir, state_dir.with_name(state_dir.name + ".old"))
                 if (d / "step.json").is_file()), None)


def resume(acc, state_dir: Path, recipe: dict) -> tuple[int, float]:
    """Load the last checkpoint, if any; returns its step (0 for a fresh run) and the process
    CPU seconds (of the main process) spent to reach it.

    Settings changed since the checkpoint (``recipe.json`` beside it) are listed in one
    note; a checkpoint whose model, optimizers or other states do not fit is refused.
    """
    last = last_checkpoint(state_dir)
    if last is None:
        return 0, 0.0
    saved = last / "recipe.json"  # checkpoints of older versions have none
    changed = changed_settings(json.loads(saved.read_text()), recipe) if saved.is_file() else ""
    try:
        acc.load_state(str(last))
    except Exception as e:  # another model, stage or set of trained modules wrote it
        why = f"changed: {changed}; " if changed else ""
        raise MrtlabError(f"checkpoint {last} does not fit this recipe ({why}{type(e).__name__}: "
                          f"{' '.join(str(e).split())[:200]}); give another train.out") from None
    if changed and acc.is_main_process:
        print(f"mrtlab: note: resuming {state_dir.parent} with changed settings: {changed}", file=sys.stderr)
    done = json.loads((last / "step.json").read_text())
    return done["step"], done.get("cpu_s", 0.0)


def changed_settings(saved: dict, recipe: dict) -> str:
    """``lr 0.0008 → 0.0004, model.dim 64 → 128``: what differs between two recipes."""
    def flat(d: dict, prefix: str = "") -> dict:
        items = {}
        for k, v in d.items():
            items.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
        return items

    old, new = ({**flat(r.get("train", {})), **flat(r.get("model", {}), "model.")} for r in (saved, recipe))
    return ", ".join(f"{k} {old.get(k, '–')} → {new.get(k, '–')}" for k in {**new, **old}
                     if k not in ("out", "force") and old.get(k) != new.get(k))


def save_checkpoint(acc, state_dir: Path, step: int, recipe: dict, cpu_s: float = 0.0) -> None:
    """Write the state to a fresh folder, then swap it in: a crash leaves the last good one.

    ``recipe.json`` beside ``step.json`` keeps the settings, for the note of ``resume``.
    """
    tmp, old = (state_dir.with_name(state_dir.name + suffix) for suffix in (".tmp", ".old"))
    if acc.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    acc.wait_for_everyone()
    acc.save_state(str(tmp))
    if acc.is_main_process:
        (tmp / "recipe.json").write_text(json.dumps(recipe, indent=1))
        (tmp / "step.json").write_text(json.dumps({"step": step, "cpu_s": cpu_s}))
        if state_dir.exists():
            if old.exists():  # a kill during the last swap's clean-up left both
                shutil.rmtree(old)
            state_dir.rename(old)
        tmp.rename(state_dir)
        if old.exists():
            shutil.rmtree(old)
    acc.wait_for_everyone()


@torch.no_grad()
def export(model, model_cfg: dict, stem: Path, trained: dict | None = None) -> Path:
    """Weights with their coding tables built + the recipe's model section, written
    beside and then renamed over the previous export (a crash leaves a usable pair);
    ``trained``: the step and CPU seconds, kept in the file's metadata."""
    was_training = model.training
    model.eval()
    model.update()
    tmp = stem.with_name(stem.name + "-tmp")
    save_model(model, model_cfg, tmp, trained=trained)
    model.train(was_training)
    for suffix in (".safetensors", ".yaml"):
        os.replace(tmp.with_suffix(suffix), stem.with_suffix(suffix))
    return stem.with_suffix(".safetensors")
