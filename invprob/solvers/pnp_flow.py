"""PnP-Flow — plug-and-play restoration with flow matching (Martin, Gagneux, Delon & Chambolle, ICLR 2025)."""

from __future__ import annotations

import torch

from ..checks import check_int
from .base import SolveContext, Solver, Tunable
from .flow import FlowState, data_gradient, sigma_of, top_time

__all__ = ["PnPFlow"]


class PnPFlow(Solver):
    r"""Plug-and-play forward–backward splitting with the flow-matching denoiser: a gradient step
    on the data fit, a jump onto the flow path at the current time, and the path's denoiser.

    At ``t_n = 1 − n/N`` (``n = 0 … N−1``; ``t = 1`` pure noise),

    .. math::
        z = x - \gamma\, t_n^{\alpha}\, \nabla \tfrac12 \lVert A(x) - y \rVert^2, \qquad
        x \leftarrow \frac1J \sum_{j=1}^{J} \hat x_0\big((1 - t_n)\, z + t_n\, \varepsilon_j,\ t_n\big),

    ``x̂0(·, t)`` the flow denoiser (:meth:`~invprob.priors.Prior.flow_denoise`) and ``ε_j`` fresh
    noise for each of the ``J`` draws. This is the official ``methods/pnp_flow.py`` of
    annegnx/PnP-Flow (lines 93–121) in the flow time ``t = 1 − t'`` of its code: ``t' = n/N``,
    ``lr_t = lr·(1 − t')^α`` (``gamma_style: alpha_1_minus_t``, lines 29–37; the code scales
    ``lr`` by ``σ_y²`` and the gradient by ``1/σ_y²``, which cancel), the interpolation
    ``t' z + (1 − t') ε`` and the denoiser ``z̃ + (1 − t') v`` averaged over ``num_samples`` draws.
    The last average (at ``t_{N−1} = 1/N``) is the sample. A prior that is not a velocity network
    starts at ``t_0 = 1 − 10⁻⁵`` instead of 1 (:data:`invprob.solvers.flow.TOP`); the start
    point is then irrelevant to within 10⁻⁵, as it is exactly for a flow prior.

    NFE per sample = ``num_steps × num_draws``; one forward-operator call per step (and its
    adjoint, or its gradient for a nonlinear operator). Needs a differentiable operator.

    Args:
        alpha: the step-size exponent α (1.0: ``config/method_config/pnp_flow.yaml``; the
            per-task values of ``scripts/script_test.sh`` are the ``pnp-flow-*`` presets).
        lr: γ, the base step (1.0: ``lr_pnp`` of ``pnp_flow.yaml`` and every test run).
        num_steps: ``N`` (100: ``steps_pnp``).
        num_draws: ``J``, the noise draws averaged per step (5: ``num_samples``).

    References:
        | PnP-Flow: Plug-and-play image restoration with flow matching
        | (Martin, Gagneux, Delon & Chambolle, ICLR 2025) https://arxiv.org/abs/2410.02423
        | Official implementation: https://github.com/annegnx/PnP-Flow (``pnpflow/methods/pnp_flow.py``)

    Measured against exact posteriors: ``benchmarks/results/posterior_gmm_flow_seed7.md``.
    """

    requires = ("differentiable",)
    tunables = {"alpha": Tunable(factor=10.0), "lr": Tunable(factor=10.0)}

    def __init__(self, alpha: float = 1.0, lr: float = 1.0, num_steps: int = 100, num_draws: int = 5) -> None:
        if not alpha >= 0:
            raise ValueError(f"`alpha` must be >= 0, got {alpha}.")
        if not lr >= 0:
            raise ValueError(f"`lr` must be >= 0, got {lr}.")
        self.alpha, self.lr = float(alpha), float(lr)
        self.num_steps = check_int(num_steps, "num_steps", 1)
        self.num_draws = check_int(num_draws, "num_draws", 1)

    @property
    def nfe_per_sample(self) -> int:
        return self.num_steps * self.num_draws

    def start(self, context: SolveContext) -> FlowState:
        return context.new_state(FlowState, context.zeros(), sigma_of(1.0))

    def step(self, state: FlowState, i: int) -> FlowState:
        t = min(1 - i / self.num_steps, top_time(state.prior))
        with torch.no_grad():
            z = state.x - self.lr * t**self.alpha * data_gradient(state.problem, state.x, state.measurement)
            x = torch.zeros_like(z)
            for j in range(self.num_draws):
                noisy = (1 - t) * z + t * self.chain_noise(state, i, self.num_draws, j)
                x = x + state.prior.flow_denoise(noisy, t)
            x = x / self.num_draws
        return state.replace(x=x, x0_hat=x, sigma=x.new_full((x.shape[0],), sigma_of(t)))
