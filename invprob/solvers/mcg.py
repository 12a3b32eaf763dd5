"""MCG — Manifold Constrained Gradients (Chung et al., NeurIPS 2022), Algorithm 1."""

from __future__ import annotations

import torch

from ..errors import UnsupportedProblemError
from .dps import DPS, DPSState

__all__ = ["MCG"]


class MCG(DPS):
    r"""DPS-like manifold-constrained gradient followed by a projection onto the noisy data.

    Each reverse step at timestep ``t``:

    .. math::
        x'_{t-1} = \mathrm{DDPM}(x_t, \hat x_0) - \zeta \nabla_{x_t}\lVert y - A\hat x_0\rVert, \qquad
        x_{t-1} = x'_{t-1} - A^+\big(A x'_{t-1} - y_{t-1}\big),

    with the noisy measurement ``y_{t−1} = sqrt(ᾱ_{t−1}) y + sqrt(1 − ᾱ_{t−1}) A ε`` (the
    forward process pushed through ``A``, so for inpainting the observed pixels are replaced
    by the noised data as in the paper). The projection is exact for any operator with a
    pseudo-inverse; MCG refuses operators without one at ``init``. It ignores the
    measurement noise (hard consistency), which costs accuracy when σ_y is not small.

    NFE per sample = ``num_steps``; three operator calls (``A x̂₀``, ``A ε`` for the noisy data,
    ``A x'``; two on the last step, whose data are not noised) and one ``pinv`` per step.

    The projection applies ``A⁺`` to a residual that holds the measurement noise, so an
    ill-conditioned ``A⁺`` amplifies that noise by up to the condition number of ``A`` on the
    range ``A⁺`` inverts (e.g. ~10⁶ for a circular Gaussian blur). For operators with an SVD,
    ``init`` refuses a condition number above ``MAX_CONDITION`` = 10³ and names DPS as the
    alternative.

    Measured against the exact posterior of the GMM test bed (ζ = 1 and preset
    ``mcg-gmm-tuned``): ``benchmarks/results/posterior_gmm_seed7.md``; on Set12, where the
    projection keeps the noise of the observed pixels: ``benchmarks/results/restoration_set12.md``.

    Args:
        scale: gradient step ζ (the DPS code's ``mcg`` conditioning uses its ``scale``
            parameter, default 1.0, on the residual *norm*).
        num_steps, num_timesteps, beta_start, beta_end, clip_denoised: as :class:`DPS`.

    References:
        | Improving Diffusion Models for Inverse Problems using Manifold Constraints
        | (Chung, Sim, Ryu & Ye, 2022) https://arxiv.org/abs/2206.00941
    """

    requires = ("differentiable", "linear", "pinv")
    MAX_CONDITION = 1e3

    def check(self, problem, prior) -> None:
        super().check(problem, prior)
        op = problem.operator
        if op.has_svd:
            s = op.svd().singular_values.abs()
            kept = s[s > 1e-6 * s.max()]  # what the operators' pinv inverts (rcond 1e-6)
            condition = float(kept.max() / kept.min()) if kept.numel() else 1.0
            if condition > self.MAX_CONDITION:
                raise UnsupportedProblemError(
                    f"MCG projects with the pseudo-inverse, and {type(op).__name__}'s is ill-conditioned (condition "
                    f"number {condition:.2g} > {self.MAX_CONDITION:g}): it would amplify the measurement noise as "
                    f"much; use a solver without the projection, e.g. 'dps'.")

    def step(self, state: DPSState, i: int) -> DPSState:
        x_prev, x0_hat, norm = self.guided_step(state, i)
        operator = state.problem.operator
        abar_prev = self.schedule.abar_prev[i]
        noisy_y = abar_prev**0.5 * state.measurement
        if i < self.num_steps - 1:
            noisy_y = noisy_y + (1 - abar_prev) ** 0.5 * operator(self.randn(state, step=i, stream=1))
        # Projection onto {x : A x = y_{t−1}} (scaled to the VP variable x_{t−1}).
        with torch.no_grad():
            x_prev = x_prev - operator.pinv(operator(x_prev) - noisy_y)
        sigma = x_prev.new_full((x_prev.shape[0],), self.schedule.sigma_prev(i))
        return state.replace(x=x_prev, x0_hat=x0_hat, sigma=sigma, residual_norm=norm)
