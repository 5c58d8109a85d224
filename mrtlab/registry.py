"""Short names for concrete parts, so a recipe can say ``class_path: rwkv6``.

Each concrete part registers under a short name with ``@register("name")``; the recipe
loader rewrites known short names to the full import path before jsonargparse sees them.
"""
from __future__ import annotations

REGISTRY: dict[str, type] = {}


def register(name: str):
    def deco(cls):
        if name in REGISTRY and REGISTRY[name] is not cls:
            raise ValueError(f"short name {name!r} is already registered to {REGISTRY[name]}")
        REGISTRY[name] = cls
        cls.short_name = name
        return cls
    return deco


def class_path(name: str) -> str:
    """Full import path for a short name; other names are returned unchanged."""
    cls = REGISTRY.get(name)
    return f"{cls.__module__}.{cls.__qualname__}" if cls else name


def resolve_short_names(obj):
    """Rewrite every ``class_path`` short name in a nested recipe (dicts and lists)."""
    if isinstance(obj, dict):
        out = {k: resolve_short_names(v) for k, v in obj.items()}
        if isinstance(out.get("class_path"), str):
            out["class_path"] = class_path(out["class_path"])
        return out
    if isinstance(obj, list):
        return [resolve_short_names(v) for v in obj]
    return obj
