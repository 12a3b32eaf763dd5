"""D-Flow — controlled generation by differentiating through the flow (Ben-Hamu, Puny, Gat, Karrer, Singer & Lipman, ICML 2024)."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..checks import check_int
from ..operators.base import squared_residual
from .base import SolveContext, Solver, Tunable
from .flow import FlowState, velocity

__all__ = ["DFlow"]

#: where the inversion of the start image begins (the path's data end, t = 0, has no velocity
#: for a σ-space denoiser: σ = 0)
INVERSION_START = 1e-3


@dataclass(kw_only=True)
class DFlowState(FlowState):
    """D-Flow state: ``x = T(z)``, the image the flow carries the source ``z`` to.

    Attributes:
        z: the source noise being optimised ``(B, *x_shape)``.
        loss, grad: the objective at ``z`` ``(B,)`` and its gradient ``(B, *x_shape)``.
        direction, step_length: the pending L-BFGS direction and its trial step per row.
        fresh: rows whose next direction is new (their last trial was accepted) ``(B,)`` bool.
        converged: rows whose gradient met the tolerance (frozen for good) ``(B,)`` bool.
        stalled: rows whose rejected trial step was below the tolerance (frozen until the next
            outer step, which restarts them along a new direction) ``(B,)`` bool.
        history: L-BFGS pairs ``(s, y, ρ)`` (flat ``(B, n)``, ``ρ = 0`` where the pair is not one of
            the row's last ``history_size`` kept pairs), oldest first; ``h_diag``: the initial
            inverse-Hessian scale per row.
        iterations: L-BFGS iterations done.
    """

    z: Tensor
    loss: Tensor
    grad: Tensor
    direction: Tensor
    step_length: Tensor
    fresh: Tensor
    converged: Tensor
    stalled: Tensor
    history: tuple = ()
    h_diag: Tensor
    iterations: int = 0


class DFlow(Solver):
    r"""Optimise the source noise ``z`` of a few-step flow ODE so that the image it generates
    fits the measurement, with a Gaussian-shell regulariser on ``z``.

    .. math::
        \min_z\ \lVert A(T(z)) - y \rVert^2 + \lambda\Big(\tfrac12 \lVert z \rVert^2
        - (d - 1) \log \lVert z \rVert\Big),

    ``T`` the explicit-midpoint solution of the flow ODE from ``t = 1`` to 0 in ``ode_steps``
    steps (two NFE each), differentiated by autograd with each network call checkpointed (the
    activations are recomputed in the backward pass, so memory does not grow with
    ``ode_steps``), and ``d`` the number of entries of ``z`` (the χ_d negative log-likelihood of
    ``‖z‖``). ``z`` starts from the blend ``√α T⁻¹(Aᵀy) + √(1 − α) ε``, ``T⁻¹`` the inverse flow
    (``inversion_steps`` midpoint steps from ``t = 10⁻³`` to 1; ``ε`` alone for a nonlinear
    operator, which has no adjoint; the reference starts the inversion at the data end, ``t = 0``,
    where a σ-space denoiser has no velocity). Each of ``num_steps`` steps runs ``lbfgs_iterations``
    L-BFGS iterations (history ``history_size``); the sample is ``T(z)``.

    Defaults are those of ``pnpflow/methods/d_flow.py`` in annegnx/PnP-Flow, the implementation
    the PnP-Flow paper compares with (no official D-Flow code is public): ``steps_euler: 6``
    grid points = 5 midpoint steps, ``lmbda``, the blend ``alpha``, ``max_iter`` outer steps of
    ``LBFGS(max_iter=LBFGS_iter)`` (each also capped at torch's default 25 evaluations),
    ``history_size=100`` (``config/method_config/d_flow.yaml``, lines 85–121
    of the method), the regulariser with the sign of its current code (commit ``da3f625``: the
    χ_d negative log-likelihood; the code of the paper's tables had it reversed). Deviations,
    each so that a sample does not depend on the batch it is drawn in: L-BFGS runs per row
    (the code runs one L-BFGS on the sum over its batch); instead of torch's strong-Wolfe line
    search, whose number of evaluations varies by row, every iteration evaluates one trial
    point per row — step 1 along the L-BFGS direction (torch's ``min(1, 1/‖g‖₁)`` on the first
    iteration), halved along the same direction while the objective does not decrease — so the
    cost is fixed; the inversion uses fixed midpoint steps instead of dopri5 at tolerance 10⁻⁵.
    A row stops for good when ``max |∇| ≤ 10⁻⁷`` (torch's ``tolerance_grad``) and for the rest of
    the outer step when a rejected trial moves ``z`` by at most 10⁻⁹ (its ``tolerance_change``,
    which ends a ``step()`` call); torch's tests on the loss change and on the directional
    derivative have no counterpart. Each row keeps its own last ``history_size`` pairs.

    NFE per sample = ``2·inversion_steps + 2·ode_steps·(1 + num_steps·lbfgs_iterations)`` (without
    the inversion's ``2·inversion_steps`` for a nonlinear operator), each
    objective evaluation also one backpropagation through the ``2·ode_steps`` calls; one
    forward-operator call per evaluation. Needs a differentiable operator.

    Args:
        reg_weight: λ (0.01: ``lmbda`` of ``d_flow.yaml``; the test scripts use 0.001, the
            ``d-flow-*`` presets).
        blend: α of the blended start (0.1: ``alpha``).
        num_steps: outer iterations (20: ``max_iter``; per task 3–20 in ``scripts/script_test.sh``).
        lbfgs_iterations: L-BFGS iterations per outer iteration (20: ``LBFGS_iter``).
        ode_steps: midpoint steps of ``T`` (5: ``steps_euler: 6`` grid points).
        inversion_steps: midpoint steps of ``T⁻¹`` for the start (20).
        history_size: L-BFGS memory (100: the code's ``history_size``).
        gradient_checkpointing: recompute each network call in the backward pass (True).

    References:
        | D-Flow: Differentiating through Flows for Controlled Generation
        | (Ben-Hamu, Puny, Gat, Karrer, Singer & Lipman, ICML 2024) https://arxiv.org/abs/2402.14017
        | Reference implementation: https://github.com/annegnx/PnP-Flow (``pnpflow/methods/d_flow.py``)

    Measured against exact posteriors: ``benchmarks/results/posterior_gmm_flow_seed7.md``.
    """

    requires = ("differentiable",)
    optimiser = True
    tunables = {"reg_weight": Tunable(factor=10.0), "blend": Tunable(scale="linear", width=0.09, bounds=(0.0, 1.0))}

    def __init__(self, reg_weight: float = 0.01, blend: float = 0.1, num_steps: int = 20, lbfgs_iterations: int = 20,
                 ode_steps: int = 5, inversion_steps: int = 20, history_size: int = 100,
                 gradient_checkpointing: bool = True) -> None:
        if not reg_weight >= 0:
            raise ValueError(f"`reg_weight` (λ) must be >= 0, got {reg_weight}.")
        if not 0 <= blend <= 1:
            raise ValueError(f"`blend` (α) must be in [0, 1], got {blend}.")
        self.reg_weight, self.blend = float(reg_weight), float(blend)
        self.num_steps = check_int(num_steps, "num_steps", 1)
        self.lbfgs_iterations = check_int(lbfgs_iterations, "lbfgs_iterations", 1)
        self.ode_steps = check_int(ode_steps, "ode_steps", 1)
        self.inversion_steps = check_int(inversion_steps, "inversion_steps", 1)
        self.history_size = check_int(history_size, "history_size", 1)
        self.gradient_checkpointing = bool(gradient_checkpointing)

    @property
    def nfe_per_sample(self) -> int:
        return 2 * self.inversion_steps + 2 * self.ode_steps * (1 + self.num_steps * self.lbfgs_iterations)

    # -- the flow and its inverse -----------------------------------------------------------
    def _velocity(self, prior, x: Tensor, t: float) -> Tensor:
        if not (self.gradient_checkpointing and x.requires_grad):
            return velocity(prior, x, t)[0]
        from torch.utils.checkpoint import checkpoint

        # the recomputation in backward is not an NFE of the algorithm: no hooks there
        return checkpoint(lambda u: velocity(prior, u, t)[0], x, use_reentrant=False,
                          context_fn=lambda: (contextlib.nullcontext(), prior.suspend_denoise_hooks()))

    def transport(self, prior, z: Tensor) -> Tensor:
        """``T(z)``: midpoint steps of the flow ODE from ``t = 1`` to 0 ``(B, *x_shape)``."""
        x, t, h = z, 1.0, 1.0 / self.ode_steps
        for _ in range(self.ode_steps):
            mid = x - 0.5 * h * self._velocity(prior, x, t)
            x = x - h * self._velocity(prior, mid, t - 0.5 * h)
            t -= h
        return x

    def invert(self, prior, x: Tensor) -> Tensor:
        """``T⁻¹(x)``: midpoint steps of the flow ODE from ``t = 10⁻³`` up to 1 (no gradient)."""
        h = (1.0 - INVERSION_START) / self.inversion_steps
        t = INVERSION_START
        with torch.no_grad():
            for _ in range(self.inversion_steps):
                mid = x + 0.5 * h * velocity(prior, x, t)[0]
                x = x + h * velocity(prior, mid, t + 0.5 * h)[0]
                t += h
        return x

    def objective(self, state: FlowState, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(loss (B,), ∇_z loss, T(z))`` per row."""
        z = z.detach().requires_grad_(True)
        d = z[0].numel()
        with torch.enable_grad():
            x = self.transport(state.prior, z)
            fit = squared_residual(state.problem.operator, x, state.measurement)
            norm = z.flatten(1).norm(dim=1)
            reg = 0.5 * norm.pow(2).clamp(-1e6, 1e6) - (d - 1) * torch.log(norm + 1e-5)
            loss = fit + self.reg_weight * reg
            (grad,) = torch.autograd.grad(loss.sum(), z)
        return loss.detach(), grad, x.detach()

    # -- the contract -----------------------------------------------------------------------
    def start(self, context: SolveContext) -> DFlowState:
        zeros = context.zeros()
        B = zeros.shape[0]
        probe = context.new_state(FlowState, zeros, 0.0)
        noise = self.randn(probe, step=-1)
        op = context.problem.operator
        if op.linear:
            source = self.invert(context.prior, op.adjoint(context.measurement).to(zeros.dtype))
            z = math.sqrt(self.blend) * source + math.sqrt(1 - self.blend) * noise
        else:
            z = noise
        loss, grad, x = self.objective(probe, z)
        false = torch.zeros(B, dtype=torch.bool, device=z.device)
        return context.new_state(DFlowState, x, 0.0, z=z, loss=loss, grad=grad, direction=torch.zeros_like(z),
                                 step_length=z.new_zeros(B), fresh=~false, converged=false, stalled=false,
                                 h_diag=z.new_ones(B))

    def step(self, state: DFlowState, i: int) -> DFlowState:
        # as a new call of torch's LBFGS.step: a stalled row restarts along a new direction
        state = state.replace(fresh=state.fresh | state.stalled, stalled=torch.zeros_like(state.stalled))
        for _ in range(self.lbfgs_iterations):
            state = self.lbfgs_iteration(state)
        return state

    def lbfgs_iteration(self, state: DFlowState) -> DFlowState:
        """One L-BFGS iteration per row: one objective evaluation of the whole batch."""
        B = state.z.shape[0]
        flat = lambda u: u.reshape(B, -1)  # noqa: E731
        g = flat(state.grad)
        new_direction = flat(self.two_loop(state))
        first = state.iterations == 0
        start_length = (1.0 / g.abs().sum(1)).clamp(max=1.0) if first else g.new_ones(B)
        direction = torch.where(state.fresh[:, None], new_direction, flat(state.direction))
        length = torch.where(state.fresh, start_length, state.step_length)
        frozen = state.converged | state.stalled
        length = torch.where(frozen, torch.zeros_like(length), length)
        step = length[:, None] * direction
        loss, grad, x = self.objective(state, state.z + step.reshape(state.z.shape))
        accept = ~frozen & torch.isfinite(loss) & (loss <= state.loss)
        # the curvature pair of an accepted step (torch's LBFGS keeps it when yᵀs > 1e-10)
        y = flat(grad) - g
        ys = (y * step).sum(1)
        keep = accept & (ys > 1e-10)
        rho = torch.where(keep, 1.0 / ys.where(keep, torch.ones_like(ys)), torch.zeros_like(ys))
        history = self.trim(state.history + ((step, y, rho),)) if bool(keep.any()) else state.history
        h_diag = torch.where(keep, ys / (y * y).sum(1).where(keep, torch.ones_like(ys)), state.h_diag)
        converged = state.converged | (accept & (flat(grad).abs().amax(1) <= 1e-7))
        stalled = ~frozen & ~accept & (step.abs().amax(1) <= 1e-9)
        shape = (B, *([1] * (state.z.dim() - 1)))
        a = accept.reshape(shape)
        return state.replace(
            z=torch.where(a, state.z + step.reshape(state.z.shape), state.z), loss=torch.where(accept, loss, state.loss),
            grad=torch.where(a, grad, state.grad), x=torch.where(a, x, state.x), x0_hat=torch.where(a, x, state.x),
            direction=direction.reshape(state.z.shape), step_length=torch.where(accept, length, 0.5 * length),
            fresh=accept, converged=converged, stalled=state.stalled | stalled, history=history, h_diag=h_diag,
            iterations=state.iterations + 1)

    def trim(self, history: tuple) -> tuple:
        """Each row's last ``history_size`` kept pairs (torch's LBFGS drops a row's oldest pair
        when its memory is full): older pairs of that row get ``ρ = 0``; entries no row keeps go."""
        kept, out = None, []
        for s, y, rho in reversed(history):
            count = (rho != 0).long() if kept is None else kept + (rho != 0).long()
            kept = count
            rho = torch.where(count <= self.history_size, rho, torch.zeros_like(rho))
            if bool((rho != 0).any()):
                out.append((s, y, rho))
        return tuple(reversed(out))

    @staticmethod
    def two_loop(state: DFlowState) -> Tensor:
        """``−H ∇`` by the L-BFGS two-loop recursion, row by row (pairs with ``ρ = 0`` skipped)."""
        B = state.z.shape[0]
        q = -state.grad.reshape(B, -1)
        alphas = []
        for s, y, rho in reversed(state.history):
            a = rho * (s * q).sum(1)
            q = q - a[:, None] * y
            alphas.append(a)
        r = q * state.h_diag[:, None]
        for (s, y, rho), a in zip(state.history, reversed(alphas)):
            b = rho * (y * r).sum(1)
            r = r + s * (a - b)[:, None]
        return r.reshape(state.z.shape)
