"""Noise schedules and the conversions between parameterisations (written once, here).

σ-space (EDM / variance exploding) is the common currency: ``x = x0 + sigma * n``.
A VP / DDPM model sees ``x_t = sqrt(abar) x0 + sqrt(1 - abar) eps``; dividing by
``sqrt(abar)`` gives σ-space with ``sigma = sqrt((1 - abar) / abar)``.
A rectified-flow model sees ``x_t = (1 - t) x0 + t eps``; dividing by ``1 - t`` gives
``sigma = t / (1 - t)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["karras_sigmas", "linear_betas", "alphas_cumprod_from_betas", "sigma_from_alphas_cumprod",
           "alphas_cumprod_from_sigma", "sigma_from_flow_time", "flow_time_from_sigma",
           "respace_timesteps"]


def karras_sigmas(num_steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0,
                  rho: float = 7.0, append_zero: bool = False, dtype=torch.float64) -> Tensor:
    """EDM time steps (Karras et al. 2022, eq. 5): ``(σmax^(1/ρ) + i/(N-1)(σmin^(1/ρ) − σmax^(1/ρ)))^ρ``.

    Defaults σ_min = 0.002, σ_max = 80, ρ = 7 are EDM's. Returns ``(num_steps,)`` descending
    (``(num_steps + 1,)`` ending in 0 with ``append_zero``).
    """
    if num_steps < 1:
        raise ValueError(f"`num_steps` must be >= 1, got {num_steps}.")
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}.")
    ramp = torch.linspace(0, 1, num_steps, dtype=dtype) if num_steps > 1 else torch.zeros(1, dtype=dtype)
    inv_rho = 1.0 / rho
    sigmas = (sigma_max**inv_rho + ramp * (sigma_min**inv_rho - sigma_max**inv_rho)) ** rho
    if append_zero:
        sigmas = torch.cat([sigmas, sigmas.new_zeros(1)])
    return sigmas


def linear_betas(num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 2e-2,
                 dtype=torch.float64) -> Tensor:
    """DDPM's linear β schedule (Ho et al. 2020; guided-diffusion ``get_named_beta_schedule``
    rescales 1e-4..2e-2 by 1000/T so any T spans the same noise range)."""
    scale = 1000.0 / num_timesteps
    return torch.linspace(scale * beta_start, scale * beta_end, num_timesteps, dtype=dtype)


def alphas_cumprod_from_betas(betas: Tensor) -> Tensor:
    return torch.cumprod(1.0 - betas, dim=0)


def sigma_from_alphas_cumprod(alphas_cumprod: Tensor) -> Tensor:
    """σ of the equivalent VE process: ``sqrt((1 - ᾱ) / ᾱ)``."""
    return ((1.0 - alphas_cumprod) / alphas_cumprod).sqrt()


def alphas_cumprod_from_sigma(sigma: Tensor) -> Tensor:
    """Inverse of :func:`sigma_from_alphas_cumprod`: ``ᾱ = 1 / (1 + σ²)``."""
    return 1.0 / (1.0 + sigma**2)


def sigma_from_flow_time(t: Tensor) -> Tensor:
    """Rectified flow ``x_t = (1-t) x0 + t ε`` ⇒ ``σ = t / (1 - t)``."""
    return t / (1.0 - t)


def flow_time_from_sigma(sigma: Tensor) -> Tensor:
    return sigma / (1.0 + sigma)


def respace_timesteps(num_timesteps: int, num_steps: int) -> Tensor:
    """Evenly spaced subset of ``range(num_timesteps)`` (ascending), as guided-diffusion's
    ``space_timesteps`` with a single section: ``round(i * (T-1) / (N-1))``."""
    if not 1 <= num_steps <= num_timesteps:
        raise ValueError(f"`num_steps` must be in [1, {num_timesteps}], got {num_steps}.")
    if num_steps == 1:
        return torch.tensor([num_timesteps - 1])
    frac = (num_timesteps - 1) / (num_steps - 1)
    return torch.tensor([round(i * frac) for i in range(num_steps)])
