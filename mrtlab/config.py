"""Recipes: YAML → jsonargparse → objects, with registry short names and CLI overrides.

A recipe may ``include:`` other recipes (paths relative to it; a list is applied in order)
and hold only what differs from them; its ``model:`` may name an ``architecture:``
(``mrtlab.list_models()``) plus the arguments that differ. Both are resolved here, before
jsonargparse sees the recipe, into one full model section.
"""
from __future__ import annotations

import copy
import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from jsonargparse import ActionConfigFile, ArgumentParser, Namespace

from . import entropy, mixers, quantizers, tokenizers  # noqa: F401  (registers the parts)
from .errors import MrtlabError
from .models import baseline2d  # noqa: F401  (registers the 2-D baseline)
from .models.base import CodecModel
from .models.mrt import MRT
from .registry import ARCHITECTURES, class_path, resolve_short_names

os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")


@dataclass
class TrainConfig:
    """Training settings; docs/training.md explains each one.

    ``batch_size`` is per process and micro-batch: one optimizer step sees
    ``batch_size × grad_accum × processes`` crops. ``steps`` counts optimizer steps.
    """
    # data
    data: str | list[str] = ""   # a folder or a list of folders (required)
    crop: int = 256
    batch_size: int = 8
    workers: int = 0
    val_data: str = ""
    val_every: int = 0
    val_images: int = 8
    # optimisation
    steps: int = 6000
    cpu_budget: float = 0.0  # process CPU seconds after which the run ends (0: none)
    lr: float = 6e-4
    warmup: int = 300
    weight_decay: float = 0.01
    grad_accum: int = 1
    grad_clip: float = 1.0
    ema: float = 0.0
    mixed_precision: str = "auto"  # bf16 where the device runs it fast (train/precision.py)
    channels_last: bool = True  # convolutions in channels-last memory (1.10× the default recipe's crops/s)
    seed: int = 0
    # stages and losses: loss = rate_weight·bpp + Σ weight·term
    stage: int = 1
    latent_space: bool = False  # stage 1 in a pretrained autoencoder's latent (tokenizers/taef2_window.py)
    latent_cache: str = ""  # folder for the training images' latents, computed once (default: out)
    init: str = ""
    decoder_noise: bool = False  # train the strengths of the noise the synthesis adds (tokenizers/conv_window.py)
    keep: list[str] = field(default_factory=list)  # stage 2: decoder tensors (fnmatch names) kept as initialised
    init_partial: bool = False  # stage 1: load only the tensors of ``init`` that fit (warm start)
    init_step: int = 0  # a lost run's step at which ``init`` was exported: the schedule goes on from there
    init_cpu_s: float = 0.0  # and the process CPU seconds it had spent (counts towards ``cpu_budget``)
    rate_weight: float = 0.0
    rate_warmup: int = 0  # steps over which the rate weight grows linearly from 0
    nested_dropout_start: int = 0  # steps during which a variable-rate model keeps all L tokens
    token_decorrelation: float = 0.0  # weight of the latent tokens' likeness (losses.token_similarity)
    mse: float = 1.0
    msssim: float = 0.0
    lpips: float = 0.0
    dists: float = 0.0
    window_pattern: float = 0.0  # weight of the error repeated in every window (losses.window_pattern)
    phase_pattern: float = 0.0  # weight of a fine mesh in the error, window by window (losses.phase_pattern)
    phase_period: int = 4  # its period in pixels (4: the phases of the last two ×2 pixel-shuffles; 8: all three)
    lowpass: float = 0.0  # weight of the MSE of both images area-downsampled by 16 (colour and layout)
    perceptual_weights: str = ""
    adv: float = 0.0
    adv_start: int = 0
    disc_lr: float = 2e-4
    disc_width: int = 64
    teacher: str = ""
    align: float = 0.0
    # output
    out: str = "runs/model"
    force: bool = False  # a fresh run may overwrite the log and model of another run in ``out``
    save_every: int = 200
    log_every: int = 10
    tensorboard: bool = True



