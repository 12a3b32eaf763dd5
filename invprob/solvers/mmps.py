"""MMPS — Moment Matching Posterior Sampling (Rozet, Andry, Lanusse & Louppe, NeurIPS 2024)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..checks import check_int
from ..linalg import conjugate_gradient
from .base import SolveContext, Solver, State

__all__ = ["MMPS", "log_linear_sigmas"]


def log_linear_sigmas(num_steps: int, sigma_min: float = 1e-3, sigma_max: float = 1e2) -> list[float]:
    """The VE levels ``σ(t) = exp(log a + (log b − log a) t)`` at ``t = 1, 1 − 1/N, …, 1/N, 0``
    (``num_steps + 1`` values, from ``sigma_max`` down to ``sigma_min``): the schedule and the
    time grid of the official ``priors/diffusion.py`` (``VESDE`` and ``DDPM``)."""
    a, b = math.log(sigma_min), math.log(sigma_max)
    return [math.exp(a + (b - a) * (1 - k / num_steps)) for k in range(num_steps + 1)]


@dataclass(kw_only=True)
class MMPSState(State):
    """MMPS state; ``x`` is the σ-space (VE) iterate ``x0 + σ z``."""


class MMPS(Solver):
    r"""Posterior denoising by moment matching, inside VE ancestral sampling.

    At level ``σ_t`` the posterior denoiser replaces ``x̂0 = D(x_t, σ_t)`` by the mean of the
    Gaussian that matches the first two moments of ``p(x0 | x_t)``,

    .. math::
        \hat x_0^y = \hat x_0 + \Sigma_t A^\top (\Sigma_y + A \Sigma_t A^\top)^{-1} (y - A\hat x_0),
        \qquad \Sigma_t = \sigma_t^2\, \partial \hat x_0 / \partial x_t

    (Tweedie's covariance formula), with ``Σ_y = σ_y² I`` and the linear system solved by
    ``cg_iterations`` conjugate-gradient iterations from zero, every product with ``Σ_t`` a
    vector–Jacobian product through the denoiser (the Jacobian of a denoiser is symmetric, so
    ``Jᵀ`` stands for ``J``; no Jacobian is formed). Then the ancestral step to the next level
    ``σ_s``: ``x_s = x_t − τ (x_t − x̂0^y) + σ_s √τ z``, ``τ = 1 − σ_s²/σ_t²``, and after the last
    step one more posterior denoising at ``σ_min`` gives the sample — the official code's
    ``PosteriorDenoiser`` inside its ``DDPM`` sampler (``priors/diffusion.py``), run by
    ``priors/common.py:sample_any``.

    NFE per sample = ``num_steps + 1`` (one denoiser call per level, each followed by
    ``cg_iterations + 1`` backpropagations through it); ``cg_iterations + 1`` forward-operator
    calls per level and as many adjoints. Needs a linear operator and Gaussian noise.

    Args:
        num_steps: sampling steps (64: ``sample_any``'s ``steps``; the CIFAR-10 experiment uses
            256, ``experiments/cifar/train.py``).
        cg_iterations: CG iterations for the linear system (1: ``maxiter`` in ``sample_any``
            and the CIFAR-10 experiment; the fastMRI experiment uses 3).
        sigma_min, sigma_max: the VE schedule's ends (1e-3 and 1e2: ``VESDE`` defaults ``a``
            and ``b`` in ``priors/diffusion.py``).

    References:
        | Learning Diffusion Priors from Observations by Expectation Maximization
        | (Rozet, Andry, Lanusse & Louppe, NeurIPS 2024) https://arxiv.org/abs/2405.13712
        | Official code: https://github.com/francois-rozet/diffusion-priors

    Measured against exact posteriors: ``benchmarks/results/posterior_gmm_families.md``.
    """

    requires = ("linear", "gaussian_noise")
    tunables = {}  # none: the moment-matched likelihood has no step size or weight to choose

    def __init__(self, num_steps: int = 64, cg_iterations: int = 1, sigma_min: float = 1e-3,
                 sigma_max: float = 1e2) -> None:
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"need 0 < `sigma_min` < `sigma_max`, got {sigma_min} and {sigma_max}.")
        self.num_steps = check_int(num_steps, "num_steps", 1)
        self.cg_iterations = check_int(cg_iterations, "cg_iterations", 1)
        self.sigmas = log_linear_sigmas(self.num_steps, float(sigma_min), float(sigma_max))

    @property
    def nfe_per_sample(self) -> int:
        return self.num_steps + 1

    def start(self, context: SolveContext) -> MMPSState:
        state = context.new_state(MMPSState, context.zeros(), self.sigmas[0])
        return state.replace(x=self.sigmas[0] * self.randn(state, step=-1))  # x_1 = σ(1) z (zero prior mean)

    def posterior_denoise(self, state: State, x: Tensor, sigma: float) -> Tensor:
        """``x̂0^y``, the moment-matched posterior mean at ``(x, σ)`` ``(B, *x_shape)``."""
        op, y, var_y = state.problem.operator, state.measurement, state.problem.noise.sigma**2
        xg = x.detach().requires_grad_(True)
        with torch.enable_grad():
            x0 = state.prior.denoise(xg, xg.new_full((x.shape[0],), sigma))

        def cov_t(u: Tensor) -> Tensor:  # Σ_t u = σ² Jᵀ u
            (g,) = torch.autograd.grad(x0, xg, grad_outputs=u, retain_graph=True)
            return sigma**2 * g

        def system(v: Tensor) -> Tensor:  # (Σ_y + A Σ_t Aᵀ) v
            return var_y * v + op(cov_t(op.adjoint(v)))

        with torch.no_grad():
            residual = y - op(x0.detach())
        v = conjugate_gradient(system, residual, self.cg_iterations)
        correction = cov_t(op.adjoint(v.detach()))
        return (x0 + correction).detach()

    def step(self, state: MMPSState, i: int) -> MMPSState:
        sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]
        x0 = self.posterior_denoise(state, state.x, sigma)
        tau = 1 - sigma_next**2 / sigma**2
        x = state.x - tau * (state.x - x0) + sigma_next * tau**0.5 * self.randn(state, step=i)
        if i == self.num_steps - 1:  # the sampler's last call: the posterior mean at σ_min is the sample
            x = x0 = self.posterior_denoise(state, x, sigma_next)
        return state.replace(x=x, x0_hat=x0, sigma=x.new_full((x.shape[0],), sigma_next))
