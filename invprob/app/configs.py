"""Hydra's view of the presets: config groups ``solver``, ``operator`` and ``prior`` registered in
Hydra's ``ConfigStore`` from the preset folders of :mod:`invprob.registry`, and the training
settings as a structured config built from :class:`invprob.training.TrainConfig`.

No file is copied or linked: the YAML presets are read from their folders (the same files
``invprob.registry`` reads) and stored in memory, so ``solver=dps`` selects
``solvers/dps.yaml`` and a plugin's entry point is a group option too.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

from .. import registry
from ..errors import USER_ERRORS, InputError

__all__ = ["CONF_DIR", "GROUPS", "register", "run_app", "one_line", "check_output_dirs", "check_group_choices",
           "preset_node"]

#: the primary configs (``config.yaml`` of ``invprob solve``, ``train.yaml`` of ``invprob train``)
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
#: Hydra group name (the CLI's ``solver=...``) → preset folder of :mod:`invprob.registry`
GROUPS = {"solver": "solvers", "operator": "operators", "prior": "priors"}
PLUGIN_KEY = "_plugin_"  # marks a group option that is an entry point, not a YAML preset


def register() -> None:
    """Store every preset (and plugin) under its Hydra group, and ``TrainConfig`` as
    ``train_config``; idempotent."""
    from hydra.core.config_store import ConfigStore

    from ..training import TrainConfig

    store = ConfigStore.instance()
    for group, folder in GROUPS.items():
        for name in registry.available()[folder]:
            store.store(group=group, name=name, node=preset_node(folder, name))
    store.store(name="train_config", node=TrainConfig)


def preset_node(folder: str, name: str) -> dict[str, Any]:
    """The config node of preset ``name`` of ``folder``: the YAML preset, or a plugin's
    ``{_plugin_: name}`` (its arguments are whatever the command line adds)."""
    return registry.load_preset(folder, name) if name in registry.presets(folder) else {PLUGIN_KEY: name}


def _arguments(folder: str, name: str) -> tuple[set[str], set[str], bool]:
    """``(keys of the preset's node, the target's keyword arguments, whether it takes **kwargs)``."""
    node = preset_node(folder, name)
    target = registry.plugin(folder, name) if PLUGIN_KEY in node else registry.locate(node["_target_"])
    return (set(node), *registry.keyword_arguments(target))


def one_line(err: BaseException) -> str:
    """An exception as one line (a ``KeyError``'s message without its quotes)."""
    text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    return " ".join(str(text).split()) or type(err).__name__


def check_output_dirs(argv: list[str]) -> None:
    """Create the run or sweep folder named by ``hydra.run.dir=`` / ``hydra.sweep.dir=`` (when
    given literally) before Hydra does, so an invalid or unwritable folder is one
    :class:`InputError` instead of Hydra's traceback."""
    for arg in argv:
        key, _, value = arg.partition("=")
        if key.lstrip("+") not in ("hydra.run.dir", "hydra.sweep.dir") or not value or "${" in value:
            continue
        try:
            Path(value).mkdir(parents=True, exist_ok=True)
            probe = Path(value) / f".invprob-write-test-{os.getpid()}"
            probe.touch()
            probe.unlink()
        except OSError as err:
            raise InputError(f"`{key}` {value!r} cannot be used as an output folder "
                             f"({err.strerror or one_line(err)}); choose a writable folder.") from err


@contextlib.contextmanager
def _hydra_argv(argv: list[str]) -> Iterator[None]:
    """Hydra reads its overrides from ``sys.argv``: present ``argv`` as the command line."""
    saved = sys.argv
    sys.argv = [saved[0] if saved else "invprob"] + list(argv)
    try:
        yield
    finally:
        sys.argv = saved


def check_group_choices(argv: list[str]) -> None:
    """Refuse an unknown preset in ``solver=`` / ``operator=`` / ``prior=`` (sweeps: each of a
    comma-separated list) with one :class:`InputError` listing the available ones."""
    available = registry.available()
    for arg in argv:
        key, _, value = arg.partition("=")
        group = key.lstrip("+~")
        if group not in GROUPS or not value or "(" in value:
            continue
        for name in value.split(","):
            if name not in available[GROUPS[group]]:
                raise InputError(f"`{group}` {name!r} is not a preset; available: "
                                 f"{', '.join(available[GROUPS[group]])}.")


def check_preset_arguments(argv: list[str], defaults: dict[str, str]) -> list[str]:
    """Check ``solver.<key>=`` (``operator.``, ``prior.``) against the chosen preset (from
    ``solver=`` in ``argv``, else ``defaults``) and return ``argv`` ready for Hydra: a key the
    preset's YAML does not list but its class takes becomes ``++solver.<key>=`` (every argument is
    overridable without ``+``); a key neither has is one :class:`InputError` naming the preset and
    its arguments, instead of Hydra's multi-line message. Groups chosen by a sweep function
    (``solver=choice(...)``) are left to Hydra."""
    chosen = dict(defaults)
    for arg in argv:
        key, _, value = arg.partition("=")
        group = key.lstrip("+~")
        if group in GROUPS and value:
            if "(" in value:
                chosen.pop(group, None)
            else:
                chosen[group] = value
    out = []
    for arg in argv:
        key, _, _ = arg.partition("=")
        group, dot, field = key.partition(".")
        if key.startswith(("+", "~")) or group not in GROUPS or not dot or group not in chosen:
            out.append(arg)
            continue
        field = field.split(".")[0]
        add = False
        for name in chosen[group].split(","):
            in_node, named, var_keyword = _arguments(GROUPS[group], name)
            if field in in_node:
                continue
            if field not in named and not var_keyword:
                takes = ", ".join(sorted(k for k in in_node | named if not k.startswith("_")))
                raise InputError(f"`{key}`: {group} preset {name!r} has no argument {field!r}; it takes {takes}.")
            add = True
        out.append(f"++{arg}" if add and "." not in key.partition(".")[2] else arg)  # ++: add or override
    return out


def _default_choices(config_name: str) -> dict[str, str]:
    """``{group: preset}`` of the primary config's ``defaults`` list (e.g. ``solver: dps``)."""
    import yaml

    defaults = yaml.safe_load((CONF_DIR / f"{config_name}.yaml").read_text()).get("defaults", [])
    return {k: v for item in defaults if isinstance(item, dict) for k, v in item.items() if k in GROUPS}


def run_app(config_name: str, task: Callable[[Any], Any], argv: list[str] | None = None) -> int:
    """Run ``task(cfg)`` as the Hydra app of primary config ``config_name`` (in :data:`CONF_DIR`)
    with the overrides ``argv``; returns 0, or 2 after printing one line for each job whose
    input was bad (``errors.USER_ERRORS``)."""
    import hydra

    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        check_output_dirs(argv)
        check_group_choices(argv)
        argv = check_preset_arguments(argv, _default_choices(config_name))
    except InputError as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    register()
    code = {"value": 0}

    @hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base=None)
    def app(cfg: Any) -> None:
        try:
            task(cfg)
        except USER_ERRORS as err:
            print(f"error: {one_line(err)}", file=sys.stderr)
            code["value"] = 2

    with _hydra_argv(argv):
        app()
    return code["value"]
