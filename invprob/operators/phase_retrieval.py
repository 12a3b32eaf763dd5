"""Phase retrieval: Fourier magnitudes ``|F(pad(x))|`` and coded diffraction ``|F(D ⊙ x)|``."""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ._fft import fft2c
from .base import Operator

__all__ = ["PhaseRetrieval", "CodedDiffraction", "trivial_images"]


def trivial_images(x: Tensor, unit_range: bool = False) -> Tensor:
    """The images ``|F(pad(·))|`` cannot tell from ``x (..., C, H, W)``: ``(4^C, *x.shape)``.

    Each channel is measured on its own, so each has four: itself, its sign flip, its 180°
    rotation and the rotation's sign flip (the circular shift the rotation implies on the padded
    grid leaves the magnitude unchanged); the result holds every combination, ``x`` first (for
    ``C = 1``: x, flip, rotation, flipped rotation). The flip is of the measured image: ``−x`` in
    the DPS convention, ``−x − 2`` (``x/2 + 1/2 ↦ −x/2 − 1/2``) with ``unit_range``."""
    flip = (lambda v: -v - 2) if unit_range else (lambda v: -v)
    rotated = x.flip(-2, -1)
    per_channel = torch.stack([x, flip(x), rotated, flip(rotated)]).unbind(-3)  # C × (4, ..., H, W)
    return torch.stack([torch.stack([per_channel[c][k] for c, k in enumerate(choice)], -3)
                        for choice in itertools.product(range(4), repeat=x.shape[-3])])


class PhaseRetrieval(Operator):
    """Fourier phase retrieval ``y = |F(pad(x))|`` (nonlinear, differentiable).

    Follows the DPS/DAPS code: the image is zero-padded by ``int(oversampling / 8 · H)`` pixels
    on every side (``oversampling = 2`` ⇒ 64 px on 256², a 384² grid) and the centred
    orthonormal FFT's magnitude is measured. Shapes: ``x (B, C, H, W) -> y (B, C, H + 2p, W + 2p)``.

    The two papers measure different images: DPS pads ``x`` itself, in [-1, 1]
    (``PhaseRetrievalOperator`` in ``guided_diffusion/measurements.py``); DAPS first maps it to
    [0, 1], ``x/2 + 1/2`` (``PhaseRetrieval`` in ``forward_operator/__init__.py``):
    ``unit_range=True``, preset ``phase-retrieval-daps``. The offset makes it a different
    problem with a differently spread posterior (GMM test bed:
    ``benchmarks/results/phase_retrieval_gmm_seed7_os4_unit_range_reference_smc.json`` against
    ``…_os4_reference_smc.json``), so results are comparable only within one convention.
    :meth:`trivial_images` gives the ambiguities of either.

    Args:
        x_shape: ``(C, H, W)``.
        oversampling: the DPS/DAPS ``oversample`` parameter (default 2.0).
        unit_range: measure ``|F(pad(x/2 + 1/2))|`` (DAPS) instead of ``|F(pad(x))|`` (DPS).
    """

    def __init__(self, x_shape: tuple[int, ...] = (3, 256, 256), oversampling: float = 2.0,
                 unit_range: bool = False) -> None:
        x_shape = tuple(int(s) for s in x_shape)
        if len(x_shape) != 3:
            raise ValueError(f"`x_shape` must be (C, H, W), got {x_shape}.")
        C, H, W = x_shape
        if oversampling <= 0:
            raise ValueError(f"`oversampling` must be > 0, got {oversampling}.")
        self.pad = int(oversampling / 8.0 * H)
        super().__init__(x_shape=x_shape, y_shape=(C, H + 2 * self.pad, W + 2 * self.pad))
        self.oversampling = oversampling
        if not isinstance(unit_range, bool):
            raise ValueError(f"`unit_range` must be True (DAPS: x/2 + 1/2) or False (DPS), got {unit_range!r}.")
        self.unit_range = unit_range

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        if self.unit_range:
            x = x * 0.5 + 0.5  # DAPS: [-1, 1] -> [0, 1] before padding
        padded = F.pad(x, (self.pad,) * 4)
        return fft2c(padded).abs()

    def trivial_images(self, x: Tensor) -> Tensor:
        """``(4^C, *x.shape)``: the images this operator maps to the same ``y`` as ``x``
        (:func:`trivial_images` in this operator's convention)."""
        return trivial_images(x, self.unit_range)


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
