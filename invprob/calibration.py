"""Calibrate a solver's hyper-parameters for one operator, noise model and prior by simulation.

A user has no ground truth, but the prior (or a folder of representative clean images) gives as
many pairs ``(x, y = A(x) + n)`` as they like. :func:`calibrate` draws ``N`` such pairs, solves
them for ``K`` samples each with candidate values of the solver's declared hyper-parameters
(:attr:`invprob.solvers.Solver.tunables`) and keeps the best by a criterion computed from the
pairs alone:

* ``"psnr"``: PSNR of the posterior mean (the mean of the ``K`` samples) to ``x``, averaged
  over the pairs;
* ``"calibration"``: simulation-based calibration (Talts et al. 2018, "Validating Bayesian
  inference algorithms with simulation-based calibration", arXiv:1804.06788). For a sampler of
  the exact posterior, the rank of ``x`` among the ``K`` samples is uniform, per pixel and along
  any projection. The rank is made continuous by the randomised probability-integral transform
  ``u = (#{samples < x} + U · (#{samples = x} + 1)) / (K + 1)``, ``U ~ U(0, 1)``, exactly uniform
  on [0, 1] under calibration for any ``K``; the score is the Kolmogorov–Smirnov distance of the
  ``u`` (over pairs and pixels, or projections) to U(0, 1), lower is better;
* ``"combined"`` (default): the best PSNR among the candidates whose 90 % coverage — the
  fraction of ``u`` in [0.05, 0.95], 0.90 when calibrated — lies within ``tolerance`` (0.05) of
  0.90; if none does, the best PSNR less 1 dB per 0.05 of coverage outside that band
  (:data:`COVERAGE_PENALTY_DB`), so that neither samples far too narrow nor diverged ones (whose
  spread covers the truth by accident) are chosen.

The search (:func:`search`) is a coarse grid over each hyper-parameter's range in turn (the
others held at their best so far), then a golden-section refinement of each around its best
grid point, within ``budget`` solves. Every candidate solves all ``N × K`` rows in one batch with
the same pairs and the same seed (common random numbers), so candidates differ only by their
values. A ``trace`` file makes the search resumable: a re-run with the same settings reuses the
solves it holds and replays the same path.

:meth:`Calibration.write_preset` writes the chosen values as a preset YAML that
:func:`invprob.registry.get_solver` and ``invprob solve solver=<name>`` use as is (by default
in the user's preset folder, :func:`invprob.registry.user_config_dir`).
"""

from __future__ import annotations

import datetime
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor

from . import registry
from .errors import InputError
from .noise import NoiseModel
from .priors.base import Prior
from .problem import Problem
from .solvers.base import Solver, Tunable

__all__ = ["calibrate", "Calibration", "Candidate", "search", "score", "pit", "image_crops", "CRITERIA",
           "COVERAGE_PENALTY_DB"]

CRITERIA = ("combined", "psnr", "calibration")
#: dB taken off a candidate's PSNR per unit of 90 % coverage outside the band, when no candidate is in it
COVERAGE_PENALTY_DB = 20.0
GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0  # 0.618...


@dataclass
class Candidate:
    """One evaluated setting: its values and what the simulated pairs say of it.

    Attributes:
        params: the hyper-parameter values tried.
        psnr: mean over the pairs of the PSNR (dB) of the posterior mean to the truth.
        coverage: fraction of PIT values ``u`` in [0.05, 0.95] (0.90 when calibrated).
        ks: Kolmogorov–Smirnov distance of the ``u`` to U(0, 1) (0 when calibrated).
        histogram: the ``u`` in 10 equal bins, as fractions (0.1 each when calibrated).
        nfe: denoiser evaluations per sample; network_images: images through the network
            (``nfe`` × rows of the batch); seconds: wall time of the solve.
        error: why the solve failed (refused at ``init``, diverged), else ``None``.
    """

    params: dict[str, float]
    psnr: float = float("nan")
    coverage: float = float("nan")
    ks: float = float("nan")
    histogram: list[float] = field(default_factory=list)
    nfe: int = 0
    network_images: int = 0
    seconds: float = 0.0
    error: str | None = None


