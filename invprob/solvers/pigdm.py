"""ΠGDM — Pseudoinverse-Guided Diffusion Models (Song, Vahdat, Mardani & Kautz, ICLR 2023)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..checks import check_int
from ..linalg import conjugate_gradient
from ..sampling import ddim_grid
from .base import SolveContext, Solver, State, Tunable

__all__ = ["PiGDM", "regularised_pinv"]


def regularised_pinv(state: State, residual: Tensor, r2: float, cg_iterations: int) -> Tensor:
    """``Aᵀ (r² AAᵀ + σ_y² I)⁻¹ residual`` ``(B, *x_shape)``: exact in the operator's SVD where it
    has one, else ``cg_iterations`` conjugate-gradient iterations (ΠGDM's and OT-ODE's guidance)."""
    op, var_y = state.problem.operator, state.problem.noise.sigma ** 2
    if op.has_svd:
        svd = op.svd()
        s = svd.values_per_row(residual.shape[0], state.x.dtype)
        gain = torch.where(s > 0, s / (r2 * s**2 + var_y).clamp_min(torch.finfo(s.dtype).tiny), torch.zeros_like(s))
        return svd.V(gain * svd.Ut(residual))
    return op.adjoint(conjugate_gradient(lambda p: r2 * op(op.adjoint(p)) + var_y * p, residual, cg_iterations))


@dataclass(kw_only=True)
class PiGDMState(State):
    """ΠGDM state; ``x`` is the σ-space iterate ``x_t / sqrt(ᾱ_t)``."""


class PiGDM(Solver):
    r"""DDIM with pseudo-inverse guidance through the denoiser's vector–Jacobian product.

    On DDIM-spaced timesteps (σ-space levels ``σ_t``, then ``σ = 0``), each step with
    ``x̂0 = D(x_t, σ_t)``, ``ε = (x_t − x̂0)/σ_t`` and the paper's ``r_t² = σ_t² / (1 + σ_t²)``:

    .. math::
        v = r_t^2 A^\top (r_t^2 A A^\top + \sigma_y^2 I)^{-1} (y - A\hat x_0), \qquad
        g = \Big(\frac{\partial \hat x_0}{\partial x_t}\Big)^{\!\top} v, \\
        x_s = \hat x_0 + \sqrt{\sigma_s^2 - c^2}\,\varepsilon + c\,z + w\,g, \qquad
        c = \eta\,\sigma_s \sqrt{1 - \sigma_s^2/\sigma_t^2},

    ``v`` held fixed in the product (a stop-gradient). With ``σ_y = 0``, ``v = A⁺(y − A x̂0)``: the
    noiseless pseudo-inverse guidance of the official ``algos/pgdm.py`` (NVlabs/RED-diff, with
    ``awd=True``, whose weight ``sqrt(ᾱ_s ᾱ_t) w`` on the VP variable is exactly ``w`` in σ-space);
    with ``σ_y > 0`` the paper's noisy-measurement form (its ``(r_t² AAᵀ + σ_y² I)⁻¹``, which that
    code omits). The inverse is taken in the operator's SVD where it has one, exactly; otherwise
    by conjugate gradients on ``r_t² AAᵀ + σ_y² I`` (``cg_iterations``). The last step
    (``σ_s = 0``) returns ``x̂0 + w g``. Starts from pure noise (the official start adds
    ``sqrt(ᾱ_T) A⁺y``, ``sqrt(ᾱ_T) ≈ 0.006``); no clamp of ``x̂0`` (none in the official code); the
    official inpainting-only replacement of the observed pixels is not applied.

    NFE per sample = ``num_steps`` (one denoiser call and one backpropagation through it per
    step); one forward-operator call per step, plus ``cg_iterations`` (and as many adjoints)
    where the operator has no SVD. Needs a linear operator and Gaussian noise.

    Args:
        eta: DDIM's η (1.0: the ``algo.eta=1.0`` of every ΠGDM run in the official
            ``sample_test.sh`` and ``sample_batch.sh``; the YAML default 0.0 is not run).
        weight: ``w``, the guidance weight (1.0: ``grad_term_weight`` of
            ``_configs/algo/pgdm.yaml``).
        num_steps: sampling steps on ``range(0, T, T // N)`` walked in reverse (100: the
            official README's ``num_steps=100``).
        cg_iterations: CG iterations for operators without an SVD (20).
        num_timesteps, beta_start, beta_end: the linear β schedule (1000, 1e-4, 0.02).

    References:
        | Pseudoinverse-Guided Diffusion Models for Inverse Problems
        | (Song, Vahdat, Mardani & Kautz, ICLR 2023) https://openreview.net/forum?id=9_gsMA8MRKQ
        | Official implementation: https://github.com/NVlabs/RED-diff (``algos/pgdm.py``)

    Measured against exact posteriors: ``benchmarks/results/posterior_gmm_families.md``.
    """

    requires = ("linear", "gaussian_noise")
    tunables = {"weight": Tunable(factor=10.0)}

    def __init__(self, eta: float = 1.0, weight: float = 1.0, num_steps: int = 100, cg_iterations: int = 20,
                 num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> None:
        if not 0 <= eta <= 1:
            raise ValueError(f"`eta` must be in [0, 1], got {eta}.")
        if not weight >= 0:
            raise ValueError(f"`weight` must be >= 0, got {weight}.")
        self.eta, self.weight = float(eta), float(weight)
        self.num_steps, self.sigmas = ddim_grid(num_steps, num_timesteps, beta_start, beta_end)
        self.cg_iterations = check_int(cg_iterations, "cg_iterations", 1)

    @property
    def nfe_per_sample(self) -> int:
        return self.num_steps

    def start(self, context: SolveContext) -> PiGDMState:
        return self.start_from_vp_noise(context, PiGDMState, self.sigmas[0])

    def guidance_vector(self, state: State, residual: Tensor, r2: float) -> Tensor:
        """``v = r² Aᵀ (r² AAᵀ + σ_y² I)⁻¹ residual`` ``(B, *x_shape)`` (``A⁺ residual`` when σ_y = 0)."""
        return r2 * regularised_pinv(state, residual, r2, self.cg_iterations)

    def step(self, state: PiGDMState, i: int) -> PiGDMState:
        sigma, sigma_next, B = self.sigmas[i], self.sigmas[i + 1], state.x.shape[0]
        x = state.x.detach().requires_grad_(True)
        with torch.enable_grad():
            x0 = state.prior.denoise(x, x.new_full((B,), sigma))
            with torch.no_grad():
                v = self.guidance_vector(state, state.measurement - state.problem.operator(x0), sigma**2 / (1 + sigma**2))
            (g,) = torch.autograd.grad(x0, x, grad_outputs=v)
        x0 = x0.detach()
        eps = (state.x - x0) / sigma
        c = self.eta * sigma_next * max(0.0, 1 - sigma_next**2 / sigma**2) ** 0.5
        x_next = x0 + (sigma_next**2 - c**2) ** 0.5 * eps + self.weight * g
        if c > 0:
            x_next = x_next + c * self.randn(state, step=i)
        return state.replace(x=x_next, x0_hat=x0, sigma=x_next.new_full((B,), sigma_next))
