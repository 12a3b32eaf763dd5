"""What the flow-native solvers share: the rectified-flow path, its velocity, and the data term.

The path is ``x_t = (1 − t) x0 + t ε`` with ``t = 1`` pure noise and ``t = 0`` the data (the
convention of :class:`~invprob.priors.FlowPrior` and of FlowChef's code; PnP-Flow's code and
Pokle et al. write ``t' = 1 − t``). Every prior serves it through
:meth:`~invprob.priors.Prior.flow_denoise`: a velocity network directly, any other prior through
``σ = t / (1 − t)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..priors.base import Prior
from ..problem import Problem
from .base import State

__all__ = ["FlowState", "TOP", "top_time", "velocity", "data_gradient"]

#: Where a path starts for a prior that is not a velocity network (σ = t/(1 − t) is infinite at
#: t = 1): FlowChef's own start, ``time_schedule[0] = 1 - 1e-5`` (FlowChef/FlowChef,
#: ``inverseproblems/pixel_models/rfpp/generate_inverseproblems_flowchef.py``).
TOP = 1.0 - 1e-5


@dataclass(kw_only=True)
class FlowState(State):
    """The state of a flow-native solver; ``x`` is the path point ``x_t``, ``sigma`` its σ-space
    level ``t / (1 − t)`` (capped at ``TOP``'s, 1e5, at ``t = 1``)."""


def top_time(prior: Prior) -> float:
    """The path's first time for ``prior``: 1 for a velocity network, ``TOP`` otherwise."""
    return 1.0 if prior.velocity_native else TOP


def sigma_of(t: float) -> float:
    """σ-space level of flow time ``t`` (for ``State.sigma``), capped at that of ``TOP``."""
    t = min(t, TOP)
    return t / (1 - t)


def velocity(prior: Prior, x: Tensor, t: float) -> tuple[Tensor, Tensor]:
    """``(v, x̂0)`` at flow time ``t`` (a float, capped at the prior's :func:`top_time`):
    ``x̂0 = flow_denoise(x, t)``, ``v = (x − x̂0) / t`` (``dx/dt``, pointing to the noise). One NFE."""
    t = min(t, top_time(prior))
    x0 = prior.flow_denoise(x, t)
    return (x - x0) / t, x0


def data_gradient(problem: Problem, x: Tensor, measurement: Tensor) -> Tensor:
    """``∇ₓ ½‖A(x) − y‖²`` per row ``(B, *x_shape)``: ``Aᵀ(A x − y)`` for a linear operator (its
    adjoint), autograd through a nonlinear differentiable one. One forward-operator call."""
    op = problem.operator
    if op.linear:
        return op.adjoint(op(x) - measurement)
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = 0.5 * (op(x) - measurement).abs().pow(2).sum()
        (grad,) = torch.autograd.grad(loss, x)
    return grad
