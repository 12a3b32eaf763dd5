"""Tempered SMC with diffusion-prior Langevin moves (Del Moral, Doucet & Jasra 2006; PnP-ULA moves)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .. import streams
from ..checks import check_int
from ..sampling import euler_ode, karras_sigmas
from .base import PopulationSolver, SolveContext, State, Tunable

__all__ = ["TemperedSMC", "normalized_weights", "effective_sample_size", "systematic_resample", "next_temperature",
           "resample_population"]


def normalized_weights(log_w: Tensor, dim: int = -1) -> Tensor:
    """Self-normalised importance weights ``w_i = exp(log w_i − log Σ_j exp(log w_j))``.

    Args:
        log_w: unnormalised log weights, any shape; groups of particles along ``dim``.
        dim: the particle dimension.

    Returns:
        Weights of ``log_w``'s shape, summing to 1 along ``dim``.
    """
    return (log_w - log_w.logsumexp(dim, keepdim=True)).exp()


def effective_sample_size(log_w: Tensor, dim: int = -1) -> Tensor:
    """Effective sample size ``1 / Σ_i w_i²`` of self-normalised importance weights (Kong, Liu &
    Wong 1994): ``N`` for equal weights, 1 when one particle holds all the weight.

    Computed as ``1 / Σ_i exp(2 (log w_i − log Σ_j exp(log w_j)))``, stable for any scale of
    ``log_w``.

    Args:
        log_w: unnormalised log weights, any shape; groups of particles along ``dim``.
        dim: the particle dimension.

    Returns:
        One ESS per group: ``log_w``'s shape without ``dim``.
    """
    return (2 * (log_w - log_w.logsumexp(dim, keepdim=True))).exp().sum(dim).reciprocal()


def systematic_resample(weights: Tensor, uniforms: Tensor) -> Tensor:
    """Systematic resampling (Kitagawa 1996): ancestors for ``N`` equally weighted offspring.

    One uniform ``u`` per group places ``N`` evenly spaced points ``(u + k) / N``, ``k < N``, on
    the cumulative weights; offspring ``k`` descends from the particle whose cumulative-weight
    interval holds point ``k``. Particle ``i`` gets ``⌊N w_i⌋`` or ``⌈N w_i⌉`` offspring, with less
    variance than multinomial resampling. Deterministic given ``uniforms``.

    Args:
        weights: normalised weights ``(..., N)`` (:func:`normalized_weights`), summing to 1
            along the last dimension.
        uniforms: ``(..., 1)`` in ``[0, 1)``, one per group, of ``weights``' dtype.

    Returns:
        Ancestor indices ``(..., N)`` (int64), in increasing order within each group.
    """
    N = weights.shape[-1]
    positions = (uniforms + torch.arange(N, dtype=weights.dtype, device=weights.device)) / N
    return torch.searchsorted(weights.cumsum(-1), positions).clamp_max(N - 1)


def next_temperature(log_likelihood: Tensor, beta: float, ess_fraction: float, iterations: int = 60) -> float:
    """Adaptive tempering: how far β may rise while the importance weights stay usable.

    For particles equally weighted at ``p(x) p(y | x)^β``, the incremental weights of the next
    exponent ``β'`` are ``p(y | x)^(β' − β)``. Returns ``β' = 1`` if their
    :func:`effective_sample_size` there is at least ``ess_fraction · N``; otherwise the ``β'`` in
    ``[β, 1)`` where it falls to ``ess_fraction · N``, found by ``iterations`` bisection steps
    (the lower end of the last bracket, so the target is kept). Adaptive tempering as in Jasra,
    Stephens, Doucet & Tsagaris (2011).

    Args:
        log_likelihood: ``log p(y | x)`` of the ``N`` particles ``(N,)``.
        beta: the current exponent, in ``[0, 1)``.
        ess_fraction: the ESS to keep, as a fraction of ``N``, in ``(0, 1]``.
        iterations: bisection steps (60 shrink the bracket below float64 resolution).

    Returns:
        The next exponent ``β'``, in ``[β, 1]``.
    """
    target = ess_fraction * len(log_likelihood)
    lo, hi = beta, 1.0
    if effective_sample_size((hi - beta) * log_likelihood).item() < target:
        for _ in range(iterations):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if effective_sample_size((mid - beta) * log_likelihood).item() >= target else (lo, mid)
        hi = lo
    return hi


def resample_population(seeds: Tensor, log_w: Tensor, num_measurements: int, num_particles: int, step: int,
                        ess_fraction: float, force: bool = False) -> tuple[Tensor | None, Tensor]:
    """Systematic resampling, per measurement, of the populations whose ESS is low.

    The ``M × N`` rows hold ``N`` particles per measurement; a measurement is resampled when its
    :func:`effective_sample_size` is below ``ess_fraction · N`` (every one if ``force``), its
    offspring shuffled so that any ``K`` first rows are a random subset, its log weights reset
    to 0. The uniforms come from the rows' own streams (:mod:`invprob.streams`, streams 2 and 3
    of ``step``): the result depends on the seeds and the population, not on the batch.

    Args:
        seeds: per-row seeds ``(M·N,)``.
        log_w: log importance weights ``(M·N,)``.
        num_measurements, num_particles: ``M`` and ``N``.
        step: the step the draws belong to.
        ess_fraction: the ESS threshold, as a fraction of ``N``.
        force: resample every measurement.

    Returns:
        ``(rows, log_w)``: the ancestor row of every row ``(M·N,)`` (``None`` when nothing was
        resampled) and the new log weights.
    """
    M, N = num_measurements, num_particles
    lw = log_w.reshape(M, N)
    ess = effective_sample_size(lw, dim=1)
    redo = torch.ones_like(ess, dtype=torch.bool) if force else ess < ess_fraction * N
    if not bool(redo.any()):
        return None, log_w
    # one uniform per measurement, from the stream of its first particle (batch-independent)
    u = torch.special.ndtr(streams.randn(seeds[::N], step, (1,), stream=2, dtype=lw.dtype, device=lw.device))
    idx = systematic_resample(normalized_weights(lw, dim=1), u)  # (M, N)
    # systematic resampling returns ancestors in order: shuffle, so that the first
    # num_samples particles (the returned ones) are a random subset of the population
    shuffle = streams.randn(seeds, step, (1,), stream=3, dtype=lw.dtype, device=lw.device).reshape(M, N)
    idx = idx.gather(1, shuffle.argsort(1))
    idx = torch.where(redo[:, None], idx, torch.arange(N, device=idx.device).expand(M, N))
    rows = (idx + N * torch.arange(M, device=idx.device)[:, None]).flatten()
    return rows, torch.where(redo[:, None], torch.zeros_like(lw), lw).flatten()


@dataclass(kw_only=True)
class TemperedSMCState(State):
    """``x`` holds ``num_particles`` particles per measurement (the first ``num_samples`` are
    returned); ``log_w`` their log importance weights ``(B,)``, reset to 0 at each resampling."""

    log_w: Tensor
    num_particles: int


class TemperedSMC(PopulationSolver):
    r"""Sequential Monte Carlo over tempered posteriors ``p(x) p(y | x)^β``, β: β_min → 1.

    For multimodal posteriors (phase retrieval) where one Langevin or annealing chain per sample
    stays in the basin it first falls into: a population of particles carries the mode weights
    in its importance weights, so modes get the right share without moves between them.

    1. ``num_particles`` prior samples per measurement: ``prior_steps`` Euler steps of the
       probability-flow ODE from ``sigma_max`` (EDM poly-7 grid to ``sigma_min``, then 0);
    2. for each of ``num_steps`` stages with β on a geometric grid from ``beta_min`` to 1:
       reweight ``log w += (β_i − β_{i−1}) log p(y | x)`` (the noise model's likelihood); where a
       measurement's effective sample size falls below ``ess_fraction · N``, resample its
       particles (systematic resampling, Kitagawa 1996); then move every particle by
       ``langevin_steps`` unadjusted Langevin steps on the tempered posterior,
       ``x ← x + η (s_θ(x, σ_s) + β ∇ log p(y | x)) + √(2η) ε``, with the prior score
       ``s_θ(x, σ_s) = (D(x, σ_s) − x) / σ_s²`` of the diffusion model at the small noise
       level ``score_sigma`` (PnP-ULA, Laumont et al. 2022);
    3. a final resampling, so the returned particles are equally weighted.

    Not a paper's diffusion solver: it is the textbook tempered SMC sampler with the diffusion
    prior's score in its moves; its defaults were chosen on the GMM phase-retrieval test bed
    (oversampling 4; see ``solvers/tempered-smc.yaml``) — preset ``tempered-smc``. The Langevin
    step is not Metropolis-corrected (the diffusion prior has no tractable density), so
    ``step_size`` trades bias for mixing: it must be below ~1/L for the posterior's curvature L
    (σ_y⁻² ‖A‖² for Gaussian noise).
    Particles interact through resampling (per measurement only), so a sample depends on its
    population: the same seed and ``num_particles`` give the same samples. Cost: NFE per sample
    ``prior_steps + num_steps · langevin_steps``, on ``num_particles`` rows per measurement —
    meant for small images and low-dimensional physics, where mode weights matter.

    Measured on GMM phase retrieval against an exact-density reference sampler's mode weights:
    ``benchmarks/results/phase_retrieval_gmm_seed7_os4_reference_smc.json`` (and the ``os2``,
    ``os8`` and ``unit_range`` files beside it); against exact linear-Gaussian posteriors:
    ``benchmarks/results/posterior_gmm_seed7.md``.

    Args:
        num_steps: tempering stages (100).
        langevin_steps: Langevin steps per stage (50).
        step_size: Langevin step η (1e-3).
        score_sigma: noise level σ_s of the prior score (0.01).
        num_particles: particles per measurement (1000); must be ≥ ``num_samples``.
        ess_fraction: resample when ESS < ``ess_fraction`` · N (0.5, the usual choice).
        beta_min: first tempering exponent (1e-4).
        prior_steps, sigma_max, sigma_min, rho: the prior sampler's ODE (100, 80, 0.002, 7;
            EDM's grid, Karras et al. 2022).

    References:
        | Sequential Monte Carlo samplers (Del Moral, Doucet & Jasra, JRSS-B 2006)
        | Bayesian imaging using Plug & Play priors (Laumont et al., SIAM J. Imaging Sci. 2022)
    """

    requires = ("differentiable",)
    tunables = {"step_size": Tunable(factor=10.0)}
    population_arg = "num_particles"

    def __init__(self, num_steps: int = 100, langevin_steps: int = 50, step_size: float = 1e-3,
                 score_sigma: float = 0.01, num_particles: int = 1000, ess_fraction: float = 0.5,
                 beta_min: float = 1e-4, prior_steps: int = 100, sigma_max: float = 80.0,
                 sigma_min: float = 0.002, rho: float = 7.0) -> None:
        for name, value, low in (("num_steps", num_steps, 1), ("langevin_steps", langevin_steps, 0),
                                 ("prior_steps", prior_steps, 1), ("num_particles", num_particles, 2)):
            if int(value) < low:
                raise ValueError(f"`{name}` must be >= {low}, got {value}.")
        for name, value in (("step_size", step_size), ("score_sigma", score_sigma)):
            if not value > 0:
                raise ValueError(f"`{name}` must be > 0, got {value}.")
        if not 0 < ess_fraction <= 1:
            raise ValueError(f"`ess_fraction` must be in (0, 1], got {ess_fraction}.")
        if not 0 < beta_min <= 1:
            raise ValueError(f"`beta_min` must be in (0, 1], got {beta_min}.")
        self.num_steps, self.langevin_steps = check_int(num_steps, "num_steps", 1), check_int(langevin_steps, "langevin_steps", 0)
        self.prior_steps = check_int(prior_steps, "prior_steps", 1)
        self.step_size, self.score_sigma, self.num_particles = float(step_size), float(score_sigma), check_int(num_particles, "num_particles", 2)
        self.ess_fraction, self.beta_min = float(ess_fraction), float(beta_min)
        self.sigma_max, self.sigma_min, self.rho = sigma_max, sigma_min, rho
        n = self.num_steps
        self.betas = [beta_min ** (1 - k / (n - 1)) if n > 1 else 1.0 for k in range(n)]

    @property
    def nfe_per_sample(self) -> int:
        return self.prior_steps + self.num_steps * self.langevin_steps

    def population_size(self, num_samples: int) -> int:
        return self.num_particles

    def start(self, context: SolveContext) -> TemperedSMCState:
        zeros = context.zeros()
        state = context.new_state(TemperedSMCState, zeros, 0.0, log_w=zeros.new_zeros(len(zeros)),
                                  num_particles=context.rows_per_measurement)
        grid = karras_sigmas(self.prior_steps, self.sigma_min, self.sigma_max, self.rho, append_zero=True).tolist()
        with torch.no_grad():
            x = euler_ode(state.prior, self.sigma_max * self.randn(state, step=-1), grid)
        return state.replace(x=x, x0_hat=x)

    def _log_likelihood(self, state: State, x: Tensor) -> Tensor:
        return state.problem.noise.log_likelihood(state.measurement, state.problem.operator(x))

    def _resample(self, state: TemperedSMCState, x: Tensor, log_w: Tensor, i: int,
                  force: bool = False) -> tuple[Tensor, Tensor]:
        """Systematic resampling of the measurements whose ESS is low (all if ``force``)."""
        rows, log_w = resample_population(state.seeds, log_w, state.num_measurements, state.num_particles, i,
                                          self.ess_fraction, force)
        return (x if rows is None else x[rows]), log_w

    def step(self, state: TemperedSMCState, i: int) -> TemperedSMCState:
        beta, beta_prev = self.betas[i], (self.betas[i - 1] if i > 0 else 0.0)
        x = state.x
        with torch.no_grad():
            log_w = state.log_w + (beta - beta_prev) * self._log_likelihood(state, x)
        x, log_w = self._resample(state, x, log_w, i)
        eta, sigma_s = self.step_size, self.score_sigma
        B = x.shape[0]
        for j in range(self.langevin_steps):
            xg = x.detach().requires_grad_(True)
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(self._log_likelihood(state, xg).sum(), xg)
            with torch.no_grad():
                score = (state.prior.denoise(x, x.new_full((B,), sigma_s)) - x) / sigma_s**2
                noise = self.chain_noise(state, i, self.langevin_steps, j)
                x = x + eta * (score + beta * grad) + (2 * eta) ** 0.5 * noise
        if i == self.num_steps - 1:  # equally weighted output
            x, log_w = self._resample(state, x, log_w, self.num_steps, force=True)
        return state.replace(x=x.detach(), x0_hat=x.detach(), log_w=log_w)