def score(candidate: Candidate, criterion: str = "combined", tolerance: float = 0.05) -> tuple[float, float]:
    """The candidate's rank key under ``criterion`` (higher is better; a failed solve is worst)."""
    if candidate.error is not None or not math.isfinite(candidate.psnr):
        return (-math.inf, -math.inf)
    if criterion == "psnr":
        return (0.0, candidate.psnr)
    if criterion == "calibration":
        return (0.0, -candidate.ks)
    outside = abs(candidate.coverage - 0.9) - tolerance
    return (1.0, candidate.psnr) if outside <= 1e-12 else (0.0, candidate.psnr - COVERAGE_PENALTY_DB * outside)


def pit(samples: Tensor, truth: Tensor, projections: int | None = None,
        generator: torch.Generator | None = None) -> Tensor:
    """Randomised probability-integral transform of ``truth`` among ``samples``.

    Args:
        samples: ``(N, K, *x_shape)``, ``K`` samples for each of ``N`` pairs.
        truth: ``(N, *x_shape)``.
        projections: ``None`` for every pixel, else that many random unit directions (the same
            for all pairs).
        generator: draws the directions and the tie-breaking uniforms.

    Returns:
        ``u`` ``(N, P)`` in [0, 1] (``P`` pixels or projections), uniform when the samples and the
        truth are exchangeable.
    """
    s, t = samples.flatten(2).to(torch.float64), truth.flatten(1).to(torch.float64)
    if projections is not None:
        directions = torch.randn(t.shape[1], projections, generator=generator, dtype=torch.float64)
        directions = directions / directions.norm(dim=0, keepdim=True)
        s, t = s @ directions.to(s.device), t @ directions.to(t.device)
    below = (s < t[:, None]).sum(1).to(torch.float64)
    equal = (s == t[:, None]).sum(1).to(torch.float64)
    uniform = torch.rand(t.shape, generator=generator, dtype=torch.float64).to(t.device)
    return (below + uniform * (equal + 1.0)) / (s.shape[1] + 1.0)


def _uniformity(u: Tensor) -> tuple[float, float, list[float]]:
    """``(coverage 90 %, KS distance to U(0, 1), 10-bin histogram)`` of PIT values ``u``."""
    u = u.flatten().sort().values.cpu()
    n = u.numel()
    i = torch.arange(1, n + 1, dtype=torch.float64)
    ks = float(torch.maximum(i / n - u, u - (i - 1) / n).max())
    coverage = float(((u >= 0.05) & (u <= 0.95)).to(torch.float64).mean())
    histogram = (torch.histc(u, bins=10, min=0.0, max=1.0) / n).tolist()
    return coverage, ks, histogram


def _psnr(mean: Tensor, truth: Tensor, data_range: tuple[float, float] | None) -> float:
    """Mean over pairs of the PSNR (dB) of ``mean`` to ``truth``; the peak is the data range's
    width (2 for an unbounded prior) and a bounded mean is clipped to the range first."""
    if data_range is not None:
        mean = mean.clamp(*data_range)
    peak = 2.0 if data_range is None else data_range[1] - data_range[0]
    mse = (mean - truth).flatten(1).pow(2).mean(1).to(torch.float64).clamp_min(1e-30)
    return float((10 * torch.log10(peak**2 / mse)).mean())


def _rounded(value: float) -> float:
    return float(f"{value:.6g}")


