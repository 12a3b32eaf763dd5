"""EnKG — Ensemble Kalman diffusion guidance (Zheng et al., 2024): derivative-free."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..checks import check_int
from ..sampling import euler_ode, euler_step, karras_sigmas
from ..errors import UnsupportedProblemError
from .base import PopulationSolver, SolveContext, State, Tunable

__all__ = ["EnKG"]


@dataclass(kw_only=True)
class EnKGState(State):
    """EnKG state: ``x`` holds the whole ensemble, ``ensemble_size`` particles per measurement,
    of which the first ``num_samples`` are returned."""

    ensemble_size: int


class EnKG(PopulationSolver):
    r"""Ensemble Kalman guidance on the EDM Euler sampler — forward-model evaluations only.

    An ensemble of particles per measurement follows the EDM Euler ODE (σ from ``sigma_max``
    to ``sigma_min`` on the poly-ρ grid, then 0). Inside the guidance window each step first
    updates the particles ``num_updates`` times:

    .. math::
        \hat x_0^{(j)} = \mathrm{ODE}(x^{(j)}, \sigma_i \to 0),\quad
        C = \tfrac1N (A\hat x_0 - y)(A\hat x_0 - \overline{A\hat x_0})^\top,\quad
        x \leftarrow x - \frac{\gamma}{\lVert C\rVert_F}\, C\,(x - \bar x),

    a statistically linearised (ensemble) Gauss–Newton step, then takes the Euler step.
    The inner ODE uses ``min(1 + (num_steps − i)//4, 20)`` Euler steps down to 0.002, as in
    the official code. No gradient is ever taken: any operator, a :class:`BlackBox` included.

    Particles interact (the update uses ensemble statistics), so a sample depends on its
    ensemble: same seed and same ``ensemble_size`` give the same samples; measurements
    never interact. NFE per sample: ``num_steps`` Euler steps plus the inner ODE solves
    (see ``nfe_per_sample``); ``num_updates`` operator calls per guided step.

    An update moves each particle only within the span of the ensemble's deviations, so the
    ensemble size bounds how well the data can be fitted.

    Measured against the exact posterior of the GMM test bed (the released γ = 2 and the
    smaller γ of preset ``enkg-gmm-tuned``): ``benchmarks/results/posterior_gmm_seed7.md``.
    On Set12, by ensemble size and number of steps: ``benchmarks/results/restoration_set12.md``.

    Args:
        guidance_scale: γ (2.0; ``configs/algorithm/enkg.yaml`` of the official code).
        num_updates: ensemble updates per guided step (2; same file).
        num_steps: outer Euler steps (80; same file).
        sigma_max, sigma_min, rho: EDM grid (80, 0.002, 7; same file).
        threshold_start, threshold_end: guidance window, fractions of the steps skipped at
            the start and the end (0.05, 0.05; same file).
        ensemble_size: particles per measurement (2048 in the file); ``None`` uses
            ``num_samples`` particles. Must be ≥ ``num_samples``.
        lr_min_ratio: if > 0, γ decays linearly towards this ratio (0.0 = constant; same file).

    References:
        | Ensemble Kalman Diffusion Guidance: A Derivative-free Method for Inverse Problems
        | (Zheng, Chu, Wang, Berner, Yue, Song & Stuart, 2024) https://arxiv.org/abs/2409.20175
    """

    requires = ()
    tunables = {"guidance_scale": Tunable(factor=100.0)}
    population_arg = "ensemble_size"
    population_fix = "raise ensemble_size or pass ensemble_size=None"

    def __init__(self, guidance_scale: float = 2.0, num_updates: int = 2, num_steps: int = 80,
                 sigma_max: float = 80.0, sigma_min: float = 0.002, rho: float = 7.0,
                 threshold_start: float = 0.05, threshold_end: float = 0.05,
                 ensemble_size: int | None = 2048, lr_min_ratio: float = 0.0) -> None:
        if not guidance_scale >= 0:
            raise ValueError(f"`guidance_scale` must be >= 0, got {guidance_scale}.")
        if int(num_updates) < 0 or int(num_steps) < 1:
            raise ValueError(f"need `num_updates` >= 0 and `num_steps` >= 1, got {num_updates}, {num_steps}.")
        if ensemble_size is not None and ensemble_size < 2:
            raise ValueError(f"`ensemble_size` must be >= 2 (covariances need particles), got {ensemble_size}.")
        self.guidance_scale = float(guidance_scale)
        self.num_updates, self.num_steps = check_int(num_updates, "num_updates", 0), check_int(num_steps, "num_steps", 1)
        self.sigma_max, self.sigma_min, self.rho = sigma_max, sigma_min, rho
        self.threshold_start, self.threshold_end = threshold_start, threshold_end
        self.ensemble_size, self.lr_min_ratio = ensemble_size, lr_min_ratio
        self.sigmas = karras_sigmas(self.num_steps, sigma_min, sigma_max, rho, append_zero=True).tolist()

    def _guided(self, i: int) -> bool:
        return self.threshold_start * self.num_steps < i < self.num_steps - int(self.threshold_end * self.num_steps)

    def _ode_steps(self, i: int) -> int:
        return min(1 + (self.num_steps - i) // 4, 20)

    @property
    def nfe_per_sample(self) -> int:
        return self.num_steps + sum(self.num_updates * self._ode_steps(i) for i in range(self.num_steps) if self._guided(i))

    def population_size(self, num_samples: int) -> int:
        size = self.ensemble_size or num_samples  # None: one particle per requested sample
        if size < 2:  # one particle has no covariance: the update would vanish, leaving prior samples
            raise UnsupportedProblemError(
                f"EnKG needs at least 2 particles per measurement (its update uses their covariance), but "
                f"ensemble_size={self.ensemble_size!r} with num_samples={num_samples} gives {size}; pass "
                f"ensemble_size >= 2 or num_samples >= 2.")
        return size

    def start(self, context: SolveContext) -> EnKGState:
        state = context.new_state(EnKGState, context.zeros(), self.sigmas[0],
                                  ensemble_size=context.rows_per_measurement)
        return state.replace(x=self.sigma_max * self.randn(state, step=-1))

    def _scale(self, i: int) -> float:
        if self.lr_min_ratio > 0:
            return self.guidance_scale * (1 - self.lr_min_ratio) * (self.num_steps - i) / self.num_steps + self.lr_min_ratio
        return self.guidance_scale

    @torch.no_grad()
    def _update(self, state: EnKGState, particles: Tensor, i: int) -> Tensor:
        M, N = state.num_measurements, state.ensemble_size
        sigma = self.sigmas[i]
        # The official inner ODE: poly-ρ grid from σ_i to 0.002, then 0 (one step = the denoiser).
        inner = karras_sigmas(self._ode_steps(i), 0.002, sigma, self.rho, append_zero=True).tolist()
        for _ in range(self.num_updates):
            x0s = euler_ode(state.prior, particles, inner)
            ys = state.problem.operator(x0s)
            ys_err = (ys - state.measurement).reshape(M, N, -1)
            ys_group = ys.reshape(M, N, -1)
            ys_diff = ys_group - ys_group.mean(1, keepdim=True)
            xs = particles.reshape(M, N, -1)
            xs_diff = xs - xs.mean(1, keepdim=True)
            if ys_err.is_complex():
                coef = (ys_err.conj() @ ys_diff.transpose(1, 2)).real / N
            else:
                coef = ys_err @ ys_diff.transpose(1, 2) / N  # (M, N, N)
            lr = self._scale(i) / torch.linalg.matrix_norm(coef).clamp_min(1e-30)  # Frobenius norm per measurement
            particles = (xs - lr[:, None, None] * (coef @ xs_diff)).reshape(particles.shape)
        return particles

    @torch.no_grad()
    def step(self, state: EnKGState, i: int) -> EnKGState:
        x = state.x
        if self._guided(i):
            x = self._update(state, x, i)
        sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]
        denoised = state.prior.denoise(x, x.new_full((x.shape[0],), sigma))
        x_next = euler_step(x, denoised, sigma, sigma_next)
        return state.replace(x=x_next, x0_hat=denoised, sigma=x.new_full((x.shape[0],), sigma_next))
