"""OT-ODE — training-free linear inverse problems with flows (Pokle, Muckley, Chen & Karrer, TMLR 2024)."""

from __future__ import annotations

import math

import torch

from ..checks import check_int
from .base import SolveContext, Solver, Tunable
from .flow import FlowState, sigma_of
from .pigdm import regularised_pinv

__all__ = ["OTODE"]

GAMMAS = ("constant", "gamma_t")


class OTODE(Solver):
    r"""Euler steps of the conditional-OT flow ODE with ΠGDM's pseudo-inverse guidance added to
    the velocity, from a start part-way along the path.

    In the time ``τ = 1 − t`` of the paper and of its reference code (``τ = 0`` noise, ``τ = 1``
    data), starting from ``x = τ₀ Aᵀy + (1 − τ₀) ε`` and stepping ``τ`` from ``τ₀`` to 1 by
    ``δ = (1 − τ₀)/N``, each step with ``x̂ = x̂0(x, t)`` (one NFE,
    :meth:`~invprob.priors.Prior.flow_denoise`), ``r_τ² = (1 − τ)² / (τ² + (1 − τ)²)`` and
    ``u = (x̂ − x)/(1 − τ)`` (the velocity towards the data):

    .. math::
        g = \Big(\frac{\partial \hat x}{\partial x}\Big)^{\!\top} A^\top (r_\tau^2 A A^\top
            + \sigma_y^2 I)^{-1} (y - A \hat x), \qquad
        x \leftarrow x + \delta\Big(u + \frac{1 - \tau}{\tau}\, \gamma_\tau\, g\Big),

    ``γ_τ = 1`` (``constant``) or ``sqrt(τ / (τ² + (1 − τ)²))`` (``gamma_t``). This is
    ``pnpflow/methods/ot_ode.py`` of annegnx/PnP-Flow (lines 27–28 the start, 63–145 the loop),
    the implementation the PnP-Flow paper compares with (no official code of Pokle et al. is
    public): its grid ``τ = k/100`` for ``k = int(100 τ₀) … 99`` is ``N = 100 (1 − τ₀)`` steps
    here. The inverse is taken in the operator's SVD where it has one, exactly; otherwise by
    ``cg_iterations`` conjugate-gradient iterations (the code has closed forms per operator and
    GMRES otherwise). Deviation: its super-resolution branch computes
    ``r² = (1−τ)²/((1−τ)² + δ k²)`` (``delta * iteration**2``, line 96), a slip not reproduced.

    NFE per sample = ``num_steps`` (one denoiser call and one backpropagation through it per
    step); one forward-operator call per step, plus ``cg_iterations`` (and as many adjoints)
    where the operator has no SVD. Needs a linear operator and Gaussian noise.

    Args:
        start_time: ``τ₀`` (0.2: ``start_time`` of ``config/method_config/ot_ode.yaml``; the
            per-task values of ``scripts/script_test.sh`` are the ``ot-ode-*`` presets). With
            ``num_steps`` fixed, another ``τ₀`` changes the step ``δ``; the reference keeps
            ``δ = 0.01`` and changes the number of steps (``num_steps = 100 (1 − τ₀)``).
        gamma: ``"constant"`` (the YAML default) or ``"gamma_t"``.
        num_steps: Euler steps from ``τ₀`` to 1 (80: ``steps_ode: 100`` started at ``τ₀ = 0.2``).
        cg_iterations: CG iterations for operators without an SVD (20).

    References:
        | Training-free Linear Image Inverses via Flows (Pokle, Muckley, Chen & Karrer, TMLR 2024)
        | https://arxiv.org/abs/2310.04432
        | Reference implementation: https://github.com/annegnx/PnP-Flow (``pnpflow/methods/ot_ode.py``)

    Measured against exact posteriors: ``benchmarks/results/posterior_gmm_flow_seed7.md``.
    """

    requires = ("linear", "gaussian_noise")
    tunables = {"start_time": Tunable(scale="linear", width=0.15, bounds=(0.01, 0.9))}

    def __init__(self, start_time: float = 0.2, gamma: str = "constant", num_steps: int = 80,
                 cg_iterations: int = 20) -> None:
        if not 0 < start_time < 1:
            raise ValueError(f"`start_time` (τ₀) must be in (0, 1), got {start_time}.")
        if gamma not in GAMMAS:
            raise ValueError(f"`gamma` must be one of {GAMMAS}, got {gamma!r}.")
        self.start_time, self.gamma = float(start_time), gamma
        self.num_steps = check_int(num_steps, "num_steps", 1)
        self.cg_iterations = check_int(cg_iterations, "cg_iterations", 1)

    @property
    def nfe_per_sample(self) -> int:
        return self.num_steps

    def tau(self, i: int) -> float:
        """``τ`` of step ``i`` (``τ₀ + i δ``)."""
        return self.start_time + i * (1 - self.start_time) / self.num_steps

    def start(self, context: SolveContext) -> FlowState:
        tau0 = self.start_time
        state = context.new_state(FlowState, context.zeros(), sigma_of(1 - tau0))
        init = context.problem.operator.adjoint(context.measurement)
        return state.replace(x=tau0 * init + (1 - tau0) * self.randn(state, step=-1))

    def step(self, state: FlowState, i: int) -> FlowState:
        tau, delta, B = self.tau(i), (1 - self.start_time) / self.num_steps, state.x.shape[0]
        t = 1 - tau
        x = state.x.detach().requires_grad_(True)
        with torch.enable_grad():
            x0 = state.prior.flow_denoise(x, t)
            with torch.no_grad():
                r2 = t**2 / (t**2 + tau**2)
                vec = regularised_pinv(state, state.measurement - state.problem.operator(x0), r2, self.cg_iterations)
            (g,) = torch.autograd.grad(x0, x, grad_outputs=vec)
        x0 = x0.detach()
        gamma = 1.0 if self.gamma == "constant" else math.sqrt(tau / (tau**2 + t**2))
        x_next = state.x + delta * ((x0 - state.x) / t + t / tau * gamma * g)
        return state.replace(x=x_next, x0_hat=x0, sigma=x_next.new_full((B,), sigma_of(t - delta)))
