"""Sampling primitives, written once and public: noise grids, DDPM/VP coefficients and
respacing, the probability-flow ODE, EDM preconditioning.

σ-space (EDM / variance exploding) is the common currency: ``x = x0 + sigma * n``.
A VP / DDPM model sees ``x_t = sqrt(abar) x0 + sqrt(1 - abar) eps``; dividing by
``sqrt(abar)`` gives σ-space with ``sigma = sqrt((1 - abar) / abar)``.
A rectified-flow model sees ``x_t = (1 - t) x0 + t eps``; dividing by ``1 - t`` gives
``sigma = t / (1 - t)``.

Solvers, prior adapters and training all import from here (k-diffusion's ``sampling.py`` is
the model: one public function per primitive, no private copies).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .checks import check_int

__all__ = ["karras_sigmas", "linear_betas", "alphas_cumprod_from_betas", "ddpm_alphas_cumprod",
           "ddim_sigmas", "ddim_grid", "sigma_from_alphas_cumprod", "alphas_cumprod_from_sigma",
           "sigma_from_flow_time", "flow_time_from_sigma", "respace_timesteps", "ddim_timesteps", "euler_step",
           "euler_ode", "edm_preconditioning", "DDPMSchedule"]


# -- noise grids ---------------------------------------------------------------------------
def karras_sigmas(num_steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0,
                  rho: float = 7.0, append_zero: bool = False, dtype: torch.dtype = torch.float64) -> Tensor:
    """EDM time steps (Karras et al. 2022, eq. 5): ``(σmax^(1/ρ) + i/(N-1)(σmin^(1/ρ) − σmax^(1/ρ)))^ρ``.

    Defaults σ_min = 0.002, σ_max = 80, ρ = 7 are EDM's. Returns ``(num_steps,)`` descending
    from ``sigma_max`` to ``sigma_min`` (``(num_steps + 1,)`` ending in 0 with ``append_zero``);
    a single step is ``sigma_max`` itself.
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"`num_steps` must be an int >= 1, got {num_steps!r}.")
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}.")
    if num_steps == 1:
        sigmas = torch.tensor([float(sigma_max)], dtype=dtype)
    else:
        ramp = torch.linspace(0, 1, num_steps, dtype=dtype)
        inv_rho = 1.0 / rho
        sigmas = (sigma_max**inv_rho + ramp * (sigma_min**inv_rho - sigma_max**inv_rho)) ** rho
    if append_zero:
        sigmas = torch.cat([sigmas, sigmas.new_zeros(1)])
    return sigmas


# -- DDPM / VP coefficients ----------------------------------------------------------------
def linear_betas(num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 2e-2,
                 dtype: torch.dtype = torch.float64) -> Tensor:
    """DDPM's linear β schedule (Ho et al. 2020; guided-diffusion ``get_named_beta_schedule``
    rescales 1e-4..2e-2 by 1000/T so any T spans the same noise range)."""
    scale = 1000.0 / num_timesteps
    return torch.linspace(scale * beta_start, scale * beta_end, num_timesteps, dtype=dtype)


def alphas_cumprod_from_betas(betas: Tensor) -> Tensor:
    """``ᾱ_t = ∏_{s ≤ t} (1 − β_s)``, shape of ``betas``."""
    return torch.cumprod(1.0 - betas, dim=0)


def ddpm_alphas_cumprod(num_timesteps: int = 1000, beta_start: float = 1e-4,
                        beta_end: float = 2e-2) -> Tensor:
    """``(T,)`` ᾱ of the linear-β DDPM/ADM schedule (float64)."""
    return alphas_cumprod_from_betas(linear_betas(num_timesteps, beta_start, beta_end))


def sigma_from_alphas_cumprod(alphas_cumprod: Tensor | float) -> Tensor | float:
    """σ of the equivalent VE process: ``sqrt((1 - ᾱ) / ᾱ)`` (tensor or float)."""
    return ((1.0 - alphas_cumprod) / alphas_cumprod) ** 0.5


def alphas_cumprod_from_sigma(sigma: Tensor) -> Tensor:
    """Inverse of :func:`sigma_from_alphas_cumprod`: ``ᾱ = 1 / (1 + σ²)``."""
    return 1.0 / (1.0 + sigma**2)


def sigma_from_flow_time(t: Tensor) -> Tensor:
    """Rectified flow ``x_t = (1-t) x0 + t ε`` ⇒ ``σ = t / (1 - t)``."""
    return t / (1.0 - t)


def flow_time_from_sigma(sigma: Tensor) -> Tensor:
    """Inverse of :func:`sigma_from_flow_time`: ``t = σ / (1 + σ)``."""
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


def ddim_sigmas(num_steps: int, num_timesteps: int = 1000, beta_start: float = 1e-4,
                beta_end: float = 0.02, beta_schedule: str = "linear", offset: int = 0) -> list[float]:
    """σ-space levels of a DDPM schedule at :func:`ddim_timesteps` (plus ``offset``), from the
    noisiest down, followed by ``0.0`` (``num_steps + 1`` values): the grid of the DDIM-grid
    solvers (DDNM+, DDRM, ΠGDM, the latent solvers).

    ``beta_schedule``: ``'linear'`` (DDPM/ADM, :func:`linear_betas`) or ``'scaled_linear'`` (the
    latent-diffusion codebase's ``make_beta_schedule('linear')``: ``linspace(√β₀, √β₁, T)²``,
    used by LDM and Stable Diffusion). ``offset``: added to every timestep (latent diffusion's
    ``make_ddim_timesteps`` adds 1: ``1, 1 + T/N, …``)."""
    if beta_schedule == "linear":
        abar = ddpm_alphas_cumprod(num_timesteps, beta_start, beta_end)
    elif beta_schedule == "scaled_linear":
        betas = torch.linspace(beta_start**0.5, beta_end**0.5, num_timesteps, dtype=torch.float64) ** 2
        abar = alphas_cumprod_from_betas(betas)
    else:
        raise ValueError(f"`beta_schedule` must be 'linear' or 'scaled_linear', got {beta_schedule!r}.")
    timesteps = (ddim_timesteps(num_timesteps, num_steps).flip(0) + offset).tolist()
    if timesteps[0] >= num_timesteps:
        raise ValueError(f"`offset` {offset} takes the first of {num_steps} timesteps to {timesteps[0]}, past the "
                         f"schedule's {num_timesteps}; use fewer steps or no offset.")
    return [sigma_from_alphas_cumprod(float(abar[t])) for t in timesteps] + [0.0]


