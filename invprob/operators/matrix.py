"""Dense linear operators: ``MatrixOperator`` (``y = A vec(x)``) and ``Identity``."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._checks import check_tensor
from .base import SVD, LinearOperator

__all__ = ["MatrixOperator", "Identity"]


class MatrixOperator(LinearOperator):
    """Dense linear map ``y = A vec(x)`` on images of any shape.

    Shapes: ``A (m, d)`` with ``d = prod(x_shape)``; ``x (B, *x_shape) -> y (B, m)``.
    Exact adjoint, SVD (``torch.linalg.svd``), pseudo-inverse and data prox. Used by the
    Gaussian-mixture test bed (random Gaussian matrices, pixel selections).

    Args:
        A: the ``(m, d)`` matrix (real).
        x_shape: the image shape it acts on; ``prod(x_shape)`` must equal ``d``.
    """

    has_svd = True

    def __init__(self, A: Tensor, x_shape: tuple[int, ...]) -> None:
        check_tensor(A, "A")
        if A.dim() != 2:
            raise ValueError(f"`A` must be a (m, d) matrix, got shape {tuple(A.shape)}.")
        if A.is_complex():
            raise TypeError("`A` must be real; complex operators live in their own classes.")
        x_shape = tuple(int(s) for s in x_shape)
        if math.prod(x_shape) != A.shape[1]:
            raise ValueError(f"`x_shape` {x_shape} has {math.prod(x_shape)} entries but `A` has "
                             f"{A.shape[1]} columns; they must match.")
        super().__init__(x_shape=x_shape, y_shape=(A.shape[0],))
        self.register_buffer("A", A)
        U, S, Vh = torch.linalg.svd(A, full_matrices=False)
        keep = S > S.max() * max(A.shape) * torch.finfo(A.dtype).eps
        self.register_buffer("_U", U[:, keep])
        self.register_buffer("_S", S[keep])
        self.register_buffer("_Vh", Vh[keep])

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return x.flatten(1) @ self.A.T

    def adjoint(self, y: Tensor) -> Tensor:
        return (y @ self.A).reshape(y.shape[0], *self.x_shape)

    def matrix(self) -> Tensor:
        return self.A

    def svd(self) -> SVD:
        return SVD(singular_values=self._S,
                   Vt=lambda x: x.flatten(1) @ self._Vh.T,
                   V=lambda z: (z @ self._Vh).reshape(z.shape[0], *self.x_shape),
                   Ut=lambda y: y @ self._U,
                   U=lambda z: z @ self._U.T)

    def pinv(self, y: Tensor) -> Tensor:
        z = (y @ self._U) / self._S
        return (z @ self._Vh).reshape(y.shape[0], *self.x_shape)

    def prox_data(self, z: Tensor, y: Tensor, rho: float | Tensor) -> Tensor:
        rho = torch.as_tensor(rho, dtype=z.dtype, device=z.device).reshape(-1, 1)
        # In the right singular basis the normal equations decouple:
        # (s^2 + rho) c = s (U^T y) + rho (V^T z); the null-space part of z is kept.
        zf = z.flatten(1)
        vz = zf @ self._Vh.T
        coeff = (self._S * (y @ self._U) + rho * vz) / (self._S**2 + rho)
        out = zf + (coeff - vz) @ self._Vh
        return out.reshape(z.shape)


class Identity(LinearOperator):
    """``y = x`` (denoising). ``x_shape`` is optional; with it, shapes are checked."""

    has_svd = True

    def __init__(self, x_shape: tuple[int, ...] | None = None) -> None:
        super().__init__(x_shape=x_shape, y_shape=x_shape)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return x

    def adjoint(self, y: Tensor) -> Tensor:
        return y

    def pinv(self, y: Tensor) -> Tensor:
        return y

    def svd(self) -> SVD:
        d = self.x_numel
        return SVD(singular_values=torch.ones(d, device=self.device),
                   Vt=lambda x: x.flatten(1), V=lambda z: z.reshape(z.shape[0], *self.x_shape),
                   Ut=lambda y: y.flatten(1), U=lambda z: z.reshape(z.shape[0], *self.y_shape))

    def prox_data(self, z: Tensor, y: Tensor, rho: float | Tensor) -> Tensor:
        rho = torch.as_tensor(rho, dtype=z.dtype, device=z.device)
        rho = rho.reshape(-1, *([1] * (z.dim() - 1))) if rho.dim() else rho
        return (y + rho * z) / (1 + rho)
