"""``invprob solve``: the Hydra application — build the presets, simulate or read a
measurement, sample the posterior, write the run folder (:func:`invprob.app.report.write_run`).

Under ``torchrun`` (``WORLD_SIZE`` > 1) the solve is data-parallel: each rank solves a contiguous
shard of the measurements (gloo on CPU, NCCL with ``device=cuda``: rank ``r`` on ``cuda:LOCAL_RANK``),
rank 0 gathers the samples and writes the run folder. Per-sample random streams make the samples
those of a single-process run with the same seed. ``hydra.run.dir=`` must name the folder, so
that every rank writes one run.

A run folder is complete when its ``metrics.json`` exists and records the same settings as the
request; ``metrics.json`` is written last, so a crashed run never looks complete. Re-running into
a folder that holds a complete run with the same settings skips it (``skip_done=true``); a folder
holding a run with other settings is re-run (``on_mismatch=rerun``, the default) or refused
(``on_mismatch=refuse``).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch

from ..datasets import IMAGE_SUFFIXES
from ..errors import InputError
from .configs import GROUPS, PLUGIN_KEY, one_line, run_app

__all__ = ["run", "main", "load_truth"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: settings that do not change a run's result (left out of the completeness check)
NOT_RECORDED = ("quiet", "skip_done", "on_mismatch", "batch_size")


# -- settings ------------------------------------------------------------------------------
def _device(value: Any) -> torch.device:
    import os

    try:
        device = torch.device(str(value))
    except (RuntimeError, ValueError) as err:
        raise InputError(f"`device` {value!r} is not a device; use cpu, cuda or cuda:N.") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"`device` is {value!r} but no CUDA GPU is available here; use device=cpu.")
    if device.type not in ("cpu", "cuda"):
        raise InputError(f"`device` {value!r} is not supported; use cpu or cuda.")
    if device.type == "cuda" and device.index is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))  # torchrun: one GPU per rank
    return device


def _submitit_ranks() -> None:
    """Inside a submitit job of several tasks (``hydra/launcher=slurm`` with
    ``hydra.launcher.tasks_per_node`` or ``nodes`` > 1; ``srun`` starts one task per rank), export
    the torch.distributed variables (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` …) that ``torchrun``
    would set, so that the tasks shard the solve like torchrun ranks."""
    import os

    if "WORLD_SIZE" in os.environ or not os.environ.get("SUBMITIT_EXECUTOR"):
        return
    import submitit
    from submitit.helpers import TorchDistributedEnvironment

    if submitit.JobEnvironment().num_tasks > 1:
        TorchDistributedEnvironment().export(set_cuda_visible_devices=False)


def world(device: torch.device) -> tuple[int, int]:
    """``(rank, world size)``: under ``torchrun`` (``WORLD_SIZE`` > 1) the process group is
    initialised once (NCCL on CUDA, gloo on CPU); ``(0, 1)`` otherwise."""
    import os

    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _shard(num: int, rank: int, size: int) -> tuple[int, int]:
    """The contiguous ``[start, stop)`` of ``num`` measurements that rank ``rank`` of ``size`` solves."""
    per, extra = divmod(num, size)
    start = rank * per + min(rank, extra)
    return start, start + per + (rank < extra)


def _positive_int(cfg: Any, key: str, allow_none: bool = False) -> int | None:
    value = cfg.get(key)
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"`{key}` must be a positive integer{' or null' if allow_none else ''}, got {value!r}.")
    return value


def _positive_float(cfg: Any, key: str) -> float:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InputError(f"`{key}` must be a finite number > 0, got {value!r}.")
    return float(value)


def _settings(cfg: Any) -> dict[str, Any]:
    """The run's validated settings (every bad value a one-line :class:`InputError`)."""
    if cfg.dtype not in DTYPES:
        raise InputError(f"`dtype` must be one of {sorted(DTYPES)}, got {cfg.dtype!r}.")
    if cfg.get("input") is not None and cfg.get("measurement") is not None:
        raise InputError("give either `input=` (a ground truth to simulate from) or `measurement=` (a real "
                         "measurement), not both.")
    if cfg.get("on_mismatch", "rerun") not in ("rerun", "refuse"):
        raise InputError(f"`on_mismatch` must be rerun or refuse, got {cfg.on_mismatch!r}.")
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"`seed` must be a non-negative integer, got {seed!r}.")
    input_range = cfg.get("input_range")
    if input_range is not None:
        if len(input_range) != 2 or not all(isinstance(v, (int, float)) for v in input_range) \
                or not input_range[0] < input_range[1]:
            raise InputError(f"`input_range` must be [low, high] with low < high, got {list(input_range)!r}.")
        input_range = (float(input_range[0]), float(input_range[1]))
    tv = None if cfg.get("tv_lambda") is None else _positive_float(cfg, "tv_lambda")
    return {"dtype": DTYPES[cfg.dtype], "device": _device(cfg.device), "seed": seed, "tv_lambda": tv,
            "num_samples": _positive_int(cfg, "num_samples"),
            "batch_size": _positive_int(cfg, "batch_size", allow_none=True),
            "noise_sigma": _positive_float(cfg, "noise_sigma"),
            "kspace_scale": _positive_float(cfg, "kspace_scale"), "input_range": input_range}


def _build(group: str, cfg: Any, choices: dict[str, str]) -> Any:
    """The group's object through :func:`invprob.registry.build` (the registry's checks apply)."""
    from omegaconf import OmegaConf

    from .. import registry

    config = OmegaConf.to_container(cfg[group], resolve=True)
    name = config.pop(PLUGIN_KEY, None) or choices[group]
    return registry.build(GROUPS[group], name, config)


# -- inputs --------------------------------------------------------------------------------
def image_space(prior: Any) -> tuple[tuple[int, ...] | None, tuple[float, float] | None]:
    """The shape and value range of the images a prior stands for: its own, or for a latent
    prior those of its decoder's images (:class:`~invprob.priors.LatentPrior`)."""
    if hasattr(prior, "image_shape"):
        return tuple(prior.image_shape), prior.image_range
    return prior.x_shape, prior.data_range


def slice_wise(prior: Any, operator: Any, quiet: bool) -> Any:
    """The prior for the operator's unknown: a 2-D image prior becomes a
    :class:`~invprob.priors.SliceWisePrior` when the operator acts on volumes ``(D, C, H, W)``
    of its slices (said on the console); any other prior is returned as it is."""
    from ..priors import SliceWisePrior

    shape = operator.x_shape
    if shape is None or len(shape) != 4 or isinstance(prior, SliceWisePrior) or hasattr(prior, "image_shape"):
        return prior
    if prior.x_shape is not None and tuple(prior.x_shape) != tuple(shape[1:]):
        return prior  # the solver's check names the mismatch
    if not quiet:
        print(f"the operator acts on volumes of {shape[0]} slices: the prior denoises them slice by slice")
    return SliceWisePrior(prior, shape[0])


def load_truth(path: Path, prior: Any, dtype: torch.dtype, input_range: tuple[float, float] | None) -> torch.Tensor:
    """Ground truth ``(M, *x_shape)`` in the prior's data range from an image, a folder of
    images (one measurement each, in name order) or a ``.npy`` array.

    Image files are mapped from [0, 255] to the prior's data range. A ``.npy`` is taken in the
    prior's data range unless ``input_range=[low, high]`` says what range it is in; values far
    outside the data range (e.g. [0, 255] or [0, 1] data given for a [-1, 1] prior) are refused
    with the option to pass.
    """
    from ..checks import check_finite
    from ..io import from_unit, load_image, to_unit
    from ..operators.readers import read_array

    shape, data_range = image_space(prior)
    gray = shape is None or shape[0] == 1
    if input_range is not None and data_range is None:
        raise InputError("`input_range` maps a .npy to the prior's data range, but this prior has none "
                         "(unbounded); give the values as they are and drop input_range.")
    if not path.exists():
        raise InputError(f"input not found: {path}; give an image, a folder of images or a .npy (`input=`).")
    try:
        if path.is_dir():
            files = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise InputError(f"`input` folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
            images = [load_image(f, gray=gray, data_range=data_range or (-1.0, 1.0)) for f in files]
            if len({tuple(x.shape) for x in images}) > 1:
                raise InputError(f"the images in {path} differ in size; crop them to one size first.")
            x = torch.cat(images)
        elif path.suffix == ".npy":
            x = read_array(path, "input")
            if x.is_complex():
                raise InputError(f"`input` {path} is complex; the prior models real images (use real/imaginary "
                                 f"channels or the magnitude).")
            x = x.to(torch.float64)
            if shape is not None and x.dim() == len(shape):
                x = x[None]
            check_finite(x, "input")
            if input_range is not None:
                if x.min() < input_range[0] or x.max() > input_range[1]:
                    raise InputError(f"`input` {path} has values in [{x.min().item():.4g}, {x.max().item():.4g}], "
                                     f"outside the `input_range` {list(input_range)} given for it.")
                x = from_unit(to_unit(x, input_range), data_range)
            elif data_range is not None:
                lo, hi = data_range
                margin = 0.1 * (hi - lo)
                if x.min() < lo - margin or x.max() > hi + margin:
                    raise InputError(f"`input` {path} has values in [{x.min().item():.4g}, {x.max().item():.4g}], "
                                     f"outside the prior's data range [{lo:g}, {hi:g}]; pass the range the file is "
                                     f"in, e.g. input_range=[0,255] or input_range=[0,1].")
                if lo < 0 <= x.min().item():
                    raise InputError(f"`input` {path} has no negative value (range [{x.min().item():.4g}, "
                                     f"{x.max().item():.4g}]) while the prior's data range is [{lo:g}, {hi:g}]: if it is "
                                     f"[0, 1] data pass input_range=[0,1] (or [0,255]); if it is already in the data "
                                     f"range, say so with input_range=[{lo:g},{hi:g}].")
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            x = load_image(path, gray=gray, data_range=data_range or (-1.0, 1.0))
        else:
            raise InputError(f"`input` {path}: expected an image ({', '.join(IMAGE_SUFFIXES)}), a folder of "
                             f"images or a .npy array, got {path.suffix!r}.")
    except (OSError, SyntaxError) as err:  # PIL: unreadable or truncated image
        raise InputError(f"`input` {path} cannot be read as an image ({one_line(err)}).") from err
    if shape is not None and tuple(x.shape[1:]) != tuple(shape):
        raise InputError(f"`input` {path} has shape {tuple(x.shape[1:])} but the prior models "
                         f"{tuple(shape)}; resize or crop it, or choose another prior.")
    return x.to(dtype)


# -- the run -------------------------------------------------------------------------------
def _request(cfg: Any, choices: dict[str, str]) -> dict[str, Any]:
    from omegaconf import OmegaConf

    request = OmegaConf.to_container(cfg, resolve=True)
    for key in NOT_RECORDED:
        request.pop(key, None)
    if request.get("tv_lambda") is None:  # unset: the request of a run without the TV panel
        request.pop("tv_lambda", None)
    request["presets"] = {group: choices[group] for group in GROUPS}
    return request


def _previous_run(out: Path) -> dict[str, Any] | None:
    import json

    try:
        return json.loads((out / "metrics.json").read_text())
    except (OSError, ValueError):
        return None


def _differences(old: dict, new: dict) -> str:
    keys = sorted(set(old) | set(new), key=str)
    changed = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]
    return "; ".join(changed[:3]) + (" ..." if len(changed) > 3 else "")


def _solve_in_batches(solver: Any, problem: Any, prior: Any, num_samples: int, batch_size: int | None,
                      seed: int, progress: bool) -> tuple[torch.Tensor, dict[str, int], float]:
    """Solve ``batch_size`` measurements at a time (all at once when ``None``). Seeds depend on
    the sample index only, so the samples are the same whatever the batch size. Returns the
    samples ``(M, K, *x_shape)`` on the CPU, the call counts (NFE per sample, operator calls, and
    for a latent prior decoder and encoder calls) and seconds."""
    from ..problem import Problem

    M = problem.num_measurements
    if batch_size is not None and batch_size < M:
        per_measurement = [n for n, b in problem.operator.named_buffers() if b.dim() >= 3 and b.shape[0] == M]
        if per_measurement:
            raise InputError(f"the operator has one {per_measurement[0]} per measurement; solve all {M} together "
                             f"(batch_size=null) or build it with a single one.")
    step = M if batch_size is None else batch_size
    parts, counts, seconds = [], {"nfe_per_sample": 0, "operator_calls": 0}, 0.0
    latent = hasattr(prior, "image_shape")
    for start in range(0, M, step):
        sub = problem if step >= M else Problem(problem.operator, problem.measurement[start:start + step], problem.noise)
        result = solver.solve(sub, prior, num_samples=num_samples, generator=seed, progress=progress)
        parts.append(result.samples.detach().cpu())
        seconds += result.seconds
        counts["nfe_per_sample"] = result.nfe
        counts["operator_calls"] += result.operator_calls
        if latent:
            counts["decoder_calls"] = counts.get("decoder_calls", 0) + result.decoder_calls
            counts["encoder_calls"] = counts.get("encoder_calls", 0) + result.encoder_calls
    return torch.cat(parts), counts, seconds


def _solve_sharded(solver: Any, problem: Any, prior: Any, settings: dict[str, Any], progress: bool, rank: int,
                   size: int) -> tuple[torch.Tensor | None, dict[str, int], float]:
    """Solve this rank's shard of the measurements (:func:`_shard`) and gather every shard on rank 0:
    the samples in measurement order (``None`` on the other ranks), the call counts (NFE per sample;
    operator, decoder and encoder calls summed over the ranks) and the seconds of the slowest rank."""
    import torch.distributed as dist

    from ..problem import Problem

    start, stop = _shard(problem.num_measurements, rank, size)
    part = None, {"nfe_per_sample": 0, "operator_calls": 0}, 0.0
    if stop > start:
        sub = Problem(problem.operator, problem.measurement[start:stop], problem.noise)
        part = _solve_in_batches(solver, sub, prior, settings["num_samples"], settings["batch_size"], settings["seed"],
                                 progress)
    parts = [None] * size if rank == 0 else None
    dist.gather_object(part, parts, dst=0)
    if rank != 0:
        return None, {}, 0.0
    samples = torch.cat([p[0] for p in parts if p[0] is not None])
    keys = dict.fromkeys(k for p in parts for k in p[1])  # in order, once each
    counts = {k: (max if k == "nfe_per_sample" else sum)(p[1].get(k, 0) for p in parts) for k in keys}
    return samples, counts, max(p[2] for p in parts)


def _check_tv(operator: Any) -> None:
    """``tv_lambda`` needs a linear operator on 2-D images ``(C, H, W)``: refused in one line otherwise."""
    if not operator.linear:
        raise InputError(f"`tv_lambda` adds a TV reconstruction, which needs a linear operator; "
                         f"{type(operator).__name__} is not linear: drop tv_lambda.")
    if operator.x_shape is not None and len(operator.x_shape) != 3:
        raise InputError(f"`tv_lambda` adds a 2-D TV reconstruction, but the operator acts on "
                         f"{tuple(operator.x_shape)}, not images (C, H, W): drop tv_lambda.")


def _tv(problem: Any, lam: float, progress: bool) -> torch.Tensor:
    """TV-regularised least squares of every measurement (:func:`invprob.evaluation.tv_baseline`,
    200 proximal gradient steps of size ``min(1, 1/‖A‖²)`` from ``Aᵀy``, or from the filtered
    back-projection for CT; an operator without a fixed ``x_shape``, e.g. a shape-agnostic blur,
    is taken as normalised, ``‖A‖ ≤ 1``), the classical reconstruction shown beside the posterior
    with ``tv_lambda=``."""
    from ..evaluation.baselines import tv_baseline
    from ..operators.base import spectral_norm

    y, op = problem.measurement, problem.operator
    if progress:
        print(f"TV reconstruction (lambda {lam:g}) of {problem.num_measurements} measurement(s) for comparison")
    norm = spectral_norm(op, y.real.dtype, y.device) if op.x_shape is not None else 1.0
    init = op.fbp(y) if hasattr(op, "fbp") else None  # CT: from the filtered back-projection, as its benchmark
    return tv_baseline(op, y, lam, stepsize=min(1.0, 1.0 / max(norm, 1e-12) ** 2), init=init).detach().cpu()


def run(cfg: Any, out: Path | None = None, choices: dict[str, str] | None = None) -> dict[str, Any] | None:
    """Run one solve described by ``cfg`` (the composed Hydra config) into ``out`` (default: the
    current directory, Hydra's run folder) and return its metrics (``None`` if skipped)."""
    from ..noise import Gaussian
    from ..operators.readers import load_measurement
    from ..problem import Problem
    from .report import OUTPUTS, write_run

    out = Path.cwd() if out is None else Path(out)
    if choices is None:
        from hydra.core.hydra_config import HydraConfig

        choices = dict(HydraConfig.get().runtime.choices)
    _submitit_ranks()
    settings = _settings(cfg)
    request = _request(cfg, choices)
    dtype, device = settings["dtype"], settings["device"]
    rank, size = world(device)
    previous = _previous_run(out)
    if previous is not None:
        same = previous.get("config") == request
        if same and all((out / name).is_file() for name in OUTPUTS) and cfg.get("skip_done", True):
            print(f"skipping: {out} holds a complete run with these settings (skip_done=false to redo it)")
            return None
        if not same and cfg.get("on_mismatch", "rerun") == "refuse":
            raise InputError(f"{out} holds a run with other settings ({_differences(previous.get('config') or {}, request)}); "
                             f"choose another folder (hydra.run.dir=...) or pass on_mismatch=rerun.")
    prior = _build("prior", cfg, choices).to(device=device, dtype=dtype)
    operator = _build("operator", cfg, choices).to(device=device, dtype=dtype)
    solver = _build("solver", cfg, choices)
    noise = Gaussian(settings["noise_sigma"])
    truth = None
    if cfg.get("measurement") is not None:
        from hydra.utils import to_absolute_path

        y, operator = load_measurement(Path(to_absolute_path(cfg.measurement)), operator, settings["kspace_scale"])
        operator = operator.to(device=device, dtype=dtype)  # complex buffers keep a complex dtype
        prior = slice_wise(prior, operator, cfg.quiet or rank != 0)
        y_dtype = torch.promote_types(dtype, torch.complex64) if y.is_complex() else dtype
        problem = Problem(operator, y.to(device=device, dtype=y_dtype), noise)
    else:
        prior = slice_wise(prior, operator, cfg.quiet or rank != 0)
        if cfg.get("input") is not None:
            from hydra.utils import to_absolute_path

            truth = load_truth(Path(to_absolute_path(cfg.input)), prior, dtype, settings["input_range"]).to(device)
        elif hasattr(prior, "sample"):
            truth = prior.sample(1, torch.Generator().manual_seed(settings["seed"])).to(device=device, dtype=dtype)
        else:
            raise InputError("give `input=<image or .npy>` (ground truth) or `measurement=<.npy>`: this prior "
                             "cannot draw a ground truth itself.")
        if operator.x_shape is not None and tuple(truth.shape[1:]) != tuple(operator.x_shape):
            stack = " (a .npy input is a stack of images, (N, C, H, W))" if str(cfg.input).endswith(".npy") else ""
            raise InputError(f"the ground truth is {tuple(truth.shape[1:])} but the operator acts on "
                             f"{tuple(operator.x_shape)}; override operator.x_shape or pick another input{stack}.")
        problem = Problem.simulate(operator, truth, noise,
                                   generator=torch.Generator(device).manual_seed(settings["seed"]))
    if settings["tv_lambda"] is not None:  # refused before the solve (TV itself runs on rank 0 after it)
        _check_tv(problem.operator)
    if previous is not None:  # every input is valid: the folder's old run goes
        if size > 1:
            import torch.distributed as dist

            dist.barrier()  # every rank has read the folder before rank 0 clears it
        if rank == 0:
            (out / "metrics.json").unlink(missing_ok=True)  # from here on the folder holds no complete run
    clock = time.perf_counter()
    if size > 1:
        samples, counts, seconds = _solve_sharded(solver, problem, prior, settings, not cfg.quiet and rank == 0,
                                                  rank, size)
        if rank != 0:
            return None
    else:
        samples, counts, seconds = _solve_in_batches(solver, problem, prior, settings["num_samples"],
                                                     settings["batch_size"], settings["seed"], not cfg.quiet)
    record: dict[str, Any] = {
        "config": request, "solver": choices["solver"], "solver_class": type(solver).__name__,
        "operator": choices["operator"], "operator_class": type(problem.operator).__name__,
        "prior": choices["prior"], "seed": settings["seed"], "noise_sigma": settings["noise_sigma"],
        "num_samples": settings["num_samples"], **counts, "seconds": seconds, "wall_seconds": time.perf_counter() - clock,
        "ranks": size}
    if device.type == "cuda":
        record["peak_memory_bytes"] = torch.cuda.max_memory_allocated(device)
    else:
        import resource

        record["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    baselines = None
    if settings["tv_lambda"] is not None:  # after the record: its seconds and peak memory are the solve's
        record["tv_lambda"] = settings["tv_lambda"]
        baselines = {"tv": (f"TV, λ {settings['tv_lambda']:g}", _tv(problem, settings["tv_lambda"], not cfg.quiet))}
    metrics = write_run(out, problem, samples, truth, image_space(prior)[1], record, baselines)
    print(f"figure:  {out / 'figure.png'}\nmetrics: {out / 'metrics.json'}")
    return metrics


def main(argv: list[str] | None = None) -> int:
    """``invprob solve key=value ...``: 0 on success, 2 with one line on stderr for bad input.
    Under ``torchrun`` the ranks share one run folder, which ``hydra.run.dir=`` must name; ranks
    other than 0 write nothing there (no ``.hydra/``, no log)."""
    import os
    import sys

    argv = sys.argv[1:] if argv is None else list(argv)
    rank = int(os.environ.get("RANK", "0"))
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        refusal = None
        if "-m" in argv or "--multirun" in argv:
            refusal = "a sweep (-m) cannot run under torchrun; run each cell as its own torchrun solve."
        elif not any(a.partition("=")[0].lstrip("+") == "hydra.run.dir" and "${" not in a for a in argv):
            refusal = "under torchrun every rank writes one run: name its folder with hydra.run.dir=<folder>."
        if refusal:  # rank 0 prints it and fails the job; the others leave quietly with 0, so
            if rank != 0:  # torchrun does not stop rank 0 before its line is out
                return 0
            print(f"error: {refusal}", file=sys.stderr)
            return 2
        if rank != 0:  # rank 0 writes the run folder and prints; the others' input is the same
            import contextlib
            import io

            argv += ["hydra.output_subdir=null", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                code = run_app("config", run, argv)
            return _leave_group(code)
    return _leave_group(run_app("config", run, argv))


def _leave_group(code: int) -> int:
    """``code``, after leaving the torchrun process group if this process joined one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    return code

