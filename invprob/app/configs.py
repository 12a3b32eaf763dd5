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

__all__ = ["CONF_DIR", "GROUPS", "register", "run_app", "one_line", "check_output_dirs", "check_group_choices"]

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
        names = registry.available()[folder]
        yaml_presets = set(registry.presets(folder))
        for name in names:
            node = registry.load_preset(folder, name) if name in yaml_presets else {PLUGIN_KEY: name}
            store.store(group=group, name=name, node=node)
    store.store(name="train_config", node=TrainConfig)


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


def run_app(config_name: str, task: Callable[[Any], Any], argv: list[str] | None = None) -> int:
    """Run ``task(cfg)`` as the Hydra app of primary config ``config_name`` (in :data:`CONF_DIR`)
    with the overrides ``argv``; returns 0, or 2 after printing one line for each job whose
    input was bad (``errors.USER_ERRORS``)."""
    import hydra

    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        check_output_dirs(argv)
        check_group_choices(argv)
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