def ddim_grid(num_steps: object, num_timesteps: object = 1000, beta_start: float = 1e-4, beta_end: float = 0.02,
              beta_schedule: str = "linear", offset: object = 0) -> tuple[int, list[float]]:
    """``(num_steps, sigmas)`` for a DDIM-grid solver's arguments: ``num_steps`` ≥ 1,
    ``num_timesteps`` ≥ ``num_steps`` and ``offset`` ≥ 0 checked as integers (one line naming the
    argument otherwise), then :func:`ddim_sigmas`."""
    num_steps = check_int(num_steps, "num_steps", 1)
    num_timesteps = check_int(num_timesteps, "num_timesteps", num_steps)
    offset = check_int(offset, "timestep_offset", 0)
    return num_steps, ddim_sigmas(num_steps, num_timesteps, beta_start, beta_end, beta_schedule, offset)


def ddim_timesteps(num_timesteps: int, num_steps: int) -> Tensor:
    """DDIM's uniform respacing over the whole schedule, ascending: ``⌊k T / N⌋`` for
    ``k = 0 … N−1``. When ``N`` divides ``T`` this is the official codes' ``range(0, T, T // N)``
    (RED-Diff's ``utils/functions.py:get_timesteps``, DDNM's ``seq``), which they walk in
    reverse; otherwise those codes run ``len(range(0, T, T // N))`` steps (1000 for ``N = 600``),
    and this keeps ``N`` steps spread over the same span instead of cutting the schedule short."""
    if not 1 <= num_steps <= num_timesteps:
        raise ValueError(f"`num_steps` must be in [1, {num_timesteps}], got {num_steps}.")
    return torch.arange(num_steps) * num_timesteps // num_steps


class DDPMSchedule:
    """A (respaced) linear-β DDPM schedule walked from high to low noise.

    Step ``i`` goes from ``ᾱ[i]`` to ``ᾱ_prev[i]`` (``ᾱ_prev = 1`` after the last step); the
    timesteps are :func:`respace_timesteps` of ``num_timesteps``.
    """

    def __init__(self, num_steps: int, num_timesteps: int = 1000, beta_start: float = 1e-4,
                 beta_end: float = 0.02) -> None:
        alphas_cumprod = ddpm_alphas_cumprod(num_timesteps, beta_start, beta_end)
        timesteps = respace_timesteps(num_timesteps, num_steps)
        self.abar: list[float] = alphas_cumprod[timesteps].flip(0).tolist()
        self.abar_prev: list[float] = self.abar[1:] + [1.0]

    def sigma(self, i: int) -> float:
        """σ-space noise level of ``x_t`` at step ``i``: ``sqrt((1 − ᾱ)/ᾱ)``."""
        return sigma_from_alphas_cumprod(self.abar[i])

    def sigma_prev(self, i: int) -> float:
        """σ-space noise level after step ``i``."""
        return sigma_from_alphas_cumprod(self.abar_prev[i])

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


# -- the probability-flow ODE --------------------------------------------------------------
def euler_step(x: Tensor, denoised: Tensor, sigma: float, sigma_next: float) -> Tensor:
    """One Euler step of ``dx/dσ = (x − D(x, σ)) / σ`` from ``sigma`` to ``sigma_next``."""
    return x + (sigma_next - sigma) * (x - denoised) / sigma


def euler_ode(prior, x: Tensor, sigmas: list[float]) -> Tensor:
    """Probability-flow ODE ``dx/dσ = (x − D(x, σ)) / σ`` (EDM, Karras et al. 2022, eq. 4 with
    s = 1) integrated by Euler steps along ``sigmas``; one denoiser call per step.

    Shapes: ``x (B, *x_shape)``; returns the same shape.
    """
    B = x.shape[0]
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        denoised = prior.denoise(x, x.new_full((B,), sigma))
        x = euler_step(x, denoised, sigma, sigma_next)
    return x


# -- EDM preconditioning -------------------------------------------------------------------
def edm_preconditioning(sigma: Tensor, sigma_data: float = 0.5) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """EDM's preconditioning (Karras et al. 2022, Table 1): ``D = c_skip x + c_out F(c_in x, c_noise)``.

    Args:
        sigma: noise levels ``(B, 1, …, 1)`` broadcastable against the images.
        sigma_data: σ_data (0.5, EDM's default).

    Returns:
        ``(c_skip, c_out, c_in, c_noise)`` with ``c_skip = σd²/(σ²+σd²)``,
        ``c_out = σ σd/sqrt(σ²+σd²)``, ``c_in = 1/sqrt(σ²+σd²)``, ``c_noise = ln(σ)/4``
        (all shaped like ``sigma``).
    """
    sd2 = sigma_data**2
    c_skip = sd2 / (sigma**2 + sd2)
    c_out = sigma * sigma_data / (sigma**2 + sd2).sqrt()
    c_in = 1 / (sigma**2 + sd2).sqrt()
    return c_skip, c_out, c_in, sigma.log() / 4
