"""Short names for concrete parts, one registry per kind, so a recipe can say ``class_path: rwkv6``.

Each interface base class declares its kind with ``@interface("global_mixer")``; each
concrete part registers where it is defined with ``@register("rwkv6")`` and is filed under
the kind of the interface it subclasses. The kinds are named after the recipe keys
(``model``, ``tokenizer``, ``local_mixer``, ``global_mixer``, ``quantizer``,
``entropy_model``), so a short name is looked up in the registry of the key it stands under
and the same name cannot mean two things within a kind. The recipe loader rewrites short
names to full import paths before jsonargparse sees them.
"""
from __future__ import annotations

REGISTRIES: dict[str, dict[str, type]] = {}


def interface(kind: str):
    """Mark an abstract base class as the interface of ``kind``; its registry starts empty."""
    def deco(cls):
        cls.kind = kind
        REGISTRIES.setdefault(kind, {})
        return cls
    return deco


def register(name: str):
    """File a concrete class under ``name`` in the registry of the interface it subclasses."""
    def deco(cls):
        kind = getattr(cls, "kind", None)
        if kind not in REGISTRIES:
            raise TypeError(f"{cls.__qualname__} subclasses no registered interface")
        known = REGISTRIES[kind].get(name)
        if known is not None and known is not cls:
            raise ValueError(f"{kind} {name!r} is already registered to {known}")
        REGISTRIES[kind][name] = cls
        cls.short_name = name
        return cls
    return deco


def lookup(kind: str, name: str) -> type:
    """The class registered as ``name`` under ``kind`` (KeyError if none)."""
    return REGISTRIES[kind][name]


def class_path(name: str, kind: str | None = None) -> str:
    """Full import path for a short name of ``kind``; other names are returned unchanged.

    Without a kind, a name registered under exactly one kind is resolved.
    """
    if kind is not None:
        cls = REGISTRIES.get(kind, {}).get(name)
    else:
        found = [r[name] for r in REGISTRIES.values() if name in r]
        cls = found[0] if len(found) == 1 else None
    return f"{cls.__module__}.{cls.__qualname__}" if cls else name


def resolve_short_names(obj, kind: str | None = None):
    """Rewrite every ``class_path`` short name in a nested recipe (dicts and lists); a
    section stands for the kind its key names (``global_mixer: {class_path: rwkv6}``)."""
    if isinstance(obj, dict):
        out = {k: resolve_short_names(v, k if k in REGISTRIES else None) for k, v in obj.items()}
        if isinstance(out.get("class_path"), str):
            out["class_path"] = class_path(out["class_path"], kind)
        return out
    if isinstance(obj, list):
        return [resolve_short_names(v) for v in obj]
    return obj


ARCHITECTURES: dict[str, dict] = {}


def register_architecture(name: str, section: dict, about: str) -> None:
    """Name a model section (a recipe's ``model:``, short names allowed) for ``create_model``."""
    if name in ARCHITECTURES and ARCHITECTURES[name]["section"] != section:
        raise ValueError(f"architecture {name!r} is already registered")
    ARCHITECTURES[name] = {"section": section, "about": about}
