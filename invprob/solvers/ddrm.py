"""DDRM — Denoising Diffusion Restoration Models (Kawar, Elad, Ermon & Song, NeurIPS 2022)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..sampling import ddim_grid
from .base import SolveContext, Solver, State, Tunable

__all__ = ["DDRM"]


@dataclass(kw_only=True)
class DDRMState(State):
    """DDRM state; ``x`` is the σ-space iterate ``x_t / sqrt(ᾱ_t)`` (the paper's ``x_t``)."""


class DDRM(Solver):
    r"""Variational posterior sampling in the spectral domain of the operator's SVD.

    With ``A = U diag(s) Vᵀ``, measurement noise σ_y, the denoiser's ``x̂0 = D(x, σ_t)`` and
    ``ε = (x − x̂0)/σ_t``, each step to the next level ``σ'`` sets every spectral coordinate
    ``i`` of the next iterate (``c = Vᵀ x̂0``, ``ȳ = Uᵀ y``, ``z`` fresh noise, η = ``eta``,
    η_b = ``eta_b``):

    .. math::
        \text{null } (s_i = 0):\ & c_i + \sigma'\sqrt{1-\eta^2}\,(V^\top\varepsilon)_i + \eta\sigma' z_i \\
        s_i\sigma' < \sigma_y:\ & c_i + \sigma'\sqrt{1-\eta^2}\,(\bar y_i - s_i c_i)/\sigma_y + \eta\sigma' z_i \\
        s_i\sigma' > \sigma_y:\ & \eta_b\,\bar y_i/s_i + (1-\eta_b)\,c_i
            + \sqrt{\sigma'^2 - \eta_b^2\sigma_y^2/s_i^2}\; z_i

    (the complement of the SVD's range follows the null-space rule), and the first iterate is
    ``ȳ_i/s_i + sqrt(σ_T² − σ_y²/s_i²) z_i`` where ``s_i σ_T > σ_y``, ``σ_T z_i`` elsewhere — the
    official ``efficient_generalized_steps`` (``functions/denoising.py``) in σ-space, with
    ``σ_0`` there equal to σ_y here (the official code doubles its ``--sigma_0`` because it is
    given in [0, 1] units; σ_y here is already in the units of ``y``). The official code starts
    the VP variable at ``V(init)/σ_T`` for ``sqrt(ᾱ_T) V(init)``; here the σ-space start is
    exact (they differ by a factor ``sqrt(1 + σ_T²)/σ_T − 1 < 10⁻⁴``). The last step has
    ``σ' = 0`` and returns ``x̂0``. No clamp of ``x̂0`` (none in the official code).

    NFE per sample = ``num_steps``; one ``Vᵀ`` / ``V`` application and one ``Uᵀ y`` per step, no
    forward-operator call. Needs an operator with an SVD and Gaussian noise.

    Args:
        eta: η, the stochasticity of the null-space and low-noise coordinates (0.85: the
            ``--eta`` of the usage example in the official ``README.md``, used for both of the
            code's ``etaA`` and ``etaC``).
        eta_b: η_b, the weight of the measurement in the high-noise coordinates (1.0: ``--etaB``
            of the same example).
        num_steps: sampling steps, ``range(0, T, T // N)`` walked in reverse (20: ``--timesteps``
            of the same example).
        num_timesteps, beta_start, beta_end: the linear β schedule (1000, 1e-4, 0.02).

    References:
        | Denoising Diffusion Restoration Models (Kawar, Elad, Ermon & Song, NeurIPS 2022)
        | https://arxiv.org/abs/2201.11793 — official code: https://github.com/bahjat-kawar/ddrm

    Measured against exact posteriors: ``benchmarks/results/posterior_gmm_seed7.md``.
    """

    requires = ("svd", "gaussian_noise")
    tunables = {"eta": Tunable(scale="linear", width=0.15, bounds=(0.0, 1.0)),
                "eta_b": Tunable(scale="linear", width=0.3, bounds=(0.0, 1.0))}

    def __init__(self, eta: float = 0.85, eta_b: float = 1.0, num_steps: int = 20, num_timesteps: int = 1000,
                 beta_start: float = 1e-4, beta_end: float = 0.02) -> None:
        if not 0 <= eta <= 1 or not 0 <= eta_b <= 1:
            raise ValueError(f"`eta` and `eta_b` must be in [0, 1], got {eta} and {eta_b}.")
        self.eta, self.eta_b = float(eta), float(eta_b)
        self.num_steps, self.sigmas = ddim_grid(num_steps, num_timesteps, beta_start, beta_end)  # T − T/N down, then 0

    @property
    def nfe_per_sample(self) -> int:
        return self.num_steps

    @staticmethod
    def _spectrum(state: State):
        """The SVD, its singular values per row ``(B, r)``, where they are non-zero, and ``Uᵀ y / s``."""
        svd = state.problem.operator.svd()
        B = state.x.shape[0]
        s = svd.values_per_row(B, state.x.dtype)
        nonzero = s > 0
        safe = torch.where(nonzero, s, torch.ones_like(s))
        return svd, s, nonzero, safe, svd.Ut(state.measurement)

    def start(self, context: SolveContext) -> DDRMState:
        state = context.new_state(DDRMState, context.zeros(), self.sigmas[0])
        svd, s, nonzero, safe, uty = self._spectrum(state)
        sigma_T, sigma_y = self.sigmas[0], state.problem.noise.sigma
        z = self.randn(state, step=-1)
        zc = svd.Vt(z)
        informed = nonzero & (s * sigma_T > sigma_y)
        spread = (sigma_T**2 - (sigma_y / safe) ** 2).clamp_min(0).sqrt()
        coords = torch.where(informed, uty / safe + spread * zc, sigma_T * zc)
        # V(coords) + σ_T (z − V Vᵀz), with one V: the coordinates differ from σ_T Vᵀz only where informed
        return state.replace(x=sigma_T * z + svd.V(coords - sigma_T * zc))

    @torch.no_grad()
    def step(self, state: DDRMState, i: int) -> DDRMState:
        sigma, sigma_next, B = self.sigmas[i], self.sigmas[i + 1], state.x.shape[0]
        x0 = state.prior.denoise(state.x, state.x.new_full((B,), sigma))
        eps = (state.x - x0) / sigma
        svd, s, nonzero, safe, uty = self._spectrum(state)
        sigma_y = state.problem.noise.sigma
        z = self.randn(state, step=i)
        c, ce, cz = svd.Vt(x0), svd.Vt(eps), svd.Vt(z)
        std, tilde = self.eta * sigma_next, sigma_next * (1 - self.eta**2) ** 0.5
        null = c + tilde * ce + std * cz
        low = nonzero & (s * sigma_next < sigma_y)  # the data are noisier than the next level
        high = nonzero & (s * sigma_next > sigma_y)  # the next level is noisier than the data
        from_data = c + tilde * (uty - s * c) / max(sigma_y, 1e-300) + std * cz
        b = self.eta_b
        spread = (sigma_next**2 - (b * sigma_y / safe) ** 2).clamp_min(0).sqrt()
        towards_y = b * uty / safe + (1 - b) * c + spread * cz
        coords = torch.where(high, towards_y, torch.where(low, from_data, null))
        # V(coords) + the null-space part (I − VVᵀ)(x̂0 + tilde ε + std z), with one V: V is linear and
        # Vᵀ(x̂0 + tilde ε + std z) = null, so only V(coords − null) is left (a few batch-sized temporaries)
        x_next = x0 + tilde * eps + std * z + svd.V(coords - null)
        return state.replace(x=x_next, x0_hat=x0, sigma=x_next.new_full((B,), sigma_next))

    def result(self, state: DDRMState) -> Tensor:
        x = state.x0_hat.detach()
        return x.reshape(state.num_measurements, state.num_samples, *x.shape[1:])