def search(tunables: list[tuple[str, Tunable, float, float, float]], evaluate: Callable[[dict[str, float]], Candidate],
           key: Callable[[Candidate], tuple[float, float]], budget: int, grid: int = 5,
           progress: Callable[[], None] | None = None) -> tuple[dict[str, float], list[Candidate]]:
    """Coarse grid then golden-section search, one hyper-parameter at a time.

    Args:
        tunables: ``(name, Tunable, low, high, start)`` for each hyper-parameter, in the order
            they are searched; ``start`` is the value others are held at before its own turn.
        evaluate: solves with the given values and returns the :class:`Candidate`.
        key: the rank of a candidate (higher is better).
        budget: how many distinct settings may be evaluated in all.
        grid: points of each coarse grid (the preset's value itself is always evaluated first).

    Returns:
        The best values and every candidate evaluated, in order.
    """
    best = {name: _rounded(start) for name, *_, start in tunables}
    seen: dict[tuple, Candidate] = {}
    order: list[Candidate] = []

    def value_of(params: dict[str, float]) -> tuple[float, float] | None:
        k = tuple(sorted(params.items()))
        if k not in seen:
            if len(seen) >= budget:
                return None
            seen[k] = candidate = evaluate(dict(params))
            order.append(candidate)
            if progress is not None:
                progress()
        return key(seen[k])

    def at(name: str, tunable: Tunable, low: float, high: float, u: float) -> dict[str, float]:
        return {**best, name: _rounded(tunable.value(min(max(u, 0.0), 1.0), low, high))}

    def best_seen() -> dict[str, float]:
        return dict(max(seen.values(), key=key).params)

    value_of(best)  # the preset itself
    positions = [i / (grid - 1) for i in range(grid)] if grid > 1 else [0.5]
    for name, tunable, low, high, _ in tunables:  # coarse grids, one hyper-parameter at a time
        for u in positions:
            value_of(at(name, tunable, low, high, u))
        best = best_seen()
    for name, tunable, low, high, _ in tunables:  # golden-section refinement around the best
        centre = tunable.position(best[name], low, high)
        half = 1.0 / (grid - 1) if grid > 1 else 0.5
        a, b = max(centre - half, 0.0), min(centre + half, 1.0)
        c, d = b - GOLDEN * (b - a), a + GOLDEN * (b - a)
        while b - a > 1e-3:
            fc, fd = value_of(at(name, tunable, low, high, c)), value_of(at(name, tunable, low, high, d))
            if fc is None or fd is None:
                break
            if fc >= fd:
                b, d = d, c
                c = b - GOLDEN * (b - a)
            else:
                a, c = c, d
                d = a + GOLDEN * (b - a)
        best = best_seen()
    return best, order


