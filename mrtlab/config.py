"""Recipes: YAML → jsonargparse → objects, with registry short names and CLI overrides."""
from __future__ import annotations

import os
from pathlib import Path

import yaml
from jsonargparse import ActionConfigFile, ArgumentParser, Namespace

from . import entropy, mixers, quantizers, tokenizers  # noqa: F401  (registers the parts)
from .errors import MrtlabError
from .models.mrt import MRT
from .registry import class_path, resolve_short_names

os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")


def recipe_parser(prog: str = "mrtlab") -> ArgumentParser:
    from .train.loop import TrainConfig

    parser = ArgumentParser(prog=prog, exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile, help="recipe YAML")
    parser.add_class_arguments(MRT, "model")
    parser.add_class_arguments(TrainConfig, "train")
    return parser


def one_line(e: Exception, limit: int = 300) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= limit else text[:limit] + " …"


COMPONENTS = ("tokenizer", "local_mixer", "global_mixer", "quantizer", "entropy_model")


def _names_a_part(key: str) -> bool:
    """``--model.global_mixer`` or ``--….class_path``: the keys whose value may be a short name."""
    return key.endswith(".class_path") or key in {f"--model.{c}" for c in COMPONENTS}


def _resolve_argv(argv: list[str]) -> list[str]:
    """Load ``--config`` files with short names resolved; resolve short-name overrides."""
    out, it = [], iter(argv)
    for arg in it:
        key, eq, value = arg.partition("=")
        if key == "--config":
            path = value if eq else next(it, "")
            out += ["--config", yaml.safe_dump(load_recipe(path))]
        elif _names_a_part(key) and eq:
            out.append(f"{key}={class_path(value)}")
        elif _names_a_part(key):
            value = next(it, None)
            out += [key] if value is None else [key, class_path(value)]
        else:
            out.append(arg)
    return out


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
    """Parse ``--config RECIPE.yaml`` and overrides into a Namespace (model + train)."""
    parser = recipe_parser()
    try:
        return parser.parse_args(_resolve_argv(argv))
    except Exception as e:  # jsonargparse reports parse problems as exceptions
        raise MrtlabError(f"bad recipe or option: {one_line(e)}") from None


def build_model(model_cfg: dict | Namespace) -> MRT:
    """Instantiate the model section of a recipe (a dict or a parsed Namespace)."""
    parser = recipe_parser()
    if isinstance(model_cfg, Namespace):
        model_cfg = model_cfg.as_dict()
    try:
        cfg = parser.parse_object({"model": resolve_short_names(model_cfg)})
        return parser.instantiate(cfg).model
    except MrtlabError:
        raise
    except Exception as e:
        raise MrtlabError(f"cannot build the model from its recipe: {one_line(e)}") from None
