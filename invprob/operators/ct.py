"""Computed tomography: the 2-D Radon transform (parallel and fan beam), slice by slice for
volumes, and the pre-log transmission model for photon counts.

The projector is deepinv's pure-torch Radon transform (``deepinv.physics.Tomography``: the
image is resampled bilinearly along each ray with ``grid_sample``), unnormalised, so a
measurement is a line integral in pixel units: a ray through ``n`` pixels of value 1 sums to
about ``n``. The adjoint is its exact transpose (autograd's vector-Jacobian product of the
projector), not deepinv's interpolating back-projector, so the adjoint test holds to
rounding. Filtered back-projection (ramp filter) is :meth:`CT.fbp`, an approximate inverse:
it is *not* offered as ``pinv``, so solvers that rely on an exact pseudo-inverse refuse CT.

Shapes. A slice ``x (B, C, H, W)`` with ``H = W`` gives ``y (B, C, A, N)``: one row per view
(``A`` angles) and one column per detector cell (``N``) — the layout of astra and torch-radon.
A volume of ``D`` slices is one unknown ``x (B, D, C, H, W)`` giving ``y (B, D, C, A, N)``;
every slice is projected with the same geometry.

Angles are in degrees. A sparse-view geometry takes ``views`` angles evenly spaced over
``[start, start + span)`` (``span = 180``: a parallel-beam scan needs only half a turn);
limited-angle CT keeps ``span < 180``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..checks import check_tensor
from .base import LinearOperator, Operator

__all__ = ["CT", "TransmissionCT", "ct_angles"]


def ct_angles(views: int, span: float = 180.0, start: float = 0.0) -> Tensor:
    """``views`` angles in degrees, evenly spaced over ``[start, start + span)``, float64.

    DiffusionMBIR's sparse-view scans space their views over half a turn without the endpoint
    (``np.linspace(0, π, views, endpoint=False)``); its limited-angle scan keeps a 90° arc."""
    if isinstance(views, bool) or not isinstance(views, int) or views < 1:
        raise ValueError(f"`views` must be a positive int, got {views!r}.")
    if not 0 < float(span) <= 360:
        raise ValueError(f"`span` must be in (0, 360] degrees, got {span!r}.")
    return float(start) + float(span) * torch.arange(views, dtype=torch.float64) / views


class CT(LinearOperator):
    """Parallel- or fan-beam CT ``y = R x``, on a slice or a stack of slices.

    Shapes: ``x (B, C, H, H)`` → ``y (B, C, A, N)``; with ``slices = D`` the unknown is a
    volume ``x (B, D, C, H, H)`` → ``y (B, D, C, A, N)``. ``A`` = number of angles; ``N`` =
    ``ceil(√2 H)`` for parallel beam (every ray through the square is seen: skimage's
    ``radon(circle=False)`` and DiffusionMBIR's geometry), or the fan-beam detector's cell
    count. Units: line integrals in pixel lengths of ``x``'s values.

    Linear with the exact adjoint (the projector's transpose); ``prox_data`` by conjugate
    gradients; :meth:`fbp` for the filtered back-projection (an approximation, not ``pinv``).

    Args:
        size: image height = width ``H`` in pixels.
        angles: projection angles in degrees (a list or 1-D tensor), e.g. :func:`ct_angles`.
        channels: ``C`` (1 for CT slices).
        slices: ``None`` for a single slice; ``D`` for a volume of ``D`` slices.
        fan_beam: fan-beam instead of parallel-beam geometry.
        fan_parameters: deepinv's fan geometry (``source_radius``, ``detector_radius``,
            ``n_detector_pixels``, ``detector_spacing``, ``pixel_spacing``; its defaults where
            absent, a 258-cell detector at 57.5 cm from the axis).
    """

    def __init__(self, size: int, angles, channels: int = 1, slices: int | None = None,
                 fan_beam: bool = False, fan_parameters: dict | None = None) -> None:
        from deepinv.physics import Tomography

        if isinstance(size, bool) or not isinstance(size, int) or size < 2:
            raise ValueError(f"`size` must be an int >= 2 (image height = width), got {size!r}.")
        if slices is not None and (isinstance(slices, bool) or not isinstance(slices, int) or slices < 1):
            raise ValueError(f"`slices` must be None (one slice) or a positive int (slices of a volume), got {slices!r}.")
        angles = torch.as_tensor(angles, dtype=torch.float64).flatten()
        if angles.numel() < 1 or not torch.isfinite(angles).all():
            raise ValueError("`angles` must be a non-empty list of finite angles in degrees, e.g. ct_angles(18).")
        if fan_parameters is not None and not fan_beam:
            raise ValueError("`fan_parameters` describe a fan-beam geometry; pass fan_beam=True or drop them.")
        tomography = Tomography(angles=angles.float(), img_width=size, circle=False, normalize=False,
                                adjoint_via_backprop=True, fan_beam=bool(fan_beam),
                                fan_parameters=dict(fan_parameters) if fan_parameters else None)
        with torch.no_grad():
            detectors = tomography.A(torch.zeros(1, 1, size, size)).shape[-2]
        pre = () if slices is None else (slices,)
        super().__init__(x_shape=(*pre, channels, size, size), y_shape=(*pre, channels, angles.numel(), detectors))
        self.tomography = tomography
        self.register_buffer("angles", angles.float())  # degrees; follows .to(dtype) like the grids
        self.size, self.slices, self.fan_beam = size, slices, bool(fan_beam)
        self.fan_parameters = dict(tomography.radon.fan_parameters) if fan_beam else None  # with deepinv's defaults
        self.detectors = int(detectors)

    @property
    def views(self) -> int:
        return self.angles.numel()

    def _match(self, t: Tensor) -> Tensor:
        """``t`` if its dtype and device are the projector's, else one clear error."""
        grids = self.tomography.radon.all_grids
        if t.dtype != grids.dtype or t.device != grids.device:
            raise TypeError(f"the input is {t.dtype} on {t.device} but this CT operator computes in {grids.dtype} on "
                            f"{grids.device}; move one to the other, e.g. operator.to({t.dtype}).")
        return t

    def check_input(self, x: Tensor, name: str = "x") -> None:
        check_tensor(x, name)
        if self.slices is not None and x.dim() == len(self.x_shape) and tuple(x.shape) == tuple(self.x_shape):
            raise ValueError(f"`{name}` has shape {tuple(x.shape)}: a single volume; add the batch dim, "
                             f"x[None] of shape (1, {', '.join(map(str, self.x_shape))}).")
        if (self.slices is not None and x.dim() == len(self.x_shape) + 1
                and tuple(x.shape[1:]) != tuple(self.x_shape) and sorted(x.shape[1:]) == sorted(self.x_shape)):
            raise ValueError(f"`{name}` has shape {tuple(x.shape)} but this CT volume operator takes (B, D, C, H, W) = "
                             f"(B, {', '.join(map(str, self.x_shape))}): the slice axis D comes first after the "
                             f"batch; permute the volume (e.g. x.movedim(-1, 1) for (B, C, H, W, D) data).")
        super().check_input(x, name)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        y = self.tomography.A(self._match(x).reshape(-1, 1, self.size, self.size))  # (n, 1, N, A): deepinv's layout
        return y.transpose(-1, -2).reshape(*x.shape[:-2], self.views, self.detectors)

    # ``adjoint``: LinearOperator's autograd transpose of ``forward`` (exact, any dtype).

    def fbp(self, y: Tensor) -> Tensor:
        """Filtered back-projection of ``y (B, [D,] C, A, N)`` → ``(B, [D,] C, H, W)``: deepinv's
        ramp filter along the detector, then the back-projection (the adjoint) scaled by
        ``π / (2 A)``. The classical fast reconstruction, an approximate inverse that streaks with
        few views (and, for fan beam, lacks the fan-angle weighting)."""
        self._match(check_tensor(y, "y"))
        tomo = self.tomography
        ramp = tomo.filter if self.fan_beam else tomo.iradon.filter
        flat = y.reshape(-1, 1, self.views, self.detectors).transpose(-1, -2)  # (n, 1, N, A)
        filtered = ramp(flat).to(y.dtype).transpose(-1, -2).reshape(y.shape)
        return self.adjoint(filtered) * (math.pi / (2 * self.views))

    def extra_repr(self) -> str:
        return (f"size={self.size}, views={self.views}, detectors={self.detectors}, slices={self.slices}, "
                f"fan_beam={self.fan_beam}")


class TransmissionCT(Operator):
    """Pre-log transmission CT: expected photon counts ``y = I₀ · exp(−μ · R((x + 1) / 2))``.

    The image ``x`` in ``[-1, 1]`` maps to attenuation ``μ (x + 1)/2`` per pixel length (``μ``
    in 1/pixel: the attenuation of the brightest value), ``R`` is the :class:`CT` projector and
    ``I₀`` the unattenuated photon count per detector cell. Pair it with
    :class:`invprob.noise.PhotonCounts` for Poisson counts (``y ~ Poisson(I₀ e^{−∫μ})``): the
    low-dose model before the log transform. Non-linear (Beer–Lambert) and differentiable.

    Shapes as the wrapped :class:`CT`.

    Args:
        ct: the projector geometry.
        photons: ``I₀`` (> 0), e.g. 1e4 photons per cell for low dose.
        attenuation: ``μ`` (> 0) in 1/pixel; pick it so that the longest ray's ``∫μ`` stays
            a few units (counts of ``I₀ e^{-5}`` at most attenuation).
    """

    def __init__(self, ct: CT, photons: float = 1e4, attenuation: float = 0.02) -> None:
        if not isinstance(ct, CT):
            raise TypeError(f"`ct` must be an invprob.operators.CT, got {type(ct).__name__}.")
        for name, value in (("photons", photons), ("attenuation", attenuation)):
            if isinstance(value, bool) or not 0 < float(value) < math.inf:
                raise ValueError(f"`{name}` must be a finite number > 0, got {value!r}.")
        super().__init__(x_shape=ct.x_shape, y_shape=ct.y_shape)
        self.ct, self.photons, self.attenuation = ct, float(photons), float(attenuation)

    def forward(self, x: Tensor) -> Tensor:
        return self.photons * torch.exp(-self.attenuation * self.ct((x + 1) / 2))

    def post_log(self, counts: Tensor) -> Tensor:
        """Line integrals of ``(x + 1)/2`` from counts, ``−log(y / I₀) / μ`` (counts below 1 read
        as 1): the data :meth:`CT.fbp` and the linear model take after the log transform."""
        return -torch.log(counts.clamp_min(1.0) / self.photons) / self.attenuation

    def extra_repr(self) -> str:
        return f"photons={self.photons}, attenuation={self.attenuation}"