@dataclass
class Calibration:
    """What :func:`calibrate` found.

    Attributes:
        solver: the base preset's name; overrides: keyword arguments applied to it.
        best: the chosen values of the searched hyper-parameters.
        start: their values in the base preset (the centres of the ranges).
        ranges: ``name -> (low, high, scale)`` searched.
        candidates: every setting evaluated, in order.
        criterion, tolerance, num_pairs, num_samples, seed: the settings of the search.
        problem: a description of the operator, noise and prior (for the preset's record).
        seconds: wall time of the whole calibration.
    """

    solver: str
    overrides: dict[str, Any]
    best: dict[str, float]
    start: dict[str, float]
    ranges: dict[str, tuple[float, float, str]]
    candidates: list[Candidate]
    criterion: str
    tolerance: float
    num_pairs: int
    num_samples: int
    seed: int
    problem: dict[str, Any]
    seconds: float

    @property
    def chosen(self) -> Candidate:
        """The candidate of the chosen values."""
        return next(c for c in self.candidates if c.params == self.best)

    @property
    def network_images(self) -> int:
        """Images through the network over the whole calibration (its cost)."""
        return sum(c.network_images for c in self.candidates)

    def build(self) -> Solver:
        """The solver at the chosen values."""
        return registry.build("solvers", self.solver, {**self.overrides, **self.best})

    def preset(self) -> dict[str, Any]:
        """The preset's content: the base preset with the overrides and the chosen values, and a
        ``_calibration`` record (ignored when building: keys starting with ``_``)."""
        config = {k: v for k, v in registry.load_preset("solvers", self.solver).items() if k != "_calibration"}
        config.update(self.overrides)
        config.update(self.best)
        chosen = self.chosen
        config["_calibration"] = {
            "base": self.solver, "criterion": self.criterion, "tolerance": self.tolerance,
            "num_pairs": self.num_pairs, "num_samples": self.num_samples, "seed": self.seed, **self.problem,
            "start": self.start, "chosen": {"psnr": round(chosen.psnr, 3), "coverage": round(chosen.coverage, 4),
                                            "ks": round(chosen.ks, 4)},
            "cost": {"solves": len(self.candidates), "network_images": self.network_images,
                     "seconds": round(self.seconds, 1)},
            "date": datetime.date.today().isoformat(),
            "trace": [{"params": c.params, "psnr": round(c.psnr, 3), "coverage": round(c.coverage, 4),
                       "ks": round(c.ks, 4), **({"error": c.error} if c.error else {})} for c in self.candidates]}
        return config

    def write_preset(self, tag: str | None = None, path: str | Path | None = None) -> Path:
        """Write the preset YAML to ``path``, or to ``solvers/<solver>-calibrated-<tag>.yaml`` in
        the user's preset folder (:func:`invprob.registry.user_config_dir`); returns its path."""
        import yaml

        if path is None:
            if not tag or not registry.NAME.fullmatch(str(tag)):
                raise InputError(f"`tag` must be a name of letters, digits and _ . + - (it names the preset), got {tag!r}.")
            path = registry.user_config_dir() / "solvers" / f"{self.solver}-calibrated-{tag}.yaml"
        path = Path(path)
        if path.stem in registry.presets("solvers") and not path.is_file():
            raise InputError(f"a preset named {path.stem!r} exists already; choose another `tag`.")
        path.parent.mkdir(parents=True, exist_ok=True)
        c = self.chosen
        header = (f"# {path.stem}: `{self.solver}` calibrated by `invprob calibrate` on {self.num_pairs} pairs simulated for\n"
                  f"# {self.problem.get('operator')} / {self.problem.get('prior')} (criterion {self.criterion}; not a paper "
                  f"setting).\n# Chosen {', '.join(f'{k}={v:g}' for k, v in self.best.items())}: PSNR {c.psnr:.2f} dB, "
                  f"90 % coverage {c.coverage:.3f} on the simulated pairs; the search is under _calibration.\n")
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(header + yaml.safe_dump(self.preset(), sort_keys=False, allow_unicode=True))
        tmp.replace(path)
        return path

    def plot(self, path: str | Path) -> Path:
        """Criterion against each hyper-parameter (PSNR and 90 % coverage of every candidate that
        differs from the chosen values in that one only), saved to ``path``."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = list(self.ranges)
        fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.2), squeeze=False)
        for ax, name in zip(axes[0], names):
            others = {k: v for k, v in self.best.items() if k != name}
            rows = sorted((c.params[name], c) for c in self.candidates
                          if c.error is None and all(c.params.get(k) == v for k, v in others.items()))
            xs = [v for v, _ in rows]
            ax.plot(xs, [c.psnr for _, c in rows], "o-", color="C0", label="PSNR of the mean")
            ax.set_xlabel(name)
            ax.set_ylabel("PSNR (dB)", color="C0")
            if self.ranges[name][2] == "log":
                ax.set_xscale("log")
            twin = ax.twinx()
            twin.plot(xs, [c.coverage for _, c in rows], "s--", color="C1", label="90 % coverage")
            twin.axhspan(0.9 - self.tolerance, 0.9 + self.tolerance, color="C1", alpha=0.12)
            twin.set_ylabel("90 % coverage", color="C1")
            ax.axvline(self.best[name], color="k", lw=0.8, ls=":")
            ax.axvline(self.start[name], color="0.6", lw=0.8)
        fig.suptitle(f"{self.solver}: {self.criterion} (dotted: chosen; grey: preset)", fontsize=9)
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


def image_crops(source: str | Path | Tensor, x_shape: tuple[int, ...], n: int, seed: int = 0,
                data_range: tuple[float, float] | None = (-1.0, 1.0)) -> Tensor:
    """``n`` representative clean images ``(n, *x_shape)`` for :func:`calibrate`: random crops of
    ``x_shape`` from a folder of images (mapped from [0, 255] to ``data_range``; one crop per image
    in name order, cycling when ``n`` exceeds the images) or the first ``n`` of a tensor / ``.npy``
    stack already in the prior's data range (cropped when larger)."""
    from .io import load_image

    if len(x_shape) != 3:
        raise InputError(f"image crops need an image shape (C, H, W), got {tuple(x_shape)}; pass `truths=` instead.")
    g = torch.Generator().manual_seed(int(seed))
    if isinstance(source, Tensor):
        images = list(source)
    else:
        source = Path(source)
        if source.is_dir():
            from .datasets import IMAGE_SUFFIXES

            files = sorted(f for f in source.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise InputError(f"`input` folder {source} holds no images; give a folder of clean images or a .npy.")
            images = [load_image(files[i % len(files)], gray=x_shape[0] == 1, data_range=data_range or (-1.0, 1.0))[0]
                      for i in range(n)]
        elif source.suffix == ".npy" and source.is_file():
            from .operators.readers import read_array

            images = list(read_array(source, "input"))
        else:
            raise InputError(f"`input` {source} is neither a folder of images nor a .npy file.")
    if len(images) < n:
        raise InputError(f"`input` holds {len(images)} images but `num_pairs` is {n}; lower num_pairs or give more images.")
    out = []
    for image in images[:n]:
        if image.shape[0] != x_shape[0] or image.shape[-2] < x_shape[-2] or image.shape[-1] < x_shape[-1]:
            raise InputError(f"`input` image of shape {tuple(image.shape)} cannot give a crop of {tuple(x_shape)}.")
        top = int(torch.randint(image.shape[-2] - x_shape[-2] + 1, (1,), generator=g))
        left = int(torch.randint(image.shape[-1] - x_shape[-1] + 1, (1,), generator=g))
        out.append(image[..., top:top + x_shape[-2], left:left + x_shape[-1]])
    return torch.stack(out)


def _truths(prior: Prior, x_shape: tuple[int, ...] | None, n: int, seed: int) -> Tensor:
    """``n`` ground truths drawn from the prior: exactly for an analytic prior (``prior.sample``),
    else by the EDM probability-flow ODE (:func:`invprob.training.sample_unconditional`); a latent
    prior's latents are decoded into images."""
    if hasattr(prior, "sample"):
        return prior.sample(n, torch.Generator(prior.device).manual_seed(int(seed)))
    from .training import sample_unconditional

    latent = hasattr(prior, "image_shape")  # a LatentPrior: its x_shape is the latents'
    if (prior.x_shape or (None if latent else x_shape)) is None:
        raise InputError("the prior accepts any image size and the operator fixes none; build the operator with "
                         "`x_shape=(C, H, W)` or give representative images (`truths=` / `input=`).")
    x = sample_unconditional(prior, n, seed=seed, x_shape=prior.x_shape or x_shape, device=prior.device).to(prior.device)
    if latent:
        with torch.no_grad():
            x = prior.decode(x)
    return x


def _setup(**settings: Any) -> dict[str, Any]:
    return json.loads(json.dumps(settings, default=str))


def calibrate(solver: str, operator: torch.nn.Module, noise: NoiseModel, prior: Prior, *,
              overrides: dict[str, Any] | None = None, truths: Tensor | None = None, num_pairs: int = 16,
              num_samples: int = 16, criterion: str = "combined", tolerance: float = 0.05,
              tunables: list[str] | None = None, budget: int | None = None, grid: int = 5,
              projections: int | None = None, seed: int = 0, trace: str | Path | None = None,
              describe: dict[str, Any] | None = None, progress: bool = True) -> Calibration:
    """Choose ``solver``'s hyper-parameters for this operator, noise and prior from simulated pairs.

    Args:
        solver: a solver preset name (``"dps"``, ``"daps"``, …; ``invprob list``).
        operator, noise, prior: the problem to calibrate for (``y = A(x) + n``, ``x ~ prior``).
        overrides: keyword arguments applied to the preset before the search (e.g. ``num_steps``);
            a tunable given here is held fixed.
        truths: ``(N, *x_shape)`` clean images to simulate from (e.g. :func:`image_crops` of a
            user's folder); ``None`` draws ``num_pairs`` from the prior.
        num_pairs, num_samples: ``N`` pairs, ``K`` samples per pair (all ``N × K`` in one solve).
        criterion: ``"combined"`` (default), ``"psnr"`` or ``"calibration"`` (module docstring).
        tolerance: the coverage band of ``"combined"``: ``|coverage − 0.90| ≤ tolerance``.
        tunables: which declared hyper-parameters to search (default: all the solver declares
            whose preset value is set).
        budget: the most settings evaluated, i.e. solves (default: ``grid + 4`` per hyper-parameter).
        grid: points of each coarse grid.
        projections: PIT along that many random directions instead of per pixel.
        seed: draws the pairs, the solver's streams and the PIT's uniforms.
        trace: a JSON file that records every solve; a re-run with the same settings resumes from it.
        describe: what to record of the problem in the preset (operator, prior, noise names).
        progress: show a progress bar.

    Returns:
        A :class:`Calibration` (write the preset with :meth:`Calibration.write_preset`).

    Cost: ``budget`` solves of ``N × K`` rows (population solvers: ``N ×`` their population),
    each at the preset's NFE; :attr:`Calibration.network_images` and ``seconds`` report it.
    """
    from tqdm.auto import tqdm

    clock = time.perf_counter()
    if criterion not in CRITERIA:
        raise InputError(f"`criterion` must be one of {', '.join(CRITERIA)}, got {criterion!r}.")
    for name, value in (("num_pairs", num_pairs), ("num_samples", num_samples), ("grid", grid)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"`{name}` must be a positive integer, got {value!r}.")
    if num_samples < 2:
        raise InputError(f"`num_samples` must be >= 2 (ranks and coverage need several samples), got {num_samples}.")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
        raise InputError(f"`budget` must be a positive integer (solves) or None, got {budget!r}.")
    if not 0 < tolerance < 0.9:
        raise InputError(f"`tolerance` must be in (0, 0.9), got {tolerance!r}.")
    overrides = dict(overrides or {})
    if solver not in registry.presets("solvers"):
        raise InputError(f"`solver` {solver!r} is not a YAML preset (calibrate writes a preset from one); "
                         f"available: {', '.join(registry.presets('solvers'))}.")
    base = registry.build("solvers", solver, overrides)
    base.rows_per_measurement(num_samples)  # a population smaller than K: one clear error now
    declared = type(base).tunables
    if not declared:
        raise InputError(f"solver {solver!r} ({type(base).__name__}) declares no tunable hyper-parameter; "
                         f"nothing to calibrate.")
    names = list(declared) if tunables is None else list(tunables)
    unknown = [n for n in names if n not in declared]
    if unknown:
        raise InputError(f"`tunables` {unknown} are not declared by {type(base).__name__}; it declares {list(declared)}.")
    if tunables is not None:
        unset = [n for n in names if n in overrides or getattr(base, n, None) is None]
        if unset:
            raise InputError(f"`tunables` {unset} cannot be searched: fixed by `overrides` or unset (None) in "
                             f"preset {solver!r}; drop them or give the preset a value.")
    names = [n for n in names if n not in overrides and getattr(base, n, None) is not None]
    if not names:
        raise InputError(f"every tunable of {solver!r} is fixed (by `overrides`) or unset; nothing to calibrate.")
    space = []
    for n in names:
        centre = float(getattr(base, n))
        try:
            low, high = declared[n].range(centre)
        except ValueError as err:
            raise InputError(f"`{n}` = {centre!r} in preset {solver!r}: {err}") from None
        space.append((n, declared[n], low, high, centre))
    budget = budget or (grid + 4) * len(space)

    x_shape = getattr(prior, "image_shape", None) or prior.x_shape or operator.x_shape
    if truths is None:
        truths = _truths(prior, x_shape, num_pairs, seed)
    elif truths.shape[0] < num_pairs:
        raise InputError(f"`truths` holds {truths.shape[0]} images but `num_pairs` is {num_pairs}.")
    truths = truths[:num_pairs].to(device=prior.device, dtype=prior.dtype)
    problem = Problem.simulate(operator, truths, noise, generator=torch.Generator(prior.device).manual_seed(int(seed)))
    # what the solver cannot handle at any setting (capabilities, shapes, dtypes): one error now, not a
    # failed search; the checks of a setting (e.g. DAPS's step stability) are left to the candidates
    from .solvers.latent import LatentSolver

    Solver.check(base, base._latent(problem, prior) if isinstance(base, LatentSolver) else problem, prior)

    setup = _setup(solver=solver, preset=registry.load_preset("solvers", solver), overrides=overrides,
                   problem=describe, num_pairs=num_pairs, num_samples=num_samples, seed=seed, projections=projections,
                   dtype=str(prior.dtype), device=str(prior.device), truths=f"{float(truths.double().sum()):.6g}",
                   measurement=f"{float(problem.measurement.abs().double().sum()):.6g}")
    trace_path = None if trace is None else Path(trace)
    cache: dict[str, dict] = {}
    if trace_path is not None and trace_path.is_file():
        try:
            saved = json.loads(trace_path.read_text())
        except ValueError:
            saved = {}
        if saved.get("setup") == setup:
            cache = {json.dumps(c["params"], sort_keys=True): c for c in saved.get("candidates", [])}

    def record(candidates: list[Candidate]) -> None:
        if trace_path is None:
            return
        trace_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = trace_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"setup": setup, "candidates": [asdict(c) for c in candidates]}, indent=1))
        tmp.replace(trace_path)

    done: list[Candidate] = []

    def evaluate(params: dict[str, float]) -> Candidate:
        k = json.dumps(params, sort_keys=True)
        if k in cache:
            candidate = Candidate(**cache[k])
        else:
            candidate = _evaluate(solver, {**overrides, **params}, problem, prior, truths, num_samples, seed,
                                  projections, params)
        done.append(candidate)
        record(done)
        return candidate

    bar = tqdm(total=budget, desc=f"calibrate {solver}", disable=not progress)
    best, candidates = search(space, evaluate, lambda c: score(c, criterion, tolerance), budget, grid,
                              progress=lambda: bar.update(1))
    bar.close()
    result = Calibration(solver=solver, overrides=overrides, best=best, start={n: _rounded(c) for n, *_, c in space},
                         ranges={n: (low, high, t.scale) for n, t, low, high, _ in space}, candidates=candidates,
                         criterion=criterion, tolerance=tolerance, num_pairs=num_pairs, num_samples=num_samples,
                         seed=seed, problem=dict(describe or {}), seconds=time.perf_counter() - clock)
    if result.chosen.error is not None:
        raise InputError(f"every setting of {solver!r} tried failed; the preset's: {candidates[0].error}")
    return result


