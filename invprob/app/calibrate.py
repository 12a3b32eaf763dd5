"""``invprob calibrate``: the Hydra application over :func:`invprob.calibration.calibrate` — build
the presets, simulate pairs, search the solver's hyper-parameters, write the preset, the search
trace (``trace.json``, which a re-run in the same folder resumes from), its plot
(``calibration.png``) and, last, ``calibration.json`` (the summary; a folder without it holds
no finished calibration)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from .configs import run_app
from .solve import DTYPES, _build, _device, _positive_float, _positive_int, image_space

__all__ = ["run", "main"]


def run(cfg: Any, out: Path | None = None, choices: dict[str, str] | None = None) -> dict[str, Any]:
    """Calibrate as ``cfg`` (the composed Hydra config) says, into ``out`` (default: the current
    directory, Hydra's run folder); returns the summary written to ``calibration.json``."""
    from omegaconf import OmegaConf

    from ..calibration import CRITERIA, calibrate, image_crops
    from ..noise import Gaussian

    out = Path.cwd() if out is None else Path(out)
    if choices is None:
        from hydra.core.hydra_config import HydraConfig

        choices = dict(HydraConfig.get().runtime.choices)
    (out / "calibration.json").unlink(missing_ok=True)  # from here on the folder holds no finished calibration
    if cfg.dtype not in DTYPES:
        raise InputError(f"`dtype` must be one of {sorted(DTYPES)}, got {cfg.dtype!r}.")
    if cfg.criterion not in CRITERIA:
        raise InputError(f"`criterion` must be one of {', '.join(CRITERIA)}, got {cfg.criterion!r}.")
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"`seed` must be a non-negative integer, got {seed!r}.")
    num_pairs, num_samples = _positive_int(cfg, "num_pairs"), _positive_int(cfg, "num_samples")
    budget, projections = _positive_int(cfg, "budget", allow_none=True), _positive_int(cfg, "projections", allow_none=True)
    grid = _positive_int(cfg, "grid")
    tolerance = _positive_float(cfg, "tolerance")
    tunables = cfg.get("tunables")
    if tunables is not None:
        tunables = [tunables] if isinstance(tunables, str) else list(OmegaConf.to_container(tunables))
    dtype, device = DTYPES[cfg.dtype], _device(cfg.device)
    tag = cfg.get("tag") or f"{choices['operator']}-{choices['prior']}"
    preset_path = cfg.get("preset_path")
    if preset_path is not None:
        from hydra.utils import to_absolute_path

        preset_path = Path(to_absolute_path(preset_path))
        if preset_path.suffix != ".yaml":
            raise InputError(f"`preset_path` must name a .yaml file, got {str(preset_path)!r}.")
    prior = _build("prior", cfg, choices).to(device=device, dtype=dtype)
    operator = _build("operator", cfg, choices).to(device=device, dtype=dtype)
    truths = None
    if cfg.get("input") is not None:
        from hydra.utils import to_absolute_path

        shape, data_range = image_space(prior)
        shape = shape or operator.x_shape
        if shape is None:
            raise InputError("the prior accepts any image size and the operator fixes none; set operator.x_shape.")
        truths = image_crops(Path(to_absolute_path(cfg.input)), tuple(shape), num_pairs, seed, data_range)
    result = calibrate(choices["solver"], operator, Gaussian(_positive_float(cfg, "noise_sigma")), prior,
                       overrides={k: v for k, v in OmegaConf.to_container(cfg.solver, resolve=True).items()
                                  if not k.startswith("_") and k not in _preset_keys(choices["solver"], cfg)},
                       truths=truths, num_pairs=num_pairs, num_samples=num_samples, criterion=cfg.criterion,
                       tolerance=tolerance, tunables=tunables, budget=budget, grid=grid, projections=projections,
                       seed=seed, trace=out / "trace.json", progress=not cfg.quiet,
                       describe={"operator": choices["operator"], "prior": choices["prior"],
                                 "noise_sigma": float(cfg.noise_sigma),
                                 "input": None if cfg.get("input") is None else str(cfg.input)})
    path = result.write_preset(tag=tag, path=preset_path)
    result.plot(out / "calibration.png")
    chosen = result.chosen
    summary = {"preset": str(path), "name": path.stem, "solver": choices["solver"], "best": result.best,
               "start": result.start, "criterion": result.criterion, "psnr": chosen.psnr, "coverage": chosen.coverage,
               "ks": chosen.ks, "solves": len(result.candidates), "network_images": result.network_images,
               "seconds": result.seconds}
    (out / "calibration.json").write_text(json.dumps(summary, indent=2))
    values = ", ".join(f"{k}={v:g}" for k, v in result.best.items())
    print(f"chosen:  {values} (preset: {', '.join(f'{k}={v:g}' for k, v in result.start.items())}); "
          f"PSNR {chosen.psnr:.2f} dB, 90 % coverage {chosen.coverage:.3f} on {num_pairs} simulated pairs; "
          f"{len(result.candidates)} solves, {result.seconds:.0f} s")
    print(f"preset:  {path}\nuse it:  invprob solve solver={path.stem} operator={choices['operator']} "
          f"prior={choices['prior']} ..." if preset_path is None else f"preset:  {path}")
    print(f"plot:    {out / 'calibration.png'}")
    return summary


def _preset_keys(name: str, cfg: Any) -> set[str]:
    """Keys whose value is the preset's own (not overridden on the command line)."""
    from omegaconf import OmegaConf

    from .. import registry

    if name not in registry.presets("solvers"):
        return set()
    preset = registry.load_preset("solvers", name)
    given = OmegaConf.to_container(cfg.solver, resolve=True)
    return {k for k, v in given.items() if k in preset and preset[k] == v}


def main(argv: list[str] | None = None) -> int:
    """``invprob calibrate key=value ...``: 0 on success, 2 with one line on stderr for bad input."""
    return run_app("calibrate", run, argv)
