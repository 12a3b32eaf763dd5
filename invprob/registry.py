"""Preset registry: the same menu for Python users and the CLI, without Hydra.

A preset is a YAML file in a config group folder (``solvers/``, ``operators/``, ``priors/``
at the repository top level, shipped in the wheel as ``invprob.conf``; a user's own presets in
the same group folders under :func:`user_config_dir`): a ``_target_`` naming a class or factory
plus its keyword arguments. ``get_solver('dps', scale=0.3)``
builds the ``dps`` preset with ``scale`` overridden. Third-party packages add presets
through the entry-point groups ``invprob.solvers``, ``invprob.operators`` and
``invprob.priors``: the entry point names a class or factory, called with the overrides.
"""

from __future__ import annotations

import importlib
import inspect
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from .checks import SAFE_NAME

__all__ = ["get_solver", "plugin", "get_operator", "get_prior", "available", "presets", "instantiate", "config_dir",
           "load_preset", "locate", "build", "GROUPS", "NAME", "user_config_dir", "keyword_arguments"]

GROUPS = ("solvers", "operators", "priors")
#: what a preset name may be: letters, digits and ``_ . + -``, not starting with ``.`` (never a path)
NAME = SAFE_NAME


def config_dir() -> Path:
    """Folder holding the config groups: the repository's top level in a source checkout
    (editable install), ``invprob/conf`` in an installed wheel."""
    package = Path(__file__).resolve().parent
    shipped = package / "conf"
    if (shipped / "solvers").is_dir():
        return shipped
    return package.parent


def user_config_dir() -> Path:
    """The user's own presets (e.g. those ``invprob calibrate`` writes), in group folders
    ``solvers/``, ``operators/``, ``priors/``: ``$INVPROB_CONFIG`` if set, else ``invprob/`` in
    ``$XDG_CONFIG_HOME`` (default ``~/.config``). A shipped preset of the same name wins."""
    import os

    env = os.environ.get("INVPROB_CONFIG")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "invprob"


def _group_dirs(group: str) -> list[Path]:
    """The preset folders of ``group``: the shipped one, then the user's."""
    if group not in GROUPS:
        raise ValueError(f"unknown config group {group!r}; expected one of {GROUPS}.")
    return [config_dir() / group, user_config_dir() / group]


def _entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=f"invprob.{group}")}


def presets(group: str) -> list[str]:
    """Names of the YAML presets of ``group`` (``solvers``, ``operators`` or ``priors``)."""
    return sorted({p.stem for folder in _group_dirs(group) if folder.is_dir() for p in folder.glob("*.yaml")
                   if NAME.fullmatch(p.stem)})


def available() -> dict[str, list[str]]:
    """Preset names per group (``solvers``, ``operators``, ``priors``), plugins included."""
    return {group: sorted(set(presets(group)) | set(_entry_points(group))) for group in GROUPS}


def plugin(group: str, name: str) -> Any:
    """The object a plugin's entry point ``name`` of ``group`` names (e.g. a solver class)."""
    plugins = _entry_points(group)
    if name not in plugins:
        raise _unknown(group, name)
    return plugins[name].load()


def _unknown(group: str, name: object) -> KeyError:
    return KeyError(f"unknown {group[:-1]} preset {name!r}; available: {', '.join(available()[group])}.")


def load_preset(group: str, name: str) -> dict[str, Any]:
    """The raw configuration dict of a preset (YAML), without instantiating it.

    ``name`` is a preset name, never a path: anything but letters, digits and ``_ . + -``
    (a ``/``, a leading ``.``) is refused, so a name cannot reach outside the group's folder.
    """
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise _unknown(group, name)
    path = next((p for p in (folder / f"{name}.yaml" for folder in _group_dirs(group)) if p.is_file()), None)
    if path is None:
        raise _unknown(group, name)
    with open(path) as f:
        config = yaml.safe_load(f) or {}
    if not isinstance(config, dict) or "_target_" not in config:
        raise ValueError(f"preset {path} has no `_target_` naming the class to build.")
    return config


def locate(path: str) -> Any:
    """The object a ``_target_`` string names (``"package.module.attribute"``)."""
    module, _, attr = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as err:
        raise ImportError(f"cannot import `_target_: {path}` ({err}).") from err


def instantiate(config: Any) -> Any:
    """Build ``config`` recursively: dicts with ``_target_`` become objects (Hydra-compatible
    subset: keys starting with ``_`` other than ``_target_`` are ignored)."""
    if isinstance(config, dict):
        values = {k: instantiate(v) for k, v in config.items() if not k.startswith("_")}
        if "_target_" in config:
            return locate(config["_target_"])(**values)
        return values
    if isinstance(config, list):
        return [instantiate(v) for v in config]
    return config


def build(group: str, name: str, config: dict[str, Any] | None = None) -> Any:
    """Build preset ``name`` of ``group`` with ``config`` (keyword arguments) merged over it.

    The one instantiation path of the library, the CLI and the benchmarks: keys the preset's
    target does not take are refused with the list of those it does (a YAML preset), a plugin
    entry point is called with ``config``.
    """
    config = dict(config or {})
    if name in presets(group):
        preset = load_preset(group, name)
        target = locate(config.get("_target_", preset["_target_"]))
        unknown = set(config) - set(preset) - {"_target_"}
        if unknown and not _accepts(target, unknown):
            raise TypeError(f"{group[:-1]} preset {name!r} ({preset['_target_']}) has no argument(s) "
                            f"{sorted(unknown)}; it takes {sorted(k for k in preset if not k.startswith('_'))}.")
        preset.update(config)
        return instantiate(preset)
    return plugin(group, name)(**{k: instantiate(v) for k, v in config.items() if not k.startswith("_")})


def keyword_arguments(target: Any) -> tuple[set[str], bool]:
    """``(the keyword arguments target takes, whether it takes **kwargs)``; ``(set(), True)``
    when its signature cannot be read (anything may then be passed)."""
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return set(), True
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return named, any(p.kind is p.VAR_KEYWORD for p in params)


def _accepts(target: Any, names: set[str]) -> bool:
    named, any_keyword = keyword_arguments(target)
    return any_keyword or names <= named


def get_solver(name: str, **overrides: Any):
    """Build solver preset ``name`` (e.g. ``'dps'``) with keyword ``overrides``."""
    return build("solvers", name, overrides)


def get_operator(name: str, **overrides: Any):
    """Build operator preset ``name`` with keyword ``overrides``."""
    return build("operators", name, overrides)


def get_prior(name: str, **overrides: Any):
    """Build prior preset ``name`` with keyword ``overrides``."""
    return build("priors", name, overrides)
