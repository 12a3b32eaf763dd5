"""The operator contract (contract 3 of ``docs/design.md``).

An operator is a ``torch.nn.Module`` whose ``forward(x) -> y`` is the noiseless forward
model on batches ``(B, *x_shape) -> (B, *y_shape)``. Parameters (kernels, masks, coil maps,
matrices) are buffers, so ``.to(device)`` moves everything. Capability flags tell a solver
what it may ask for; a solver needing a missing capability refuses at ``init``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from ..checks import check_shape, check_tensor
from ..errors import CapabilityError

__all__ = ["Operator", "LinearOperator", "SVD", "per_row", "squared_residual", "spectral_norm"]


def per_row(param: Tensor, batch: int, name: str = "parameter") -> Tensor:
    """Match a parameter with its own batch dim ``P`` (per-measurement masks, kernels) to a
    batch of ``batch`` rows. ``P = 1`` broadcasts; ``P = batch`` is used as is; otherwise
    ``batch = P * K`` is read as K samples per measurement (the solvers' row order
    ``m * K + k``) and each parameter is repeated K times."""
    P = param.shape[0]
    if P == 1 or P == batch:
        return param
    if batch % P:
        raise ValueError(f"the operator's {name} has a batch of {P} but the input has {batch} rows; "
                         f"give one {name} or one per measurement (input rows = measurements × samples).")
    return param.repeat_interleave(batch // P, dim=0)


@dataclass
class SVD:
    """An (implicit) singular value decomposition ``A = U diag(s) V^T``.

    ``singular_values`` is a flat ``(r,)`` tensor; ``Vt(x) -> (B, r)`` and ``V(z) -> (B, *x_shape)``
    map between image space and the spectral coordinates, ``Ut(y) -> (B, r)`` and
    ``U(z) -> (B, *y_shape)`` between measurement space and them. Dense for
    ``MatrixOperator``, FFT- or mask-based for the structured operators.
    """

    singular_values: Tensor
    Vt: Callable[[Tensor], Tensor]
    V: Callable[[Tensor], Tensor]
    Ut: Callable[[Tensor], Tensor]
    U: Callable[[Tensor], Tensor]

    def values_per_row(self, batch: int, dtype: torch.dtype) -> Tensor:
        """The singular values for a batch of ``batch`` rows, ``(batch or 1, r)`` in ``dtype``
        (one set per measurement where the operator has one per measurement; :func:`per_row`)."""
        s = self.singular_values
        return per_row(s.reshape(-1, s.shape[-1]), batch, "singular values").to(dtype)


class Operator(nn.Module):
    """Base class of forward models ``y = A(x)``.

    Attributes:
        linear: ``A`` is linear (``adjoint`` is then available).
        has_svd: ``svd()`` returns an :class:`SVD` (hence ``pinv`` and exact projections).
        differentiable: autograd can differentiate ``forward`` (False for black boxes).
        black_box: ``forward`` runs outside torch (numpy, a simulator): no gradients at all.
        x_shape: image shape without batch dim, e.g. ``(1, 64, 64)``; ``None`` if any.
        y_shape: measurement shape without batch dim, known once ``x_shape`` is.
    """

    linear: bool = False
    has_svd: bool = False
    differentiable: bool = True
    black_box: bool = False
    #: ``forward`` accepts complex images (e.g. MRI in ``image_mode="complex"``)
    complex_input: bool = False
    #: ``forward`` returns complex measurements (MRI k-space); ``None``: not known in advance
    complex_output: bool | None = False

    def __init__(self, x_shape: tuple[int, ...] | None = None,
                 y_shape: tuple[int, ...] | None = None) -> None:
        super().__init__()
        for name, shape in (("x_shape", x_shape), ("y_shape", y_shape)):
            if shape is not None and (len(tuple(shape)) == 0 or any(
                    isinstance(n, bool) or int(n) != n or n < 1 for n in tuple(shape))):
                raise ValueError(f"`{name}` must be a tuple of positive sizes such as (1, 64, 64), got {shape!r}.")
        self.x_shape = tuple(int(n) for n in x_shape) if x_shape is not None else None
        self.y_shape = tuple(int(n) for n in y_shape) if y_shape is not None else None

    # -- capabilities ---------------------------------------------------------------
    def adjoint(self, y: Tensor) -> Tensor:
        raise CapabilityError(f"{type(self).__name__} is not linear: it has no adjoint. "
                              f"Use a solver that only needs forward evaluations.")

    def pinv(self, y: Tensor) -> Tensor:
        raise CapabilityError(f"{type(self).__name__} offers no pseudo-inverse `pinv`.")

    def svd(self) -> SVD:
        raise CapabilityError(f"{type(self).__name__} offers no singular value decomposition.")

    def prox_data(self, z: Tensor, y: Tensor, rho: float | Tensor) -> Tensor:
        """``argmin_x ½‖A x − y‖² + (rho/2)‖x − z‖²`` (per sample; ``rho`` scalar or ``(B,)``)."""
        raise CapabilityError(f"{type(self).__name__} offers no closed-form data prox.")

    @property
    def has_pinv(self) -> bool:
        return self.has_svd or type(self).pinv is not Operator.pinv

    def capabilities(self) -> dict[str, bool]:
        return {"linear": self.linear, "has_svd": self.has_svd, "has_pinv": self.has_pinv,
                "differentiable": self.differentiable, "black_box": self.black_box}

    # -- helpers ----------------------------------------------------------------------
    def check_input(self, x: Tensor, name: str = "x") -> None:
        check_tensor(x, name)
        if self.x_shape is not None:
            check_shape(x, self.x_shape, name)
        if x.is_complex() and not self.complex_input:
            raise TypeError(f"`{name}` is complex ({x.dtype}) but {type(self).__name__} acts on "
                            f"real images; pass real/imag as 2 channels or the magnitude.")

    @property
    def device(self) -> torch.device:
        for tensor in list(self.buffers()) + list(self.parameters()):
            return tensor.device
        return torch.device("cpu")

    def to(self, *args, **kwargs) -> "Operator":
        """As ``nn.Module.to``, except that a real floating ``dtype`` moves complex buffers
        (coil maps, Fourier masks) to the complex dtype of the same precision instead of
        discarding their imaginary part: ``.to(torch.float32)`` keeps coil maps complex64."""
        # A dtype was requested iff two probes of different dtypes end with the same one; the
        # device is the one named (a device, a string, an index or a tensor's), else unchanged.
        probe32 = torch.empty(0, dtype=torch.float32).to(*args, **kwargs)
        probe64 = torch.empty(0, dtype=torch.float64).to(*args, **kwargs)
        dtype = probe32.dtype if probe32.dtype == probe64.dtype else None
        named = [a.device if isinstance(a, Tensor) else a for a in args
                 if isinstance(a, (str, torch.device, Tensor)) or (isinstance(a, int) and not isinstance(a, bool))]
        device = kwargs.get("device", named[0] if named else None)
        device = probe32.device if device is not None else None
        if dtype is None or not dtype.is_floating_point:
            return super().to(*args, **kwargs)
        complex_dtype = torch.promote_types(dtype, torch.complex64)

        def convert(t: Tensor) -> Tensor:
            if t.is_complex():
                return t.to(device=device or t.device, dtype=complex_dtype)
            return t.to(device=device or t.device, dtype=dtype if t.is_floating_point() else None)

        return self._apply(convert)

    @property
    def x_numel(self) -> int:
        if self.x_shape is None:
            raise ValueError(f"{type(self).__name__} has no fixed x_shape.")
        return math.prod(self.x_shape)


class LinearOperator(Operator):
    """A linear operator. ``adjoint`` defaults to autograd's vector-Jacobian product,
    i.e. the adjoint for the real inner product ``Re⟨A x, y⟩``; subclasses override it
    with the closed form where one exists."""

    linear = True

    def adjoint(self, y: Tensor) -> Tensor:
        if self.x_shape is None:
            raise ValueError(f"{type(self).__name__}.adjoint needs a fixed x_shape.")
        x = torch.zeros((y.shape[0], *self.x_shape), dtype=y.real.dtype, device=y.device,
                        requires_grad=True)
        with torch.enable_grad():
            out = self.forward(x)
            (grad,) = torch.autograd.grad(out, x, grad_outputs=y)
        return grad

    def prox_data(self, z: Tensor, y: Tensor, rho: float | Tensor, num_iters: int = 100,
                  tol: float = 1e-10) -> Tensor:
        """``argmin_x ½‖A x − y‖² + (rho/2)‖x − z‖²`` by conjugate gradients on the normal equations
        ``(AᵀA + ρ I) x = Aᵀy + ρ z``, per sample (``rho`` scalar or ``(B,)``), stopping when every
        sample's residual is below ``tol`` relative to its right-hand side. Subclasses override it
        with a closed form where one exists."""
        rho = torch.as_tensor(rho, dtype=z.dtype, device=z.device).reshape(-1, *([1] * (z.dim() - 1)))
        tiny, tol = torch.finfo(z.dtype).tiny, max(tol, 10 * torch.finfo(z.dtype).eps)
        b = self.adjoint(y) + rho * z
        x = z.clone()
        r = b - (self.adjoint(self.forward(x)) + rho * x)
        p = r.clone()
        rs = r.flatten(1).pow(2).sum(1)
        stop = tol**2 * b.flatten(1).pow(2).sum(1).clamp_min(tiny)
        for _ in range(num_iters):
            done = rs <= stop
            if bool(done.all()):
                break
            Ap = self.adjoint(self.forward(p)) + rho * p
            alpha = torch.where(done, 0.0, rs / (p * Ap).flatten(1).sum(1).clamp_min(tiny))  # finished rows stay
            alpha = alpha.reshape(-1, *([1] * (z.dim() - 1)))
            x = x + alpha * p
            r = r - alpha * Ap
            rs_new = r.flatten(1).pow(2).sum(1)
            p = r + (rs_new / rs.clamp_min(tiny)).reshape(-1, *([1] * (z.dim() - 1))) * p
            rs = rs_new
        return x

    def matrix(self) -> Tensor:
        """Dense ``(m, d)`` matrix of ``A`` built column by column (small problems only)."""
        d = self.x_numel
        if d > 16384:
            raise ValueError(f"matrix() of a {d}-dimensional operator would be too large; "
                             f"use forward/adjoint instead.")
        dtype = next(iter(self.buffers()), torch.zeros(())).dtype
        dtype = dtype if dtype.is_floating_point else torch.float64
        eye = torch.eye(d, dtype=dtype, device=self.device).reshape(d, *self.x_shape)
        return self.forward(eye).reshape(d, -1).T


def squared_residual(operator: Operator, x: Tensor, measurement: Tensor) -> Tensor:
    """Per-sample ``‖A(x) − y‖²`` (complex measurements: squared modulus), shape ``(B,)``."""
    return (operator(x) - measurement).abs().pow(2).flatten(1).sum(1)


def spectral_norm(operator: Operator, dtype: torch.dtype, device: torch.device | str,
                  num_iters: int = 30) -> float:
    """Largest singular value ``‖A‖`` of a linear operator by power iteration on ``AᵀA``
    (a fixed seed, so the value is reproducible)."""
    g = torch.Generator().manual_seed(0)
    v = torch.randn((1, *operator.x_shape), generator=g, dtype=dtype).to(device)
    v = v / v.norm()
    value = 0.0
    with torch.no_grad():
        for _ in range(num_iters):
            w = operator.adjoint(operator(v))
            value = w.norm().item()
            if value == 0:
                return 0.0
            v = w / value
    return value**0.5
