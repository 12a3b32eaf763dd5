"""Dense linear operators: ``MatrixOperator`` (``y = A vec(x)``) and ``Identity``."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..checks import check_tensor
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
        self._svd_cache: tuple = ((), None)

    def _factors(self) -> tuple[Tensor, Tensor, Tensor]:
        """Thin SVD of ``A`` (nonzero singular values only), recomputed whenever ``A`` changes
        (``load_state_dict``, ``.to()``), so only ``A`` is state."""
        key = (self.A.data_ptr(), self.A._version, self.A.dtype, self.A.device)
        if self._svd_cache[0] != key:
            U, S, Vh = torch.linalg.svd(self.A, full_matrices=False)
            keep = S > S.max() * max(self.A.shape) * torch.finfo(self.A.dtype).eps
            self._svd_cache = (key, (U[:, keep], S[keep], Vh[keep]))
        return self._svd_cache[1]

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return x.flatten(1) @ self.A.T.to(x.dtype)

    def adjoint(self, y: Tensor) -> Tensor:
        return (y @ self.A.to(y.dtype)).reshape(y.shape[0], *self.x_shape)

    def matrix(self) -> Tensor:
        return self.A

    def svd(self) -> SVD:
        U, S, Vh = self._factors()
        return SVD(singular_values=S,
                   Vt=lambda x: x.flatten(1) @ Vh.T,
                   V=lambda z: (z @ Vh).reshape(z.shape[0], *self.x_shape),
                   Ut=lambda y: y @ U,
                   U=lambda z: z @ U.T)

    def pinv(self, y: Tensor) -> Tensor:
        U, S, Vh = self._factors()
        return (((y @ U) / S) @ Vh).reshape(y.shape[0], *self.x_shape)

    def prox_data(self, z: Tensor, y: Tensor, rho: float | Tensor) -> Tensor:
        rho = torch.as_tensor(rho, dtype=z.dtype, device=z.device).reshape(-1, 1)
        # In the right singular basis the normal equations decouple:
        # (s^2 + rho) c = s (U^T y) + rho (V^T z); the null-space part of z is kept.
        U, S, Vh = self._factors()
        zf = z.flatten(1)
        vz = zf @ Vh.T
        coeff = (S * (y @ U) + rho * vz) / (S**2 + rho)
        out = zf + (coeff - vz) @ Vh
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
