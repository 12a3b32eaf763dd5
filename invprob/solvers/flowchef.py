"""FlowChef — steering rectified flows in the vector field (Patel, Wen, Metaxas & Yang, 2024)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..checks import check_int
from ..errors import UnsupportedProblemError
from ..operators.base import spectral_norm
from ..priors.base import Prior
from ..problem import Problem
from .base import SolveContext, Solver, Tunable
from .flow import FlowState, data_gradient, sigma_of, velocity

__all__ = ["FlowChef"]


class FlowChef(Solver):
    r"""Euler steps of the rectified-flow ODE, each preceded by a gradient step on the data fit of
    the predicted clean image, with no backpropagation through the network ("gradient skipping").

    On the grid ``t_i = 1 − i/N`` (``t_0`` just below 1, then ``t_N = 0``), step ``i`` computes
    ``v = v(x_t, t_i)`` and ``x̂0 = x_t − t_i v`` (one NFE), then, except at the last step,

    .. math::
        x_t \leftarrow x_t - s\, \nabla_{\hat x_0} \tfrac{1}{m} \lVert A(\hat x_0) - y \rVert^2,
        \qquad x_{t_{i+1}} = x_t + (t_{i+1} - t_i)\, v

    with the velocity of the uncorrected point (the network is not re-evaluated), ``m`` the
    number of entries of one measurement (the official loss is a mean over them;
    ``reference_size`` rescales it, below) and
    ``∂x̂0/∂x_t`` taken as the identity — the official update of
    ``inverseproblems/pixel_models/rfpp/generate_inverseproblems_flowchef.py`` (lines 124–154):
    ``z_h = z − t·vt`` with ``vt`` held fixed, ``loss = mean(mse(A(z_h), y))``, ``z = z − gs·∇z``,
    then ``z = z + vt·dt``. It starts from ``(1 − 10⁻⁵) ε`` at ``t_0 = 1 − 10⁻⁵`` (lines 98, 256)
    and returns the last Euler state (line 262). Deviation: when ``noise_sigma > 0`` the official
    operator draws fresh noise inside the loss at every step (``degradation`` adds it on every
    call); here the loss compares ``A(x̂0)`` with the one measurement ``y``.

    The gradient step alone multiplies the residual along ``A``'s top singular direction by
    ``1 − 2 s ‖A‖² / m`` per step: for a linear operator with ``s ‖A‖² / m > 1`` it diverges, and
    ``init`` refuses it naming the largest stable ``step_size``. Because ``m`` grows with the
    image, one ``step_size`` is a weaker pull on a larger image: the paper's 500 on 3×64² images
    (``m = 12288`` for inpainting) is a pull of ``2·500/12288 ≈ 0.08`` per step, on a 1×256² image
    ``0.015``. With ``reference_size = R`` (image entries ``C·H·W`` at which ``step_size`` was set)
    ``m`` becomes ``m·R/n``, ``n`` the image's entries: the mean that the same operator's
    measurement has on an image of ``R`` entries, so the pull per step is that at size ``R``
    whatever the image's size (for any operator whose measurement scales with the image). The
    derived preset ``flowchef-fixed-scale`` keeps the paper's pull (``reference_size: 12288``).

    NFE per sample = ``num_steps``; ``num_steps − 1`` forward-operator calls (and their
    gradients). Needs a differentiable operator; no Gaussian-noise assumption.

    Args:
        step_size: ``s``, the gradient scale (500: ``--gradient_scale 500`` of every pixel-space
            run in ``inverseproblems_flowchef.sh``; the parser default of 100 is not run). It
            acts on a mean over the measurement's entries, so its effect scales with
            ``1/m``.
        num_steps: Euler steps (100: ``--N 100`` of the main runs; the ablations use 200).
        reference_size: ``R`` above (None: the official mean over the ``m`` entries).

    References:
        | FlowChef: Steering of Rectified Flow Models for Controlled Generations
        | (Patel, Wen, Metaxas & Yang, 2024) https://arxiv.org/abs/2412.00100
        | Official implementation: https://github.com/FlowChef/FlowChef (pixel RF++ models,
        | ``inverseproblems/pixel_models/rfpp/``)

    Measured against exact posteriors: ``benchmarks/results/posterior_gmm_flow_seed7.md``.
    """

    requires = ("differentiable",)
    tunables = {"step_size": Tunable(factor=100.0)}

    def __init__(self, step_size: float = 500.0, num_steps: int = 100, reference_size: int | None = None) -> None:
        if not step_size >= 0:
            raise ValueError(f"`step_size` must be >= 0, got {step_size}.")
        self.step_size = float(step_size)
        self.num_steps = check_int(num_steps, "num_steps", 1)
        self.reference_size = None if reference_size is None else check_int(reference_size, "reference_size", 1)

    def entries(self, measurement: Tensor, x_numel: int) -> float:
        """The divisor of the squared residual: ``m``, or ``m·R/n`` with ``reference_size = R``."""
        m = measurement[0].numel()
        return m if self.reference_size is None else m * self.reference_size / x_numel

    def check(self, problem: Problem, prior: Prior) -> None:
        super().check(problem, prior)
        op = problem.operator
        if op.linear and op.x_shape is not None:
            m = self.entries(problem.measurement, op.x_numel)
            s_max = spectral_norm(op, prior.dtype, problem.measurement.device)
            if self.step_size * s_max**2 > m:
                raise UnsupportedProblemError(
                    f"FlowChef's data step diverges for this operator: step_size·‖A‖²/m = "
                    f"{self.step_size * s_max**2 / m:.3g} > 1 (step_size={self.step_size:g}, ‖A‖={s_max:.3g}, "
                    f"m={m:g} measured entries); use step_size <= {m / s_max**2:.3g}.")

    @property
    def nfe_per_sample(self) -> int:
        return self.num_steps

    def times(self) -> list[float]:
        """``t_0 … t_N``: ``1 − i/N`` with ``t_0 = 1 − 10⁻⁵`` (the official ``time_schedule``)."""
        N = self.num_steps
        return [min(1 - i / N, 1 - 1e-5) for i in range(N)] + [0.0]

    def start(self, context: SolveContext) -> FlowState:
        t0 = self.times()[0]
        state = context.new_state(FlowState, context.zeros(), sigma_of(t0))
        return state.replace(x=t0 * self.randn(state, step=-1))

    def step(self, state: FlowState, i: int) -> FlowState:
        times = self.times()
        t, t_next = times[i], times[i + 1]
        with torch.no_grad():
            v, x0 = velocity(state.prior, state.x, t)
        x = state.x
        if i < self.num_steps - 1:
            x = x - self.step_size * self.fit_gradient(state, x0)
        x = x + (t_next - t) * v
        return state.replace(x=x, x0_hat=x0, sigma=x.new_full((x.shape[0],), sigma_of(t_next)))

    def fit_gradient(self, state: FlowState, x0: Tensor) -> Tensor:
        """``∇ (1/m) ‖A(x̂0) − y‖²`` per row, ``m`` as :meth:`entries`."""
        return 2 * data_gradient(state.problem, x0, state.measurement) / self.entries(state.measurement, x0[0].numel())