def recipe_parser(model_class: type = MRT, prog: str = "mrtlab", train: bool = True) -> ArgumentParser:
    """``model:`` holds ``model_class``'s arguments (its ``class_path`` is handled apart,
    so a recipe without one is an MRT recipe); ``train:`` the ``TrainConfig`` (not for
    building a model alone)."""
    parser = ArgumentParser(prog=prog, exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile, help="recipe YAML")
    parser.add_class_arguments(model_class, "model")
    if train:
        parser.add_class_arguments(TrainConfig, "train")
    return parser


def model_class(path: str | None) -> type:
    """The model class a recipe names (registry short name or import path); MRT if none."""
    if path is None:
        return MRT
    module, _, name = class_path(path).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, CodecModel)):
        raise MrtlabError(f"model class_path {path!r} does not name a CodecModel")
    return cls


def split_model_section(model_cfg: dict) -> tuple[str | None, dict]:
    """``{class_path, ...args}`` (or ``{class_path, init_args: {...}}``) → (path, args)."""
    args = dict(model_cfg)
    path = args.pop("class_path", None)
    args.update(args.pop("init_args", None) or {})
    return (class_path(path, "model") if path else None), args


def merge(base: dict, over: dict) -> dict:
    """``over`` on top of ``base``, section by section; a section that names another
    ``class_path`` or ``architecture`` is replaced whole (the old arguments may not fit)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        old = out.get(key)
        if (isinstance(old, dict) and isinstance(value, dict)
                and all(value.get(k, old.get(k)) == old.get(k) for k in ("class_path", "architecture"))):
            out[key] = merge(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def expand_model_section(section: dict) -> dict:
    """A model section with its ``architecture`` spelled out and short names resolved."""
    section = resolve_short_names({"model": section})["model"]
    name = section.pop("architecture", None)
    if name is not None:
        if name not in ARCHITECTURES:
            raise MrtlabError(f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}")
        base = resolve_short_names({"model": ARCHITECTURES[name]["section"]})["model"]
        section = merge(base, section)
    return section


def one_line(e: Exception, limit: int = 300) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= limit else text[:limit] + " …"


COMPONENTS = ("tokenizer", "local_mixer", "global_mixer", "quantizer", "entropy_model")


def _names_a_part(key: str) -> bool:
    """``--model.global_mixer`` or ``--….class_path``: the keys whose value may be a short name."""
    return key.endswith(".class_path") or key in {f"--model.{c}" for c in COMPONENTS}


def _kind(key: str) -> str | None:
    """``--model.global_mixer[.class_path]`` → ``global_mixer``: the registry a short name is in."""
    parts = key.removeprefix("--").removesuffix(".class_path").split(".")
    return parts[-1] if parts[0] == "model" and len(parts) == 2 else None


def _resolve_argv(argv: list[str]) -> tuple[list[str], str | None]:
    """Load ``--config`` files with short names resolved; resolve short-name overrides.

    The model's own ``class_path`` (last one given wins) is taken out and returned.
    """
    out, it, model_path = [], iter(argv), None
    for arg in it:
        key, eq, value = arg.partition("=")
        if key == "--config":
            path = value if eq else next(it, "")
            recipe = load_recipe(path)
            if isinstance(recipe.get("model"), dict):
                path, recipe["model"] = split_model_section(recipe["model"])
                model_path = path or model_path
            out += ["--config", yaml.safe_dump(recipe)]
        elif key == "--model.class_path":
            model_path = class_path(value if eq else next(it, ""), "model")
        elif _names_a_part(key) and eq:
            out.append(f"{key}={class_path(value, _kind(key))}")
        elif _names_a_part(key):
            value = next(it, None)
            out += [key] if value is None else [key, class_path(value, _kind(key))]
        else:
            out.append(arg)
    return out, model_path


def load_recipe(path: str | Path, expand: bool = True) -> dict:
    """Read a recipe file with its includes applied, its model section expanded
    (``expand_model_section``; not with ``expand=False``, which keeps a model file's
    section as it is written) and short names resolved (no objects built)."""
    data = _read_with_includes(Path(path), ())
    if expand and isinstance(data.get("model"), dict):
        data["model"] = expand_model_section(data["model"])
    return resolve_short_names(data)


def _read_with_includes(path: Path, chain: tuple[Path, ...]) -> dict:
    try:
        text = path.read_text()
    except OSError as e:
        raise MrtlabError(f"cannot read recipe {path}: {e.strerror or e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise MrtlabError(f"recipe {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise MrtlabError(f"recipe {path} is not a mapping of sections")
    chain += (path.resolve(),)
    includes = data.pop("include", None) or []
    base: dict = {}
    for name in [includes] if isinstance(includes, str) else includes:
        inc = (path.parent / str(name)).resolve()
        if inc in chain:
            cycle = " → ".join(p.name for p in chain[chain.index(inc):] + (inc,))
            raise MrtlabError(f"recipe {path} includes itself ({cycle})")
        base = merge(base, _read_with_includes(inc, chain))
    return merge(base, data)


def parse(argv: list[str]) -> Namespace:
    """Parse ``--config RECIPE.yaml`` and overrides into a Namespace (model + train).

    A model named by ``class_path`` gets it back as the first key of ``cfg.model``.
    """
    argv, path = _resolve_argv(argv)
    parser = recipe_parser(model_class(path))
    try:
        cfg = parser.parse_args(argv)
    except Exception as e:  # jsonargparse reports parse problems as exceptions
        raise MrtlabError(f"bad recipe or option: {one_line(e)}") from None
    if path is not None:
        cfg.model = Namespace(class_path=path, **vars(cfg.model))
    return cfg


def build_model(model_cfg: dict | Namespace) -> CodecModel:
    """Instantiate the model section of a recipe (a dict or a parsed Namespace); the
    model's ``config`` is the full section, as a trained model's file holds it."""
    path, parser, cfg = _parse_model(model_cfg)
    try:
        model = parser.instantiate(cfg).model
    except MrtlabError:
        raise
    except Exception as e:
        raise MrtlabError(f"cannot build the model from its recipe: {one_line(e)}") from None
    model.config = _full_section(path, cfg)
    return model


def full_model_section(model_cfg: dict | Namespace) -> dict:
    """The ``config`` that ``build_model`` would give, without building the model: every
    argument, defaults included. Two sections that build the same model give the same."""
    return _full_section(*_parse_model(model_cfg)[::2])


def _parse_model(model_cfg: dict | Namespace):
    if isinstance(model_cfg, Namespace):
        model_cfg = model_cfg.as_dict()
    path, args = split_model_section(expand_model_section(model_cfg))
    parser = recipe_parser(model_class(path), train=False)
    try:
        return path, parser, parser.parse_object({"model": args})
    except MrtlabError:
        raise
    except Exception as e:
        raise MrtlabError(f"cannot build the model from its recipe: {one_line(e)}") from None


def _full_section(path: str | None, cfg: Namespace) -> dict:
    section = cfg.model.as_dict()
    return section if path is None else {"class_path": path, **section}


def create_model(architecture: str, **overrides) -> CodecModel:
    """A freshly initialised model of a named architecture (``list_models()``), with the
    given arguments changed: ``create_model("mrt_small", dim=64, global_mixer="gla")``.
    A part may be given by its short name or as a section (``{"class_path": …, "init_args": …}``)."""
    parts = {k: {"class_path": v} if isinstance(v, str) and k in COMPONENTS else v
             for k, v in overrides.items()}
    return build_model({"architecture": architecture, **parts})


def list_models() -> dict[str, str]:
    """The named architectures, each with one line about it."""
    return {name: a["about"] for name, a in sorted(ARCHITECTURES.items())}
