"""DAPS — Decoupled Annealing Posterior Sampling (Zhang et al., 2024), Algorithm 1."""

from __future__ import annotations

import warnings

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..priors.base import Prior
from ..problem import Problem
from ..errors import UnsupportedProblemError
from ..checks import check_int
from ..operators.base import spectral_norm, squared_residual
from ..sampling import euler_ode, karras_sigmas
from .base import SolveContext, Solver, State, Tunable

__all__ = ["DAPS"]


@dataclass(kw_only=True)
class DAPSState(State):
    """DAPS state; ``x`` is the annealed variable ``x_t = x0 + σ_t n`` (σ-space)."""

    data_fit: Tensor  # (B,) ‖A(x0y) − y‖² after the Langevin chain


class DAPS(Solver):
    r"""Decoupled annealing: ODE to ``x̂0``, Langevin on ``p(x0 | x_t, y)``, re-noise.

    For each annealing level ``σ_i`` (EDM poly-7 grid from ``sigma_max`` to ``sigma_min``,
    then 0):

    1. ``x̂0`` = ``ode_steps`` Euler steps of the probability-flow ODE from ``x_t`` at ``σ_i``
       down to ``ode_sigma_min`` (poly-7 grid);
    2. ``langevin_steps`` Langevin steps on ``x0``, started at ``x̂0``, with
       ``∇ log p = −∇‖A(x0) − y‖²/τ² − (x0 − x̂0)/σ_i²`` and step ``lr`` decayed linearly
       to ``lr · lr_min_ratio``: ``x0 ← x0 + lr ∇ log p + sqrt(2 lr) ε``;
    3. ``x_t = x0 + σ_{i+1} ε``.

    ``mc_algo="hmc"`` replaces step 2 by the official code's damped Hamiltonian Monte Carlo
    (``cores/mcmc.py``, added in its March 2025 release with per-task ``pixel_hmc`` configs):
    a velocity ``v ~ N(0, I)`` drawn at each level, then per step, with ``h = sqrt(lr)`` and
    momentum ``m``: ``v ← m v + h ∇ log p + sqrt(2 (1 − m)) ε``, ``x0 ← x0 + h v``.

    As in the official code the data term is ``‖A(x0) − y‖² / τ²`` (no ½): it is the
    likelihood of Gaussian noise with variance ``τ²/2``, so ``τ = √2 σ_y`` matches the
    noise model — preset ``daps-sigma-y``, which derives τ from the problem (``tau=None``).
    The paper's ``τ = 0.01`` trusts the data more than σ_y = 0.05 warrants. The learning
    rate decay uses ``i / (num_steps + 1)`` as the official code does.

    NFE per sample = ``num_steps · ode_steps`` (200 × 5 = 1000 for DAPS-1K);
    ``num_steps · langevin_steps`` operator evaluations with gradients. Works with any
    differentiable operator, linear or not (phase retrieval).

    :meth:`check` refuses a linear operator for which the Langevin (or HMC) data step is
    unstable, ``lr·‖A‖²/τ² > 1`` (``> 1 + momentum`` for HMC); the paper's lr 1e-4 with
    τ = 0.01 is on that edge for operators with ``‖A‖ ≈ 1``.

    Measured against the exact posterior of the GMM test bed:
    ``benchmarks/results/posterior_gmm_seed7.md``. On multimodal phase retrieval one chain per
    sample keeps the basin it falls into early, so its orbit frequencies do not follow the
    posterior's mode weights; use :class:`TemperedSMC` for those. See
    ``benchmarks/results/phase_retrieval_gmm_seed7_os4_reference.json`` (and the ``_hmc``,
    ``_exact_conditional``, ``_power50`` and ``_unit_range_`` files beside it). On Set12:
    ``benchmarks/results/restoration_set12.md``.

    Args:
        num_steps: annealing levels (200; ``configs/sampler/edm_daps.yaml``).
        sigma_max, sigma_min: annealing range (100, 0.1; same file).
        ode_steps: Euler steps per ODE solve (5; ``diffusion_scheduler_config``).
        ode_sigma_min: where each ODE solve stops (0.01; same).
        langevin_steps: MCMC steps per level, Langevin or HMC (100; ``configs/task/*.yaml``, pixel).
        lr: Langevin step size (1e-4 for SR, Gaussian blur, random inpainting; 5e-5 for box
            inpainting, motion blur, phase retrieval — presets ``daps-*``).
        tau: τ of the data term (0.01 in every task config); ``None`` ⇒ ``√2 σ_y`` from a
            Gaussian noise model.
        lr_min_ratio: final / initial step size (0.01).
        rho: exponent of the poly-ρ grids (7).
        mc_algo: ``"langevin"`` (the paper's DAPS-1K) or ``"hmc"`` (the official code's
            damped HMC; preset ``daps-hmc-phase-retrieval`` takes its ``pixel_hmc`` config).
            The code's third option, ``"mh"`` (random-walk Metropolis), has no task config and
            is not provided.
        momentum: HMC momentum ``m`` in [0, 1) (0.9, the default of the official
            ``MCMCSampler``; the task configs set their own); unused by Langevin.

    References:
        | Improving Diffusion Inverse Problem Solving with Decoupled Noise Annealing
        | (Zhang, Chu, Berner, Meng, Anandkumar & Song, 2024) https://arxiv.org/abs/2407.01521
    """

    requires = ("differentiable",)
    tunables = {"lr": Tunable(factor=10.0), "tau": Tunable(factor=10.0)}

    def __init__(self, num_steps: int = 200, sigma_max: float = 100.0, sigma_min: float = 0.1,
                 ode_steps: int = 5, ode_sigma_min: float = 0.01, langevin_steps: int = 100,
                 lr: float = 1e-4, tau: float | None = 0.01, lr_min_ratio: float = 0.01, rho: float = 7.0,
                 mc_algo: str = "langevin", momentum: float = 0.9) -> None:
        for name, value in (("num_steps", num_steps), ("ode_steps", ode_steps)):
            if int(value) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {value}.")
        if tau is not None and not tau > 0:
            raise ValueError(f"`tau` must be > 0 or None (derive from σ_y), got {tau}.")
        if not lr > 0:
            raise ValueError(f"`lr` must be > 0, got {lr}.")
        if mc_algo not in ("langevin", "hmc"):
            raise ValueError(f"`mc_algo` must be 'langevin' or 'hmc', got {mc_algo!r}.")
        if not 0 <= momentum < 1:
            raise ValueError(f"`momentum` must be in [0, 1) (HMC damping), got {momentum}.")
        self.mc_algo, self.momentum = mc_algo, float(momentum)
        self.num_steps, self.ode_steps = check_int(num_steps, "num_steps", 1), check_int(ode_steps, "ode_steps", 1)
        self.langevin_steps = check_int(langevin_steps, "langevin_steps", 0)
        self.sigma_max, self.sigma_min, self.ode_sigma_min = sigma_max, sigma_min, ode_sigma_min
        self.lr, self.tau, self.lr_min_ratio, self.rho = lr, tau, lr_min_ratio, rho
        # The official scheduler keeps num_steps + 1 grid points and uses the first num_steps.
        self.annealing = karras_sigmas(self.num_steps + 1, sigma_min, sigma_max, rho).tolist()[:-1] + [0.0]

    @property
    def nfe_per_sample(self) -> int:
        return self.num_steps * self.ode_steps

    def _tau(self, problem: Problem) -> float:
        if self.tau is not None:
            return self.tau
        return math.sqrt(2.0) * problem.noise.sigma

    def check(self, problem: Problem, prior: Prior) -> None:
        super().check(problem, prior)
        if self.tau is None and not hasattr(problem.noise, "sigma"):
            raise UnsupportedProblemError(f"DAPS with tau=None derives τ from Gaussian noise; got "
                                          f"{type(problem.noise).__name__}. Give `tau` explicitly.")
        op = problem.operator
        if op.linear and op.x_shape is not None:
            # The Langevin data step multiplies the residual along the top singular direction
            # by 1 − 2 lr s²/τ²: beyond lr s²/τ² = 1 it grows every step. The official settings sit
            # on that edge for normalised blurs (lr = τ² = 1e-4, ‖A‖ ≈ 1; reflect padding makes
            # ‖A‖ slightly above 1), where the growth is mild (|1 − 2r| ≤ 1.1 per step while the
            # learning rate decays), so up to 1.05× the limit DAPS warns and runs; beyond, it
            # refuses. Damped HMC is the heavy-ball recursion x' = x + m (x − x_prev) − lr c x on
            # that direction (curvature c = 2 s²/τ²), stable while lr c < 2 (1 + m): limit 1 + m.
            s_max = spectral_norm(op, prior.dtype, problem.measurement.device)
            tau = self._tau(problem)
            ratio = self.lr * s_max**2 / tau**2
            limit, kind = (1.0, "Langevin") if self.mc_algo == "langevin" else (1.0 + self.momentum, "HMC")
            advice = (f"(lr={self.lr:g}, ‖A‖={s_max:.3g}, τ={tau:.3g}); use lr <= {limit * tau ** 2 / s_max**2:.3g} "
                      f"or a larger tau.")
            if ratio > 1.05 * limit:
                raise UnsupportedProblemError(f"DAPS's {kind} step is unstable for this operator: lr·‖A‖²/τ² = "
                                              f"{ratio:.2f} > {limit:g} " + advice)
            if ratio > limit * (1 + 1e-3):
                warnings.warn(f"DAPS's {kind} step is at the edge of stability: lr·‖A‖²/τ² = {ratio:.3f} "
                              f"(limit {limit:g}) " + advice, RuntimeWarning, stacklevel=2)

    def start(self, context: SolveContext) -> DAPSState:
        zeros = context.zeros()
        state = context.new_state(DAPSState, zeros, self.annealing[0], data_fit=zeros.new_zeros(len(zeros)))
        return state.replace(x=self.sigma_max * self.randn(state, step=-1))  # x_T ~ N(0, σ_max² I)

    def step(self, state: DAPSState, i: int) -> DAPSState:
        sigma = self.annealing[i]
        # 1. reverse diffusion: x̂0 by the probability-flow ODE
        with torch.no_grad():
            ode_grid = karras_sigmas(self.ode_steps + 1, self.ode_sigma_min, sigma, self.rho).tolist()
            x0_hat = euler_ode(state.prior, state.x, ode_grid)
        # 2. Langevin dynamics on p(x0 | x_t, y) ∝ p(y | x0) N(x0; x̂0, σ_i² I)
        tau2 = self._tau(state.problem) ** 2
        lr = self.lr * (1 + i / (self.num_steps + 1) * (self.lr_min_ratio - 1))
        hmc = self.mc_algo == "hmc"
        x0 = x0_hat
        if hmc:  # the official MCMCSampler.mc_prepare: a fresh velocity at every level
            # its velocity is the extra last image of the level's draw
            h, m = lr**0.5, self.momentum
            velocity = self.chain_noise(state, i, self.langevin_steps + 1, self.langevin_steps)
        for j in range(self.langevin_steps):
            grad = self._data_gradient(state, x0)
            score = -grad / tau2 + self.prior_score(state, x0, x0_hat, sigma)
            noise = self.chain_noise(state, i, self.langevin_steps + int(hmc), j)
            if hmc:
                velocity = m * velocity + h * score + (2 * (1 - m)) ** 0.5 * noise
                x0 = x0.detach() + h * velocity
            else:
                x0 = x0.detach() + lr * score + (2 * lr) ** 0.5 * noise
        with torch.no_grad():
            data_fit = squared_residual(state.problem.operator, x0, state.measurement)
        # 3. forward diffusion to the next level
        sigma_next = self.annealing[i + 1]
        x_next = x0 + sigma_next * self.randn(state, step=i) if sigma_next > 0 else x0
        B = x0.shape[0]
        return state.replace(x=x_next, x0_hat=x0_hat, sigma=x0.new_full((B,), sigma_next), data_fit=data_fit)

    @staticmethod
    def prior_score(state: State, x0: Tensor, x0_hat: Tensor, sigma: float) -> Tensor:
        """``∇ log`` of DAPS's Gaussian stand-in for ``p(x0 | x_t)``: ``N(x0; x̂0, σ²)``."""
        return (x0_hat - x0) / sigma**2

    @staticmethod
    def _data_gradient(state: State, x0: Tensor) -> Tensor:
        """``∇ ‖A(x0) − y‖²``: ``2 Aᵀ(A x0 − y)`` for linear operators, autograd otherwise."""
        op = state.problem.operator
        if op.linear:
            with torch.no_grad():
                return 2 * op.adjoint(op(x0) - state.measurement)
        x0 = x0.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = squared_residual(op, x0, state.measurement)
            (grad,) = torch.autograd.grad(loss.sum(), x0)
        return grad
