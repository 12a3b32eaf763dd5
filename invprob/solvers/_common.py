"""Pieces shared by several solvers (written once): VP/DDPM coefficients, the EDM Euler
probability-flow ODE, the data-fit residual and the poly-ρ σ grid."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import schedules


def poly_sigmas(sigma_max: float, sigma_min: float, num_points: int, rho: float = 7.0) -> list[float]:
    """``num_points`` σ values from ``sigma_max`` to ``sigma_min`` on the EDM poly-ρ grid
    (``(σmax^(1/ρ) + r (σmin^(1/ρ) − σmax^(1/ρ)))^ρ``, r uniform in [0, 1])."""
    if num_points == 1:
        return [float(sigma_max)]
    return schedules.karras_sigmas(num_points, sigma_min, sigma_max, rho).tolist()


def euler_ode(prior, x: Tensor, sigmas: list[float]) -> Tensor:
    """Probability-flow ODE ``dx/dσ = (x − D(x, σ)) / σ`` (EDM, Karras et al. 2022, eq. 4 with
    s = 1) integrated by Euler steps along ``sigmas``; one denoiser call per step."""
    B = x.shape[0]
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        denoised = prior.denoise(x, x.new_full((B,), sigma))
        x = x + (sigma_next - sigma) * (x - denoised) / sigma  # Euler step
    return x


def squared_residual(operator, x: Tensor, measurement: Tensor) -> Tensor:
    """Per-sample ``‖A(x) − y‖²`` (complex measurements: squared modulus), shape ``(B,)``."""
    return (operator(x) - measurement).abs().pow(2).flatten(1).sum(1)


class DDPMSchedule:
    """A (respaced) linear-β DDPM schedule walked from high to low noise.

    Step ``i`` goes from ``ᾱ[i]`` to ``ᾱ_prev[i]`` (``ᾱ_prev = 1`` after the last step).
    """

    def __init__(self, num_steps: int, num_timesteps: int = 1000, beta_start: float = 1e-4,
                 beta_end: float = 0.02) -> None:
        alphas_cumprod = schedules.alphas_cumprod_from_betas(
            schedules.linear_betas(num_timesteps, beta_start, beta_end))
        timesteps = schedules.respace_timesteps(num_timesteps, num_steps)
        self.abar = alphas_cumprod[timesteps].flip(0).tolist()
        self.abar_prev = self.abar[1:] + [1.0]

    def sigma(self, i: int) -> float:
        """σ-space noise level of ``x_t`` at step ``i``: ``sqrt((1 − ᾱ)/ᾱ)``."""
        return ((1 - self.abar[i]) / self.abar[i]) ** 0.5

    def sigma_prev(self, i: int) -> float:
        return ((1 - self.abar_prev[i]) / self.abar_prev[i]) ** 0.5

    def denoise(self, prior, x_t: Tensor, i: int) -> Tensor:
        """``x0_hat`` from the VP variable ``x_t``: the σ-space denoiser at ``x_t / sqrt(ᾱ)``."""
        return prior.denoise(x_t / self.abar[i] ** 0.5, x_t.new_full((x_t.shape[0],), self.sigma(i)))

    def posterior_mean(self, x0_hat: Tensor, x_t: Tensor, i: int) -> Tensor:
        """Mean of ``q(x_{t−1} | x_t, x0)`` (Ho et al. 2020, eq. 7)."""
        abar, abar_prev = self.abar[i], self.abar_prev[i]
        beta = 1 - abar / abar_prev
        return (beta * abar_prev**0.5 / (1 - abar)) * x0_hat + ((1 - abar_prev) * (1 - beta) ** 0.5 / (1 - abar)) * x_t

    def posterior_std(self, i: int) -> float:
        """``sqrt(β̃_t)``, DDPM's posterior standard deviation ("fixed small")."""
        abar, abar_prev = self.abar[i], self.abar_prev[i]
        return ((1 - abar / abar_prev) * (1 - abar_prev) / (1 - abar)) ** 0.5


def spectral_norm(operator, dtype: torch.dtype, device, num_iters: int = 30) -> float:
    """Largest singular value of a linear operator by power iteration on ``AᵀA`` (seeded)."""
    g = torch.Generator().manual_seed(0)
    v = torch.randn((1, *operator.x_shape), generator=g, dtype=dtype).to(device)
    v = v / v.norm()
    value = 0.0
    with torch.no_grad():
        for _ in range(num_iters):
            w = operator.adjoint(operator(v))
            value = w.norm().item()
            if value == 0:
                return 0.0
            v = w / value
    return value**0.5
