"""Bridges to deepinv: its physics as our operators, our operators as its physics."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Operator

__all__ = ["FromDeepinv", "to_deepinv"]


class FromDeepinv(Operator):
    """Wrap a ``deepinv.physics.Physics`` as an invprob operator (noiseless ``physics.A``).

    A ``deepinv.physics.LinearPhysics`` becomes linear with its ``A_adjoint`` and
    ``A_dagger`` as ``adjoint`` and ``pinv``. The noise model stays with the
    :class:`invprob.Problem`, not with the physics.

    Args:
        physics: the deepinv physics.
        x_shape: image shape ``(C, H, W)``; ``y_shape`` is found by one forward call.
    """

    complex_output = None  # deepinv physics may measure complex values (MRI)

    def __init__(self, physics, x_shape: tuple[int, ...]) -> None:
        import deepinv

        if not isinstance(physics, deepinv.physics.Physics):
            raise TypeError(f"`physics` must be a deepinv.physics.Physics, got {type(physics).__name__}.")
        with torch.no_grad():
            probe = physics.A(torch.zeros((1, *x_shape)))
        super().__init__(x_shape=tuple(x_shape), y_shape=tuple(probe.shape[1:]))
        self.physics = physics
        self.linear = isinstance(physics, deepinv.physics.LinearPhysics)

    @property
    def has_pinv(self) -> bool:
        return self.linear

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return self.physics.A(x)

    def adjoint(self, y: Tensor) -> Tensor:
        if not self.linear:
            return super().adjoint(y)
        return self.physics.A_adjoint(y)

    def pinv(self, y: Tensor) -> Tensor:
        if not self.linear:
            return super().pinv(y)
        return self.physics.A_dagger(y)


def to_deepinv(operator: Operator):
    """Expose an invprob operator as deepinv physics (``LinearPhysics`` if it is linear),
    so deepinv's solvers and losses run on it. Noise is left to deepinv's ``noise_model``."""
    import deepinv

    if operator.linear:
        return deepinv.physics.LinearPhysics(A=operator.forward, A_adjoint=operator.adjoint)
    return deepinv.physics.Physics(A=operator.forward)
