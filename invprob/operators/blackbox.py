"""``BlackBox``: any callable (numpy, scipy, a simulator) as a forward model, no gradients."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .base import Operator

__all__ = ["BlackBox"]


class BlackBox(Operator):
    """Wrap ``fn`` as a forward model that solvers may only *evaluate*.

    ``fn`` receives the batch ``x (B, *x_shape)`` as a detached tensor — or, with
    ``numpy=True``, as a float64 ``numpy.ndarray`` — and returns ``(B, *output_shape)``.
    Gradient-based solvers (DPS, MCG, DAPS with gradient Langevin) refuse it at ``init``;
    derivative-free ones (EnKG) accept it.

    Args:
        fn: the forward model.
        output_shape: measurement shape without batch dim.
        x_shape: image shape without batch dim.
        numpy: hand ``fn`` numpy arrays instead of tensors.
    """

    differentiable = False
    black_box = True
    complex_output = None  # whatever ``fn`` returns

    def __init__(self, fn: Callable, output_shape: tuple[int, ...],
                 x_shape: tuple[int, ...] | None = None, numpy: bool = False) -> None:
        if not callable(fn):
            raise TypeError(f"`fn` must be callable, got {type(fn).__name__}.")
        super().__init__(x_shape=x_shape, y_shape=tuple(output_shape))
        self.fn = fn
        self.numpy = numpy

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        with torch.no_grad():
            x = x.detach()
            if self.numpy:
                y = torch.as_tensor(np.asarray(self.fn(x.cpu().numpy())), device=x.device)
            else:
                y = torch.as_tensor(self.fn(x), device=x.device)
        if tuple(y.shape) != (x.shape[0], *self.y_shape):
            raise ValueError(f"BlackBox `fn` returned shape {tuple(y.shape)}, expected "
                             f"{(x.shape[0], *self.y_shape)} from `output_shape`.")
        return y.to(x.dtype) if not y.is_complex() else y
