"""Super-resolution: ``y = D x`` with a separable down-sampler (bicubic with antialiasing, or
block averaging). Separable ⇒ exact adjoint and an exact SVD from two small SVDs."""

from __future__ import annotations


import numpy as np
import torch
from torch import Tensor

from .base import SVD, LinearOperator

__all__ = ["SuperResolution", "imresize_matrix", "block_matrix"]


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = −0.5 (MATLAB ``imresize``'s 'cubic')."""
    ax = np.abs(x)
    return ((1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
            + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def imresize_matrix(in_length: int, out_length: int) -> np.ndarray:
    """``(out, in)`` matrix of MATLAB's ``imresize(..., 'bicubic')`` along one axis, with
    antialiasing when shrinking and symmetric boundary handling — the algorithm of the
    ``Resizer`` used by the DPS and DAPS code (``util/resizer.py``, a port of MATLAB's
    ``contributions``)."""
    scale = out_length / in_length
    kernel_width = 4.0 / scale if scale < 1 else 4.0
    out_pos = np.arange(1, out_length + 1)
    u = out_pos / scale + 0.5 * (1 - 1 / scale)  # input coordinate (1-based) of each output
    left = np.floor(u - kernel_width / 2)
    taps = int(np.ceil(kernel_width)) + 2
    idx = left[:, None] + np.arange(taps)[None]  # 1-based input indices
    arg = u[:, None] - idx
    weights = scale * _cubic(scale * arg) if scale < 1 else _cubic(arg)
    weights = weights / weights.sum(1, keepdims=True)
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length)[::-1]])
    cols = mirror[np.mod(idx.astype(int) - 1, 2 * in_length)]
    matrix = np.zeros((out_length, in_length))
    np.add.at(matrix, (np.repeat(np.arange(out_length), taps), cols.ravel()), weights.ravel())
    return matrix


def block_matrix(in_length: int, factor: int) -> np.ndarray:
    """``(in/factor, in)`` matrix averaging consecutive blocks of ``factor`` samples."""
    return np.kron(np.eye(in_length // factor), np.full((1, factor), 1.0 / factor))


class SuperResolution(LinearOperator):
    """Down-sampling by an integer ``factor``: ``y = W_h X W_wᵀ`` per channel.

    Shapes: ``x (B, C, H, W) -> y (B, C, H/f, W/f)``. ``kind='bicubic'`` is MATLAB's
    antialiased bicubic ``imresize`` (the DPS/DAPS ``Resizer``; 4× in their SR task);
    ``kind='block'`` averages f×f blocks. Exact adjoint; SVD from the SVDs of ``W_h`` and
    ``W_w`` (Kronecker structure), hence ``pinv`` and ``prox_data``.

    Args:
        factor: integer scale factor (2, 4, ...); ``H`` and ``W`` must be multiples.
        x_shape: ``(C, H, W)``.
        kind: ``'bicubic'`` or ``'block'``.
    """

    has_svd = True

    def __init__(self, factor: int = 4, x_shape: tuple[int, ...] = (3, 256, 256), kind: str = "bicubic") -> None:
        x_shape = tuple(int(s) for s in x_shape)
        if len(x_shape) != 3:
            raise ValueError(f"`x_shape` must be (C, H, W), got {x_shape}.")
        C, H, W = x_shape
        if min(x_shape) < 1:
            raise ValueError(f"`x_shape` must be positive sizes (C, H, W), got {x_shape}.")
        if int(factor) != factor or factor < 1 or H % factor or W % factor:
            raise ValueError(f"`factor` must be an integer dividing the image size {H}x{W}, got {factor}.")
        factor = int(factor)
        if kind == "bicubic":
            Wh, Ww = imresize_matrix(H, H // factor), imresize_matrix(W, W // factor)
        elif kind == "block":
            Wh, Ww = block_matrix(H, factor), block_matrix(W, factor)
        else:
            raise ValueError(f"`kind` must be 'bicubic' or 'block', got {kind!r}.")
        super().__init__(x_shape=x_shape, y_shape=(C, H // factor, W // factor))
        self.factor, self.kind = factor, kind
        self.register_buffer("Wh", torch.as_tensor(Wh, dtype=torch.float32))
        self.register_buffer("Ww", torch.as_tensor(Ww, dtype=torch.float32))

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return self.Wh.to(x.dtype) @ x @ self.Ww.to(x.dtype).T

    def adjoint(self, y: Tensor) -> Tensor:
        return self.Wh.to(y.dtype).T @ y @ self.Ww.to(y.dtype)

    def _factors(self, dtype: torch.dtype):
        Uh, Sh, Vht = torch.linalg.svd(self.Wh.to(dtype), full_matrices=False)
        Uw, Sw, Vwt = torch.linalg.svd(self.Ww.to(dtype), full_matrices=False)
        return Uh, Sh, Vht, Uw, Sw, Vwt

    def svd(self) -> SVD:
        """``A = (U_h ⊗ U_w) diag(s_h ⊗ s_w) (V_h ⊗ V_w)ᵀ`` per channel; coordinates ``(B, C·h·w)``."""
        dtype = torch.float64 if self.Wh.dtype == torch.float64 else torch.float32
        Uh, Sh, Vht, Uw, Sw, Vwt = self._factors(dtype)
        C, h, w = self.y_shape
        s = (Sh[:, None] * Sw[None]).expand(C, h, w).flatten()
        return SVD(singular_values=s,
                   Vt=lambda x: (Vht.to(x.dtype) @ x @ Vwt.to(x.dtype).T).flatten(1),
                   V=lambda z: Vht.to(z.dtype).T @ z.reshape(-1, C, h, w) @ Vwt.to(z.dtype),
                   Ut=lambda y: (Uh.to(y.dtype).T @ y @ Uw.to(y.dtype)).flatten(1),
                   U=lambda z: Uh.to(z.dtype) @ z.reshape(-1, C, h, w) @ Uw.to(z.dtype).T)

    def pinv(self, y: Tensor) -> Tensor:
        Uh, Sh, Vht, Uw, Sw, Vwt = self._factors(y.dtype)
        s = Sh[:, None] * Sw[None]
        return Vht.T @ ((Uh.T @ y @ Uw) / s) @ Vwt

    def prox_data(self, z: Tensor, y: Tensor, rho: float | Tensor) -> Tensor:
        Uh, Sh, Vht, Uw, Sw, Vwt = self._factors(z.dtype)
        rho = torch.as_tensor(rho, dtype=z.dtype, device=z.device).reshape(-1, 1, 1, 1)
        s = Sh[:, None] * Sw[None]
        vz = Vht @ z @ Vwt.T
        coeff = (s * (Uh.T @ y @ Uw) + rho * vz) / (s**2 + rho)
        return z + Vht.T @ (coeff - vz) @ Vwt  # the null-space part of z is kept

    def extra_repr(self) -> str:
        return f"factor={self.factor}, kind={self.kind!r}, x_shape={self.x_shape}"
