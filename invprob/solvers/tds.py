"""TDS — the Twisted Diffusion Sampler (Wu, Trippe, Naesseth, Blei & Cunningham, NeurIPS 2023)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..checks import check_int
from ..errors import UnsupportedProblemError
from ..sampling import DDPMSchedule
from .base import PopulationSolver, SolveContext, State, Tunable
from .smc import resample_population

__all__ = ["TDS"]


@dataclass(kw_only=True)
class TDSState(State):
    """TDS state; ``x`` holds ``num_particles`` particles per measurement of the VP variable
    ``x_t``. ``log_w``: their log weights ``(B,)``; ``log_twist``: ``log p̃(y | ·)`` at each
    particle's parent; ``log_ratio``: ``log p(x_t | x_{t+1}) − log q(x_t | x_{t+1}, y)`` of the
    proposal that made it (both ``(B,)``)."""

    log_w: Tensor
    log_twist: Tensor
    log_ratio: Tensor
    num_particles: int


class TDS(PopulationSolver):
    r"""Sequential Monte Carlo with twisted DDPM proposals, asymptotically exact in the particles.

    The twisting function at step ``t`` is the DPS-style approximation of the likelihood,

    .. math::
        \tilde p_t(y \mid x_t) = \mathcal N\big(y;\ A\hat x_0(x_t),\ (\sigma_y^2 + v_t) I\big),
        \qquad v_t = \frac{\sigma_t^2 \tau^2}{\sigma_t^2 + \tau^2},\quad \sigma_t^2 = \frac{1-\bar\alpha_t}{\bar\alpha_t}

    (``v_t``: the variance of ``x0 | x_t`` for a Gaussian prior of variance τ², the official
    ``var_type=6``; the official image code is noiseless inpainting, σ_y = 0, and σ_y² is added
    here for noisy data). Each particle moves by the DDPM posterior step from the *twisted*
    estimate ``x̂0 + (1 − ᾱ_t)/sqrt(ᾱ_t) ∇_{x_t} log p̃_t`` (clamped to the prior's data range
    where it has one, as the official ``clip_twisted``) with the model's variance β̃_t, and is
    reweighted by

    .. math::
        w_t = \frac{p(x_{t-1} \mid x_t)\, \tilde p_{t-1}(y \mid x_{t-1})}
                   {q(x_{t-1} \mid x_t, y)\, \tilde p_t(y \mid x_t)},

    the first weight being ``p̃_T(y | x_T)``. The last step (to ``t = 0``) takes the untwisted mean
    ``x_0 = x̂0(x_1)`` with no noise, as the official code, and weighs it by the exact likelihood
    ``p(y | x_0) / p̃_1(y | x_1)`` (the official inpainting code's masked form of it). Particles
    are resampled (systematic, Kitagawa 1996) per measurement when their effective sample size
    falls below ``ess_fraction · N`` — with the default 1.0 at every step, as the official
    ``ess_threshold: null`` — and once more at the end, so the returned samples are equally
    weighted. The gradient of the twist goes through the denoiser (one backpropagation per step).
    The reverse variance is DDPM's β̃_t ("fixed small", as in :class:`~invprob.solvers.DPS`; the
    official code uses the ADM checkpoints' learned variance), so what TDS targets is the
    posterior under its own ``num_steps``-step chain, whose prior is slightly under-dispersed at
    few steps. Where the twisted mean moves further than the reverse step's standard deviation
    (the last steps, at small σ_y) the weights degenerate; more particles, not more steps, is
    the remedy the method offers.

    NFE per sample = ``num_steps``; one forward-operator call per step and one more for the
    final likelihood. Needs a differentiable
    operator and Gaussian noise with σ_y > 0 (the final weight is the Gaussian likelihood).
    Particles interact through resampling: the same seed and the same population give the same
    samples.

    Args:
        num_steps: DDPM steps respaced from ``num_timesteps`` (100:
            ``mnist_model_and_diffusion_conf.yml``'s respacing of the official image code).
        num_particles: particles per measurement; ``None``: as many as the samples requested
            (the official image runs use 4; azula's TDS uses the batch).
        tau2: τ², the prior variance in the twisting variance (0.12: ``tausq`` of the official
            ``run_image.py``).
        ess_fraction: resample when ESS < ``ess_fraction`` · N (1.0: every step, the official
            ``ess_threshold: null`` → 1.0 in ``run_image.py``).
        num_timesteps, beta_start, beta_end: the linear β schedule (1000, 1e-4, 0.02).

    References:
        | Practical and Asymptotically Exact Conditional Sampling in Diffusion Models
        | (Wu, Trippe, Naesseth, Blei & Cunningham, NeurIPS 2023) https://arxiv.org/abs/2306.17775
        | Official code: https://github.com/blt2114/twisted_diffusion_sampler (``image_exp/``)

    Measured against exact posteriors: ``benchmarks/results/posterior_gmm_families.md``.
    """

    requires = ("differentiable", "gaussian_noise")
    tunables = {"tau2": Tunable(factor=10.0)}
    population_arg = "num_particles"
    population_fix = "raise num_particles or pass num_particles=None"

    def __init__(self, num_steps: int = 100, num_particles: int | None = None, tau2: float = 0.12,
                 ess_fraction: float = 1.0, num_timesteps: int = 1000, beta_start: float = 1e-4,
                 beta_end: float = 0.02) -> None:
        self.num_steps = check_int(num_steps, "num_steps", 2)
        self.num_particles = None if num_particles is None else check_int(num_particles, "num_particles", 1)
        if not tau2 > 0:
            raise ValueError(f"`tau2` must be > 0, got {tau2}.")
        if not 0 < ess_fraction <= 1:
            raise ValueError(f"`ess_fraction` must be in (0, 1], got {ess_fraction}.")
        self.tau2, self.ess_fraction = float(tau2), float(ess_fraction)
        self.schedule = DDPMSchedule(self.num_steps, num_timesteps, beta_start, beta_end)

    @property
    def nfe_per_sample(self) -> int:
        return self.num_steps

    def population_size(self, num_samples: int) -> int:
        return num_samples if self.num_particles is None else self.num_particles

    def check(self, problem, prior) -> None:
        super().check(problem, prior)
        if not problem.noise.sigma > 0:
            raise UnsupportedProblemError("TDS weighs its last step by the Gaussian likelihood and needs "
                                          "noise with sigma > 0; give the noise model the data's noise level.")

    def start(self, context: SolveContext) -> TDSState:
        zeros = context.zeros()
        flat = zeros.new_zeros(len(zeros))
        state = context.new_state(TDSState, zeros, self.schedule.sigma(0), log_w=flat, log_twist=flat,
                                  log_ratio=flat, num_particles=context.rows_per_measurement)
        return state.replace(x=self.randn(state, step=-1))  # x_T ~ N(0, I)

    def _twist(self, state: TDSState, i: int) -> tuple[Tensor, Tensor, Tensor]:
        """``(x̂0, log p̃_t(y | x_t), ∇_{x_t} log p̃_t)`` at the particles, each ``(B, …)``."""
        x = state.x.detach().requires_grad_(True)
        variance = state.problem.noise.sigma**2 + self.schedule.sigma(i) ** 2 * self.tau2 / (
            self.schedule.sigma(i) ** 2 + self.tau2)
        with torch.enable_grad():
            x0 = self.schedule.denoise(state.prior, x, i)
            residual = state.measurement - state.problem.operator(x0)
            log_twist = -residual.abs().pow(2).flatten(1).sum(1) / (2 * variance)
            (grad,) = torch.autograd.grad(log_twist.sum(), x)
        return x0.detach(), log_twist.detach(), grad

    def step(self, state: TDSState, i: int) -> TDSState:
        schedule, B, N = self.schedule, state.x.shape[0], state.num_particles
        x0, log_twist, grad = self._twist(state, i)
        # complete the weight of the move that made these particles (p̃_T(y | x_T) at the start)
        log_w = state.log_w + log_twist - state.log_twist + state.log_ratio if i else log_twist
        rows, log_w = resample_population(state.seeds, log_w, state.num_measurements, N, i, self.ess_fraction)
        x = state.x
        if rows is not None:
            x, x0, log_twist, grad = x[rows], x0[rows], log_twist[rows], grad[rows]
        if i == self.num_steps - 1:  # x_0 = x̂0(x_1), weighed by the exact likelihood over the last twist
            log_w = log_w + state.problem.noise.log_likelihood(state.measurement, state.problem.operator(x0)) - log_twist
            rows, log_w = resample_population(state.seeds, log_w, state.num_measurements, N, self.num_steps,
                                              self.ess_fraction, force=True)
            x0 = x0[rows]
            return state.replace(x=x0, x0_hat=x0, sigma=x0.new_zeros(B), log_w=log_w, log_twist=log_twist[rows],
                                 log_ratio=torch.zeros_like(log_w))
        abar = schedule.abar[i]
        x0_twisted = x0 + (1 - abar) / abar**0.5 * grad
        if state.prior.data_range is not None:
            x0_twisted = x0_twisted.clamp(*state.prior.data_range)
        mean, mean_twisted = schedule.posterior_mean(x0, x, i), schedule.posterior_mean(x0_twisted, x, i)
        std = schedule.posterior_std(i)
        x_next = mean_twisted + std * self.randn(state, step=i)
        # log p(x' | x) − log q(x' | x, y): the same variance, different means
        log_ratio = ((x_next - mean_twisted).pow(2) - (x_next - mean).pow(2)).flatten(1).sum(1) / (2 * std**2)
        sigma = x_next.new_full((B,), schedule.sigma_prev(i))
        return state.replace(x=x_next.detach(), x0_hat=x0, sigma=sigma, log_w=log_w, log_twist=log_twist,
                             log_ratio=log_ratio.detach())