def _evaluate(solver: str, config: dict[str, Any], problem: Problem, prior: Prior, truths: Tensor, num_samples: int,
              seed: int, projections: int | None, params: dict[str, float]) -> Candidate:
    """Solve the simulated pairs with one setting and score the samples."""
    from .errors import UnsupportedProblemError

    clock = time.perf_counter()
    try:
        built = registry.build("solvers", solver, config)
        result = built.solve(problem, prior, num_samples=num_samples, generator=seed, progress=False)
    except (UnsupportedProblemError, FloatingPointError, ValueError) as err:
        return Candidate(params=params, error=" ".join(str(err).split()), seconds=time.perf_counter() - clock)
    samples = result.samples.to(torch.float64)
    rows = result.state.x.shape[0]
    if not bool(torch.isfinite(samples).all()):
        return Candidate(params=params, error="non-finite samples", seconds=time.perf_counter() - clock)
    u = pit(samples, truths, projections, torch.Generator().manual_seed(int(seed) + 1))
    coverage, ks, histogram = _uniformity(u)
    data_range = prior.image_range if hasattr(prior, "image_shape") else prior.data_range
    return Candidate(params=params, psnr=_psnr(samples.mean(1), truths.to(torch.float64), data_range),
                     coverage=coverage, ks=ks, histogram=histogram, nfe=result.nfe, network_images=result.nfe * rows,
                     seconds=time.perf_counter() - clock)
