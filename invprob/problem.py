"""``Problem``: a forward operator, the observed measurement(s) and the noise model."""

from __future__ import annotations

import torch
from torch import Tensor

from .checks import check_finite, check_same_device, check_shape, check_tensor
from .noise import NoiseModel
from .operators.base import Operator

__all__ = ["Problem"]


class Problem:
    """An inverse problem ``y = noise(A(x))`` with ``M`` measurements.

    Shapes: ``measurement (M, *y_shape)``; the solvers return ``(M, K, *x_shape)`` samples of
    ``p(x | y_m)`` for each measurement. Everything is validated here, once: shapes
    against the operator, NaN/Inf, device agreement.

    Args:
        operator: the forward model (an :class:`invprob.operators.Operator`).
        measurement: observed ``y``, batched ``(M, *y_shape)``.
        noise: the noise model (:class:`invprob.noise.Gaussian`, :class:`~invprob.noise.Poisson`).
    """

    def __init__(self, operator: Operator, measurement: Tensor, noise: NoiseModel) -> None:
        if not isinstance(operator, Operator):
            raise TypeError(f"`operator` must be an invprob.operators.Operator, got "
                            f"{type(operator).__name__}; wrap a callable with "
                            f"invprob.operators.BlackBox(fn, output_shape).")
        if not isinstance(noise, NoiseModel):
            raise TypeError(f"`noise` must be an invprob.noise model (Gaussian, Poisson), got "
                            f"{type(noise).__name__}.")
        check_tensor(measurement, "measurement")
        if measurement.dim() == 0 or measurement.shape[0] == 0:
            raise ValueError(f"`measurement` has shape {tuple(measurement.shape)}: it needs at least one "
                             f"measurement along its first dimension (M, *y_shape).")
        if operator.y_shape is not None:
            check_shape(measurement, operator.y_shape, "measurement", leading="M")
        check_same_device(measurement, operator.device, "measurement", "the operator")
        check_finite(measurement, "measurement")
        noise.check_measurement(measurement)
        if operator.complex_output is not None and measurement.is_complex() != operator.complex_output:
            kind = "complex" if measurement.is_complex() else "real"
            raise TypeError(f"`measurement` is {kind} ({measurement.dtype}) but {type(operator).__name__} measures "
                            f"{'complex' if operator.complex_output else 'real'} values; give the measurement "
                            f"the operator produces (or the operator the data come from).")
        self.operator = operator
        self.measurement = measurement
        self.noise = noise

    def with_operator(self, operator) -> "Problem":
        """A shallow copy whose forward model is ``operator`` (e.g. a call-counting wrapper of
        the same operator); the measurement was validated already and is shared, not copied."""
        import copy

        clone = copy.copy(self)
        clone.operator = operator
        return clone

    @classmethod
    def simulate(cls, operator: Operator, x: Tensor, noise: NoiseModel,
                 generator: torch.Generator | None = None) -> "Problem":
        """Build a problem from ground truth ``x (M, *x_shape)``: ``y = noise.sample(A(x))``."""
        with torch.no_grad():
            y = noise.sample(operator(x), generator=generator)
        return cls(operator, y, noise)

    @property
    def num_measurements(self) -> int:
        return self.measurement.shape[0]

    def to(self, device: torch.device | str) -> "Problem":
        return Problem(self.operator.to(device), self.measurement.to(device), self.noise)

    def __repr__(self) -> str:
        return (f"Problem(operator={type(self.operator).__name__}, "
                f"measurement={tuple(self.measurement.shape)}, noise={self.noise})")
