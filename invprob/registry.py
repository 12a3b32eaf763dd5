"""Preset registry: the same menu for Python users and the CLI, without Hydra.

A preset is a YAML file in a config group folder (``solvers/``, ``operators/``, ``priors/``
at the repository top level, shipped in the wheel as ``invprob.conf``): a ``_target_``
naming a class or factory plus its keyword arguments. ``get_solver('dps', scale=0.3)``
builds the ``dps`` preset with ``scale`` overridden. Third-party packages add presets
through the entry-point groups ``invprob.solvers``, ``invprob.operators`` and
``invprob.priors``: the entry point names a class or factory, called with the overrides.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

__all__ = ["get_solver", "get_operator", "get_prior", "available", "instantiate", "config_dir",
           "load_preset"]

GROUPS = ("solvers", "operators", "priors")


def config_dir() -> Path:
    """Folder holding the config groups: the repository's top level in a source checkout
    (editable install), ``invprob/conf`` in an installed wheel."""
    package = Path(__file__).resolve().parent
    shipped = package / "conf"
    if (shipped / "solvers").is_dir():
        return shipped
    return package.parent


def _group_dir(group: str) -> Path:
    if group not in GROUPS:
        raise ValueError(f"unknown config group {group!r}; expected one of {GROUPS}.")
    return config_dir() / group


def _entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=f"invprob.{group}")}


def _presets(group: str) -> list[str]:
    folder = _group_dir(group)
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def available() -> dict[str, list[str]]:
    """Preset names per group (``solvers``, ``operators``, ``priors``), plugins included."""
    return {group: sorted(set(_presets(group)) | set(_entry_points(group))) for group in GROUPS}


def load_preset(group: str, name: str) -> dict[str, Any]:
    """The raw configuration dict of a preset (YAML), without instantiating it."""
    path = _group_dir(group) / f"{name}.yaml"
    if not path.is_file():
        raise KeyError(f"unknown {group[:-1]} preset {name!r}; available: {', '.join(available()[group])}.")
    with open(path) as f:
        config = yaml.safe_load(f) or {}
    if "_target_" not in config:
        raise ValueError(f"preset {path} has no `_target_` naming the class to build.")
    return config


def _locate(path: str) -> Any:
    module, _, attr = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ImportError(f"cannot import `_target_: {path}` ({err}).") from err


def instantiate(config: Any) -> Any:
    """Build ``config`` recursively: dicts with ``_target_`` become objects (Hydra-compatible
    subset: keys starting with ``_`` other than ``_target_`` are ignored)."""
    if isinstance(config, dict):
        values = {k: instantiate(v) for k, v in config.items() if not k.startswith("_")}
        if "_target_" in config:
            return _locate(config["_target_"])(**values)
        return values
    if isinstance(config, list):
        return [instantiate(v) for v in config]
    return config


def _get(group: str, name: str, overrides: dict[str, Any]) -> Any:
    if name in _presets(group):
        config = load_preset(group, name)
        unknown = set(overrides) - set(config) - {"_target_"}
        target = _locate(config["_target_"])
        if unknown and not _accepts(target, unknown):
            raise TypeError(f"{group[:-1]} preset {name!r} ({config['_target_']}) has no argument(s) "
                            f"{sorted(unknown)}; it takes {sorted(k for k in config if not k.startswith('_'))}.")
        config.update(overrides)
        return instantiate(config)
    plugins = _entry_points(group)
    if name in plugins:
        return plugins[name].load()(**overrides)
    raise KeyError(f"unknown {group[:-1]} preset {name!r}; available: {', '.join(available()[group])}.")


def _accepts(target: Any, names: set[str]) -> bool:
    import inspect

    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return True
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return True
    return names <= set(params)


def get_solver(name: str, **overrides: Any):
    """Build solver preset ``name`` (e.g. ``'dps'``) with keyword ``overrides``."""
    return _get("solvers", name, overrides)


def get_operator(name: str, **overrides: Any):
    """Build operator preset ``name`` with keyword ``overrides``."""
    return _get("operators", name, overrides)


def get_prior(name: str, **overrides: Any):
    """Build prior preset ``name`` with keyword ``overrides``."""
    return _get("priors", name, overrides)
