"""Recipes: YAML → jsonargparse → objects, with registry short names and CLI overrides."""
from __future__ import annotations

import importlib
import os
from pathlib import Path

import yaml
from jsonargparse import ActionConfigFile, ArgumentParser, Namespace

from . import entropy, mixers, quantizers, tokenizers  # noqa: F401  (registers the parts)
from .errors import MrtlabError
from .models import baseline2d  # noqa: F401  (registers the 2-D baseline)
from .models.base import CodecModel
from .models.mrt import MRT
from .registry import class_path, register, resolve_short_names

os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")
register("mrt")(MRT)


def recipe_parser(model_class: type = MRT, prog: str = "mrtlab") -> ArgumentParser:
    """``model:`` holds ``model_class``'s arguments (its ``class_path`` is handled apart,
    so a recipe without one is an MRT recipe, exactly as before)."""
    from .train.settings import TrainConfig

    parser = ArgumentParser(prog=prog, exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile, help="recipe YAML")
    parser.add_class_arguments(model_class, "model")
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
    return (class_path(path) if path else None), args


def one_line(e: Exception, limit: int = 300) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= limit else text[:limit] + " …"


COMPONENTS = ("tokenizer", "local_mixer", "global_mixer", "quantizer", "entropy_model")


def _names_a_part(key: str) -> bool:
    """``--model.global_mixer`` or ``--….class_path``: the keys whose value may be a short name."""
    return key.endswith(".class_path") or key in {f"--model.{c}" for c in COMPONENTS}


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
            model_path = class_path(value if eq else next(it, ""))
        elif _names_a_part(key) and eq:
            out.append(f"{key}={class_path(value)}")
        elif _names_a_part(key):
            value = next(it, None)
            out += [key] if value is None else [key, class_path(value)]
        else:
            out.append(arg)
    return out, model_path


def load_recipe(path: str | Path) -> dict:
    """Read a recipe file with short names resolved (no objects built)."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise MrtlabError(f"cannot read recipe {path}: {e.strerror or e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise MrtlabError(f"recipe {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise MrtlabError(f"recipe {path} is not a mapping of sections")
    return resolve_short_names(data)


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
    """Instantiate the model section of a recipe (a dict or a parsed Namespace)."""
    if isinstance(model_cfg, Namespace):
        model_cfg = model_cfg.as_dict()
    path, args = split_model_section(resolve_short_names(model_cfg))
    parser = recipe_parser(model_class(path))
    try:
        cfg = parser.parse_object({"model": args})
        return parser.instantiate(cfg).model
    except MrtlabError:
        raise
    except Exception as e:
        raise MrtlabError(f"cannot build the model from its recipe: {one_line(e)}") from None
