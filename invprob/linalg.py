"""Batched linear algebra shared by the solvers: per-row inner products and conjugate gradients."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

__all__ = ["batch_dot", "row_norm", "conjugate_gradient"]


def batch_dot(a: Tensor, b: Tensor) -> Tensor:
    """Per-row real inner product ``Re⟨a, b⟩`` of two ``(B, ...)`` tensors: ``(B,)``."""
    return (a.conj() * b).real.flatten(1).sum(1) if a.is_complex() else (a * b).flatten(1).sum(1)


def row_norm(a: Tensor) -> Tensor:
    """Per-row Euclidean norm of a ``(B, ...)`` tensor, real or complex: ``(B,)``."""
    return torch.linalg.vector_norm(a.flatten(1), dim=1)


def conjugate_gradient(apply: Callable[[Tensor], Tensor], b: Tensor, num_iters: int) -> Tensor:
    """``num_iters`` conjugate-gradient iterations from zero on ``apply(u) = b``, row by row.

    Args:
        apply: a symmetric positive (semi-)definite map of ``(B, ...)`` tensors acting on each
            row separately.
        b: right-hand sides ``(B, ...)``.
        num_iters: iterations (each one ``apply``); a fixed count (MMPS's ``maxiter``), so that the
            cost is known in advance.

    Returns:
        The approximate solution ``(B, ...)``; a row whose residual vanished, or whose system is
        not positive along the search direction (a learned denoiser's Jacobian need not be
        symmetric positive), stops where it is.
    """
    tiny = torch.finfo(b.real.dtype).tiny

    def rows(v: Tensor) -> Tensor:
        return v.reshape(-1, *([1] * (b.dim() - 1)))

    u, r = torch.zeros_like(b), b
    p, rs = r, batch_dot(r, r)
    for _ in range(num_iters):
        q = apply(p)
        pq = batch_dot(p, q)
        alpha = torch.where(pq > tiny, rs / pq.clamp_min(tiny), torch.zeros_like(rs))
        u, r = u + rows(alpha) * p, r - rows(alpha) * q
        rs_new = batch_dot(r, r)
        beta = torch.where(rs > tiny, rs_new / rs.clamp_min(tiny), torch.zeros_like(rs))
        p, rs = r + rows(beta) * p, rs_new
    return u
