"""Parts from outside the package: plugin modules, and the record a model file keeps of them.

A plugin is a Python module that defines parts with ``@register("name")`` (a mixer, a
tokenizer, an entropy model, a quantizer, a model). Importing it registers its short names,
so they work in recipes and on every command. Plugins are loaded from three places:
``--plugin MODULE`` on any command (a module name, or a ``.py`` file), the environment
variable ``MRTLAB_PLUGINS`` (comma-separated, the same forms), and the entry points of
installed packages in the group ``mrtlab.plugins`` (``[project.entry-points."mrtlab.plugins"]
myname = "mypackage.mixers"``).

A model file records the plugin modules its parts come from and a hash of each one's source
(``recorded``); loading it imports them first (a missing one is one line naming it) and
warns when a source changed since the model was written (its files may decode differently).
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import sys
from pathlib import Path

from .errors import MrtlabError

ENV = "MRTLAB_PLUGINS"
GROUP = "mrtlab.plugins"
_loaded: dict[str, str] = {}   # module name → the spec it was loaded by (a name or a .py path)


def load(spec: str, origin: str = "--plugin") -> str:
    """Import one plugin (a module name, or a path to a ``.py`` file); returns the module's
    name. A module that cannot be imported is one line naming it and why."""
    spec = spec.strip()
    try:
        if spec.endswith(".py"):
            path = Path(spec).expanduser().resolve()
            if not path.is_file():
                raise MrtlabError(f"plugin {spec} ({origin}): no such file")
            name = path.stem
            if name not in sys.modules or getattr(sys.modules[name], "__file__", None) != str(path):
                module_spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(module_spec)
                sys.modules[name] = module
                try:
                    module_spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[name]
                    raise
        else:
            name = spec
            if os.getcwd() not in sys.path and "" not in sys.path:   # a module beside the user
                sys.path.append(os.getcwd())
            importlib.import_module(name)
    except MrtlabError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever the plugin's import raised: one line
        first = " ".join(str(e).split())[:200] or type(e).__name__
        raise MrtlabError(f"cannot load plugin {spec!r} ({origin}): {type(e).__name__}: {first}") from None
    _loaded.setdefault(name, str(Path(spec).expanduser().resolve()) if spec.endswith(".py") else spec)
    return name


def environment() -> dict[str, str]:
    """This process's environment with ``$MRTLAB_PLUGINS`` naming every plugin loaded here,
    for a child process of mrtlab (a benchmark's worker) to load the same."""
    return dict(os.environ, **{ENV: ",".join(dict.fromkeys(_loaded.values()))}) if _loaded else dict(os.environ)


def load_all(specs: list[str] | None = None) -> list[str]:
    """Every plugin the user named: installed packages' entry points, ``$MRTLAB_PLUGINS``,
    then ``specs`` (``--plugin``); returns the module names."""
    names = []
    for entry in importlib.metadata.entry_points(group=GROUP):
        names.append(load(entry.value, f"entry point {entry.name} of an installed package"))
    for spec in filter(None, (os.environ.get(ENV) or "").split(",")):
        names.append(load(spec, f"${ENV}"))
    for spec in specs or []:
        names.append(load(spec))
    return names


def source_hash(module_name: str) -> str | None:
    """12 hex digits of the SHA-256 of a module's source file (``None`` if it has none)."""
    module = sys.modules.get(module_name)
    try:
        path = inspect.getsourcefile(module) if module else None
    except TypeError:
        path = None
    if not path:
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def recorded(model) -> dict[str, str | None]:
    """The plugin modules the parts of ``model`` come from (module name → source hash):
    every module of a class outside mrtlab, in the order they appear."""
    out: dict[str, str | None] = {}
    for m in model.modules():
        name = type(m).__module__
        if name.split(".")[0] not in ("mrtlab", "torch") and name not in out:
            out[name] = source_hash(name)
    return out


def require(plugins: dict[str, str | None], what: str) -> list[str]:
    """Import the plugin modules a model file records; returns warnings for sources that
    changed since the file was written. A module that cannot be imported is one line."""
    warnings = []
    for name, digest in plugins.items():
        if name not in sys.modules:
            try:
                load(name, f"recorded in {what}")
            except MrtlabError as e:
                raise MrtlabError(f"{what} needs the plugin module {name!r}, which cannot be imported "
                                  f"(install it, or pass --plugin FILE.py): {e}") from None
        now = source_hash(name)
        if digest and now and now != digest:
            warnings.append(f"plugin module {name!r} has changed since {what} was written (source "
                            f"{now}, then {digest}): its files may decode differently or not at all")
    return warnings
