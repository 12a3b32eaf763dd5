"""DiffPIR — Denoising Diffusion Models for Plug-and-Play Image Restoration (Zhu et al., CVPR 2023)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..checks import check_int
from ..sampling import ddpm_alphas_cumprod, sigma_from_alphas_cumprod
from .base import SolveContext, Solver, State, Tunable

__all__ = ["DiffPIR", "quad_timesteps"]


def quad_timesteps(num_timesteps: int, num_steps: int) -> list[int]:
    """DiffPIR's ``skip_type='quad'`` timesteps, descending from ``T − 1`` to 0 and dense near 0:
    ``t_i = T − 1 − ⌊sqrt(i T² / (N − 1))⌋`` (the last one set to 0), as the official scripts'
    ``seq = sqrt(linspace(0, T², N)); seq[-1] -= 1``."""
    if num_steps < 2:
        raise ValueError(f"`num_steps` must be >= 2 for DiffPIR's schedule, got {num_steps}.")
    seq = [int(math.sqrt(v)) for v in torch.linspace(0, num_timesteps**2, num_steps, dtype=torch.float64).tolist()]
    seq[-1] -= 1
    return [num_timesteps - 1 - s for s in seq]


@dataclass(kw_only=True)
class DiffPIRState(State):
    """DiffPIR state; ``x`` is the σ-space iterate ``x_t / sqrt(ᾱ_t)``."""


class DiffPIR(Solver):
    r"""Plug-and-play diffusion: denoise, solve the data proximal problem, re-noise.

    With the quadratic timestep schedule ``t_0 = T − 1 > … > t_{N−1} = 0`` and
    ``σ_i = sqrt((1 − ᾱ_{t_i}) / ᾱ_{t_i})`` (σ-space of the linear-β DDPM), each step ``i``:

    .. math::
        \hat x_0 = D(x, \sigma_i), \quad
        \tilde x_0 = \arg\min_u \lVert y - A u\rVert^2 + \rho_i \lVert u - \hat x_0\rVert^2,\ 
        \rho_i = \lambda \frac{\sigma_n^2}{\sigma_i^2}, \quad
        x \leftarrow \tilde x_0 + \sigma_{i+1}\Big(\sqrt{1-\zeta}\,\frac{x - \tilde x_0}{\sigma_i}
            + \sqrt{\zeta}\,z\Big).

    The re-noising mixes the ε the corrected ``x̃0`` implies with fresh noise (ζ = 1: all fresh).
    ``σ_n`` is the noise level in the official code's [0, 1] units: with our [-1, 1] images and
    ``σ_y`` in those units, ``σ_n = σ_y / 2`` (``noise_level_img``; the scripts simulate their
    data with std ``2 · noise_level_img`` in [-1, 1]). As in the official code ``x̂0`` is clamped
    to the prior's data range, and the last step (t = 0) computes ``x̂0`` but returns the iterate
    ``x`` itself (σ ≈ 0.01): NFE per sample = ``num_steps``, the last call unused. The data step
    is the operator's ``prox_data`` (closed form where it exists, conjugate gradients otherwise;
    linear operators only), ``num_steps − 1`` calls and no forward-operator call. The official initialisation adds ``√ᾱ_T/√ᾱ_{t_y} y`` to pure noise; at
    ``σ_{T−1} ≈ 157`` that term is negligible, and we start from pure noise ``σ_0 z``.

    Args:
        lambda_: λ (7: the deblurring sweep that the official ``main_ddpir_deblur.py`` runs,
            ``lambda_ = 1 × 7``; inpainting 1, preset ``diffpir-inpainting``).
        zeta: ζ (0.3: deblurring, ``zeta = 0.1 × 3``; 4× SR 0.25, ``configs/sisr.yaml``;
            inpainting 1.0).
        num_steps: NFE (100: deblurring and SR; inpainting 20).
        num_timesteps, beta_start, beta_end: the linear β schedule (1000, 1e-4, 0.02).
        noise_sigma: ``σ_n`` in the official [0, 1] units; ``None`` (default) takes ``σ_y / 2`` from
            the problem's Gaussian noise model, with the official floor of 0.001.

    References:
        | Denoising Diffusion Models for Plug-and-Play Image Restoration
        | (Zhu, Zhang, Liang, Cao, Wen, Timofte & Van Gool, CVPR 2023) https://arxiv.org/abs/2305.08995
        | Official code: https://github.com/yuanzhi-zhu/DiffPIR

    Measured against exact posteriors: ``benchmarks/results/posterior_gmm_seed7.md``.
    """

    requires = ("linear", "gaussian_noise")
    tunables = {"lambda_": Tunable(factor=10.0), "zeta": Tunable(scale="linear", width=0.7, bounds=(0.0, 1.0))}

    def __init__(self, lambda_: float = 7.0, zeta: float = 0.3, num_steps: int = 100, num_timesteps: int = 1000,
                 beta_start: float = 1e-4, beta_end: float = 0.02, noise_sigma: float | None = None) -> None:
        if not lambda_ > 0:
            raise ValueError(f"`lambda_` must be > 0, got {lambda_}.")
        if not 0 <= zeta <= 1:
            raise ValueError(f"`zeta` must be in [0, 1], got {zeta}.")
        if noise_sigma is not None and not noise_sigma > 0:
            raise ValueError(f"`noise_sigma` must be > 0 or None (from the problem), got {noise_sigma}.")
        self.lambda_, self.zeta, self.noise_sigma = float(lambda_), float(zeta), noise_sigma
        self.num_steps = check_int(num_steps, "num_steps", 2)
        num_timesteps = check_int(num_timesteps, "num_timesteps", self.num_steps)
        abar = ddpm_alphas_cumprod(num_timesteps, beta_start, beta_end)
        self.timesteps = quad_timesteps(num_timesteps, self.num_steps)
        self.sigmas = [sigma_from_alphas_cumprod(float(abar[t])) for t in self.timesteps]

    @property
    def nfe_per_sample(self) -> int:
        return self.num_steps

    def _sigma_n(self, noise) -> float:
        # main_ddpir_*.py: sigma = max(0.001, noise_level_img), in [0, 1] units
        return self.noise_sigma if self.noise_sigma is not None else max(0.001, noise.sigma / 2)

    def start(self, context: SolveContext) -> DiffPIRState:
        state = context.new_state(DiffPIRState, context.zeros(), self.sigmas[0])
        return state.replace(x=self.sigmas[0] * self.randn(state, step=-1))

    @torch.no_grad()
    def step(self, state: DiffPIRState, i: int) -> DiffPIRState:
        sigma, B = self.sigmas[i], state.x.shape[0]
        x0_hat = state.prior.denoise(state.x, state.x.new_full((B,), sigma))
        if state.prior.data_range is not None:
            x0_hat = x0_hat.clamp(*state.prior.data_range)  # clip_denoised=True in the official code
        if i == self.num_steps - 1:  # t = 0: the official loop returns x, not this x̂0
            return state.replace(x0_hat=x0_hat)
        # Data step: argmin ‖y − Au‖² + ρ‖u − x̂0‖², ρ = λ σ_n² / σ_t² ([0, 1] units, as the official code)
        rho = self.lambda_ * self._sigma_n(state.problem.noise) ** 2 / sigma**2
        x0_data = state.problem.operator.prox_data(x0_hat, state.measurement, rho)
        # Re-noise to the next level: ε implied by the corrected x̃0, mixed with fresh noise by ζ
        sigma_next = self.sigmas[i + 1]
        eps = (state.x - x0_data) / sigma
        z = self.randn(state, step=i)
        x_next = x0_data + sigma_next * ((1 - self.zeta) ** 0.5 * eps + self.zeta**0.5 * z)
        return state.replace(x=x_next, x0_hat=x0_data, sigma=x_next.new_full((B,), sigma_next))
