"""Phase retrieval: Fourier magnitudes ``|F(pad(x))|`` and coded diffraction ``|F(D ⊙ x)|``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ._fft import fft2c
from .base import Operator

__all__ = ["PhaseRetrieval", "CodedDiffraction"]


class PhaseRetrieval(Operator):
    """Fourier phase retrieval ``y = |F(pad(x))|`` (nonlinear, differentiable).

    Follows the DPS/DAPS code (``PhaseRetrievalOperator``): the image is zero-padded by
    ``int(oversampling / 8 · H)`` pixels on every side (``oversampling = 2`` ⇒ 64 px on 256²,
    a 384² grid) and the centred orthonormal FFT's magnitude is measured. Shapes:
    ``x (B, C, H, W) -> y (B, C, H + 2p, W + 2p)``.

    Args:
        x_shape: ``(C, H, W)``.
        oversampling: the DPS/DAPS ``oversample`` parameter (default 2.0).
    """

    def __init__(self, x_shape: tuple[int, ...] = (3, 256, 256), oversampling: float = 2.0) -> None:
        x_shape = tuple(int(s) for s in x_shape)
        if len(x_shape) != 3:
            raise ValueError(f"`x_shape` must be (C, H, W), got {x_shape}.")
        C, H, W = x_shape
        if oversampling <= 0:
            raise ValueError(f"`oversampling` must be > 0, got {oversampling}.")
        self.pad = int(oversampling / 8.0 * H)
        super().__init__(x_shape=x_shape, y_shape=(C, H + 2 * self.pad, W + 2 * self.pad))
        self.oversampling = oversampling

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        padded = F.pad(x, (self.pad,) * 4)
        return fft2c(padded).abs()


class CodedDiffraction(Operator):
    """Coded diffraction patterns ``y_j = |F(D_j ⊙ x)|``, ``D_j`` random unit-modulus phase masks
    drawn once from ``seed`` (Candès, Li & Soltanolkotabi 2015). Shapes:
    ``x (B, C, H, W) -> y (B, J·C, H, W)``.

    Args:
        x_shape: ``(C, H, W)``.
        num_patterns: number of masks ``J``.
        seed: draws the masks.
    """

    def __init__(self, x_shape: tuple[int, ...] = (1, 64, 64), num_patterns: int = 1, seed: int = 0) -> None:
        x_shape = tuple(int(s) for s in x_shape)
        C, H, W = x_shape
        super().__init__(x_shape=x_shape, y_shape=(num_patterns * C, H, W))
        g = torch.Generator().manual_seed(int(seed))
        phases = 2 * math.pi * torch.rand((num_patterns, 1, H, W), generator=g, dtype=torch.float64)
        self.register_buffer("phases", phases.float())
        self.num_patterns = num_patterns

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        masks = torch.polar(torch.ones_like(self.phases, dtype=x.dtype), self.phases.to(x.dtype))  # (J, 1, H, W)
        coded = x[:, None] * masks[None]  # (B, J, C, H, W)
        return fft2c(coded).abs().reshape(x.shape[0], -1, *x.shape[-2:])
