"""A 2-D linear operator applied to every slice of a volume: multi-slice MRI, or any slice-wise
measurement, as one unknown for the slice-coupled solvers (``diffusion-mbir``, ``SliceCoupled``)."""

from __future__ import annotations

from torch import Tensor

from .base import LinearOperator, Operator

__all__ = ["SliceStack"]


class SliceStack(LinearOperator):
    """``operator`` on each of ``slices`` slices: ``x (B, D, *x_shape) -> y (B, D, *y_shape)``.

    The slices go through ``operator`` as one batch of ``B·D`` rows, so a parameter the
    operator holds per measurement (a mask per volume) applies to all slices of that volume.
    The adjoint is the operator's, slice by slice; ``prox_data`` by conjugate gradients.
    (:class:`~invprob.operators.CT` stacks slices itself with ``slices=D``.)

    Args:
        operator: a linear 2-D operator with a fixed ``x_shape`` (e.g. :class:`~invprob.operators.MRI`,
            :class:`~invprob.operators.MultiCoilMRI`).
        slices: ``D``, the number of slices.
    """

    def __init__(self, operator: Operator, slices: int) -> None:
        if not isinstance(operator, Operator) or not operator.linear:
            raise TypeError(f"`operator` must be a linear invprob operator (the slice coupling solves least squares "
                            f"in it), got {type(operator).__name__}.")
        if operator.x_shape is None or operator.y_shape is None:
            raise ValueError(f"`operator` ({type(operator).__name__}) needs a fixed x_shape and y_shape; build it "
                             f"for the slices' size.")
        if isinstance(slices, bool) or not isinstance(slices, int) or slices < 1:
            raise ValueError(f"`slices` must be a positive int (slices of the volume), got {slices!r}.")
        super().__init__(x_shape=(slices, *operator.x_shape), y_shape=(slices, *operator.y_shape))
        self.operator, self.slices = operator, slices
        self.complex_input, self.complex_output = operator.complex_input, operator.complex_output
        self.differentiable, self.black_box = operator.differentiable, operator.black_box

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        y = self.operator.forward(x.reshape(-1, *self.operator.x_shape))
        return y.reshape(x.shape[0], *self.y_shape)

    def adjoint(self, y: Tensor) -> Tensor:
        x = self.operator.adjoint(y.reshape(-1, *self.operator.y_shape))
        return x.reshape(y.shape[0], *self.x_shape)

    def extra_repr(self) -> str:
        return f"slices={self.slices}"
