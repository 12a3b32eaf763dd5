"""Blur: convolution with a kernel — Gaussian, random camera shake, or any given kernel.

Convolution is true convolution, ``y[i] = Σ_k h[k] x[i − k]`` with the kernel centred,
applied to every channel. Boundary modes: ``reflect`` / ``replicate`` (pad, then a valid
convolution: output the size of the input, as the DPS/DAPS ``Blurkernel`` with reflection
padding), ``valid`` (output smaller by ``kernel_size − 1``) and ``circular`` (FFT; exact
adjoint, SVD in Fourier, pseudo-inverse and data prox).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_tensor
from ..errors import CapabilityError
from .base import SVD, LinearOperator, per_row

__all__ = ["KernelBlur", "GaussianBlur", "MotionBlur", "gaussian_kernel", "motion_kernel", "load_kernel"]

PADDINGS = ("reflect", "replicate", "valid", "circular")


def gaussian_kernel(kernel_size: int = 61, std: float = 3.0, truncate: float = 4.0,
                    dtype: torch.dtype = torch.float64) -> Tensor:
    """Sampled isotropic Gaussian on a ``kernel_size²`` grid, truncated at radius
    ``int(truncate·std + 0.5)`` and normalised — what the DPS code gets from
    ``scipy.ndimage.gaussian_filter`` of a centred delta (default ``truncate = 4``)."""
    _check_odd(kernel_size)
    half = kernel_size // 2
    radius = min(int(truncate * std + 0.5), half)
    r = torch.arange(-half, half + 1, dtype=dtype)
    g = torch.exp(-0.5 * (r / std) ** 2) * (r.abs() <= radius)
    g = g / g.sum()
    return g[:, None] * g[None, :]


def motion_kernel(kernel_size: int = 61, intensity: float = 0.5, seed: int = 0,
                  num_points: int = 2000, dtype: torch.dtype = torch.float64) -> Tensor:
    """Random camera-shake kernel from a simulated trajectory (Boracchi & Foi 2012 model).

    A trajectory of ``num_points`` positions and total length ``0.6·kernel_size`` moves at
    constant speed; its heading diffuses (Brownian, scale ∝ ``intensity``) and, with a
    probability growing with ``intensity`` in [0, 1], jerks back (impulsive shakes), as in
    the camera-shake model of Boracchi & Foi (2012) used by the DPS code's ``motionblur``.
    It is rasterised on the ``kernel_size²`` grid by bilinear splatting and normalised.
    The same ``seed`` gives the same kernel; ``intensity = 0`` is a straight line.
    """
    _check_odd(kernel_size)
    if not 0 <= intensity <= 1:
        raise ValueError(f"`intensity` must be in [0, 1], got {intensity}.")
    rng = np.random.default_rng(seed)
    length = 0.6 * kernel_size  # total path length before fitting into the grid
    step = length / (num_points - 1)
    heading = 2 * np.pi * rng.random()
    turn = 2.5 * intensity / np.sqrt(num_points)  # Brownian heading: ~2.5·intensity rad per path
    shake_probability = 3.0 * intensity / num_points  # ~1.5 impulsive shakes per path at 0.5
    pos = np.zeros(num_points, dtype=complex)
    for t in range(num_points - 1):
        heading += turn * rng.standard_normal()
        if rng.random() < shake_probability:
            heading += np.pi + (rng.random() - 0.5)  # impulsive shake: the camera jerks back
        pos[t + 1] = pos[t] + step * np.exp(1j * heading)
    pos = pos - (pos.real.max() + pos.real.min()) / 2 - 1j * (pos.imag.max() + pos.imag.min()) / 2
    extent = max(np.ptp(pos.real), np.ptp(pos.imag), 1e-12)
    pos = pos * min(1.0, (kernel_size - 3) / extent) + (kernel_size // 2) * (1 + 1j)
    kernel = np.zeros((kernel_size, kernel_size))
    for p in pos:
        c, r = p.real, p.imag
        c0, r0 = int(np.floor(c)), int(np.floor(r))
        dc, dr = c - c0, r - r0
        kernel[r0, c0] += (1 - dr) * (1 - dc)
        kernel[r0, c0 + 1] += (1 - dr) * dc
        kernel[r0 + 1, c0] += dr * (1 - dc)
        kernel[r0 + 1, c0 + 1] += dr * dc
    return torch.as_tensor(kernel / kernel.sum(), dtype=dtype)


def load_kernel(path: str | Path, index: int = 0, dtype: torch.dtype = torch.float64) -> Tensor:
    """Read a blur kernel: ``.png`` (grayscale), ``.npy``, or a MATLAB ``.mat`` cell array
    named ``kernels`` (v5 via scipy, v7.3 via h5py — e.g. Levin et al.'s ``Levin09.mat``).
    Returns the ``index``-th kernel normalised to sum 1."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"kernel file not found: {path}")
    if path.suffix == ".npy":
        k = np.load(path, allow_pickle=False)
    elif path.suffix == ".png":
        from PIL import Image

        k = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    elif path.suffix == ".mat":
        try:
            import scipy.io

            k = scipy.io.loadmat(path)["kernels"][0, index]
        except NotImplementedError:  # MATLAB v7.3 files are HDF5
            import h5py

            with h5py.File(path, "r") as f:
                k = np.array(f[f["kernels"][index, 0]]).T
    else:
        raise ValueError(f"unsupported kernel file type {path.suffix!r}; use .png, .npy or .mat.")
    k = torch.as_tensor(np.asarray(k, dtype=np.float64), dtype=dtype)
    return k / k.sum()


def _check_odd(kernel_size: int) -> None:
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"`kernel_size` must be a positive odd number (the kernel has a centre), "
                         f"got {kernel_size}; use {kernel_size + 1}.")


class KernelBlur(LinearOperator):
    """Blur with a given kernel: ``y = h * x`` per channel.

    Shapes: ``kernel (kh, kw)`` with odd sizes, or ``(P, kh, kw)`` for one kernel per
    measurement; ``x (B, C, H, W) -> y (B, C, H, W)`` (``(B, C, H-kh+1, W-kw+1)`` for
    ``valid``). ``circular`` adds the FFT SVD (complex Fourier coordinates), ``pinv`` and
    ``prox_data``.

    Args:
        kernel: the point-spread function (normalised or not — it is used as given).
        padding: ``reflect`` (default, as DPS/DAPS), ``replicate``, ``valid`` or ``circular``.
        x_shape: ``(C, H, W)`` to check inputs and fix ``y_shape``; ``None`` for any size.
    """

    def __init__(self, kernel: Tensor, padding: str = "reflect", x_shape: tuple[int, ...] | None = None) -> None:
        check_tensor(kernel, "kernel")
        if kernel.dim() == 2:
            kernel = kernel[None]
        if kernel.dim() != 3:
            raise ValueError(f"`kernel` must be (kh, kw) or (P, kh, kw), got shape {tuple(kernel.shape)}.")
        if kernel.shape[-1] % 2 == 0 or kernel.shape[-2] % 2 == 0:
            raise ValueError(f"`kernel` sizes must be odd (the kernel has a centre), got "
                             f"{tuple(kernel.shape[-2:])}; pad it with a row/column of zeros.")
        if padding not in PADDINGS:
            raise ValueError(f"`padding` must be one of {PADDINGS}, got {padding!r}.")
        kh, kw = kernel.shape[-2:]
        y_shape = None
        if x_shape is not None:
            x_shape = tuple(int(s) for s in x_shape)
            if len(x_shape) != 3:
                raise ValueError(f"`x_shape` must be (C, H, W), got {x_shape}.")
            C, H, W = x_shape
            if padding == "valid":
                y_shape = (C, H - kh + 1, W - kw + 1)
            else:
                y_shape = x_shape
            self._check_size(H, W, kh, kw, padding)
        super().__init__(x_shape=x_shape, y_shape=y_shape)
        self.padding = padding
        self.has_svd = padding == "circular"
        self.register_buffer("kernel", kernel)

    @staticmethod
    def _check_size(H: int, W: int, kh: int, kw: int, padding: str) -> None:
        limit = {"reflect": (H > kh // 2 and W > kw // 2), "replicate": True,
                 "valid": (H >= kh and W >= kw), "circular": (H >= kh and W >= kw)}[padding]
        if not limit:
            raise ValueError(f"image {H}x{W} is too small for a {kh}x{kw} kernel with padding "
                             f"{padding!r}; use a smaller kernel or a larger image.")

    @property
    def has_pinv(self) -> bool:
        return self.padding == "circular"

    # -- direct convolution -------------------------------------------------------------
    def _conv(self, x: Tensor) -> Tensor:
        B, C = x.shape[:2]
        kernel = per_row(self.kernel, B, "kernel").to(x.dtype)  # (B or 1, kh, kw)
        kh, kw = kernel.shape[-2:]
        if self.padding in ("reflect", "replicate"):
            x = F.pad(x, (kw // 2, kw // 2, kh // 2, kh // 2), mode=self.padding)
        Hp, Wp = x.shape[-2:]
        if kh * kw > 121:
            # Large kernels: the valid part of a circular convolution on the padded grid is
            # the linear convolution (no wrap-around for outputs i >= k - 1); FFT is O(N log N).
            psf = kernel.new_zeros((kernel.shape[0], Hp, Wp))
            psf[:, :kh, :kw] = kernel
            full = torch.fft.irfft2(torch.fft.rfft2(x) * torch.fft.rfft2(psf)[:, None], s=(Hp, Wp))
            return full[..., kh - 1:, kw - 1:]
        weight = kernel.flip(-2, -1)[:, None]  # conv2d correlates; flipping makes it a convolution
        if weight.shape[0] == 1:
            out = F.conv2d(x.reshape(B * C, 1, Hp, Wp), weight)
        else:  # one kernel per row: grouped convolution over (batch x channel)
            out = F.conv2d(x.reshape(1, B * C, Hp, Wp), weight.repeat_interleave(C, dim=0), groups=B * C)
        return out.reshape(B, C, Hp - kh + 1, Wp - kw + 1)

    # -- Fourier (circular) -------------------------------------------------------------
    def _otf(self, H: int, W: int, dtype: torch.dtype) -> Tensor:
        """Transfer function ``(P, 1, H, W)``: the kernel zero-padded, centred at (0, 0), FFT'd."""
        kh, kw = self.kernel.shape[-2:]
        self._check_size(H, W, kh, kw, "circular")
        psf = self.kernel.new_zeros((self.kernel.shape[0], H, W), dtype=dtype)
        psf[:, :kh, :kw] = self.kernel.to(dtype)
        psf = torch.roll(psf, shifts=(-(kh // 2), -(kw // 2)), dims=(-2, -1))
        return torch.fft.fft2(psf)[:, None]

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        if x.dim() != 4:
            raise ValueError(f"`x` must be (B, C, H, W), got shape {tuple(x.shape)}.")
        if self.padding == "circular":
            otf = per_row(self._otf(*x.shape[-2:], x.dtype), x.shape[0], "kernel")
            return torch.fft.ifft2(torch.fft.fft2(x) * otf).real
        if self.x_shape is None:
            self._check_size(*x.shape[-2:], *self.kernel.shape[-2:], self.padding)
        return self._conv(x)

    def adjoint(self, y: Tensor) -> Tensor:
        if self.padding == "circular":
            otf = per_row(self._otf(*y.shape[-2:], y.dtype), y.shape[0], "kernel")
            return torch.fft.ifft2(torch.fft.fft2(y) * otf.conj()).real
        if self.x_shape is None:
            raise ValueError("the adjoint of a non-circular blur needs `x_shape` (the input size).")
        return super().adjoint(y)  # exact: autograd's transpose of the padded convolution

    def _require_circular(self, what: str) -> None:
        if self.padding != "circular":
            raise CapabilityError(f"{what} of a blur is only available with padding='circular' "
                                  f"(got {self.padding!r}); build KernelBlur(..., padding='circular').")

    def pinv(self, y: Tensor, rcond: float = 1e-6) -> Tensor:
        self._require_circular("pinv")
        otf = per_row(self._otf(*y.shape[-2:], y.dtype), y.shape[0], "kernel")
        mag2 = otf.abs() ** 2
        keep = mag2 > (rcond * mag2.amax(dim=(-2, -1), keepdim=True)) ** 2
        inv = torch.where(keep, otf.conj() / mag2.clamp_min(1e-300), torch.zeros_like(otf))
        return torch.fft.ifft2(torch.fft.fft2(y) * inv).real

    def prox_data(self, z: Tensor, y: Tensor, rho: float | Tensor) -> Tensor:
        """Closed form by FFT with circular padding; conjugate gradients otherwise."""
        if self.padding != "circular":
            return super().prox_data(z, y, rho)
        otf = per_row(self._otf(*z.shape[-2:], z.dtype), z.shape[0], "kernel")
        rho = torch.as_tensor(rho, dtype=z.dtype, device=z.device).reshape(-1, 1, 1, 1)
        num = otf.conj() * torch.fft.fft2(y) + rho * torch.fft.fft2(z)
        return torch.fft.ifft2(num / (otf.abs() ** 2 + rho)).real

    def svd(self) -> SVD:
        """``A = Fᴴ diag(ĥ) F`` with the unitary DFT ``F``: singular values ``|ĥ|`` (per channel),
        ``Vᵀ = F`` and ``U = Fᴴ diag(ĥ/|ĥ|)``; spectral coordinates are complex ``(B, C·H·W)``."""
        self._require_circular("svd")
        if self.x_shape is None or self.kernel.shape[0] != 1:
            raise CapabilityError("svd() of a blur needs `x_shape` and a single kernel.")
        C, H, W = self.x_shape
        otf = self._otf(H, W, self.kernel.dtype)[0]  # (1, H, W)
        phase = torch.where(otf.abs() > 0, otf / otf.abs().clamp_min(1e-300), torch.ones_like(otf))
        shape = (C, H, W)
        return SVD(singular_values=otf.abs().expand(C, H, W).flatten(),
                   Vt=lambda x: torch.fft.fft2(x, norm="ortho").flatten(1),
                   V=lambda z: torch.fft.ifft2(z.reshape(-1, *shape), norm="ortho").real,
                   Ut=lambda y: (torch.fft.fft2(y, norm="ortho") * phase.conj()).flatten(1),
                   U=lambda z: torch.fft.ifft2(z.reshape(-1, *shape) * phase, norm="ortho").real)

    def extra_repr(self) -> str:
        return f"kernel={tuple(self.kernel.shape)}, padding={self.padding!r}, x_shape={self.x_shape}"


class GaussianBlur(KernelBlur):
    """Isotropic Gaussian blur. Defaults ``kernel_size = 61``, ``std = 3.0`` are the DPS/DAPS
    task setting (``configs/gaussian_deblur_config.yaml``: kernel_size 61, intensity 3.0).

    Args:
        kernel_size: odd grid size of the kernel.
        std: standard deviation in pixels.
        padding, x_shape: as :class:`KernelBlur`.
    """

    def __init__(self, kernel_size: int = 61, std: float = 3.0, padding: str = "reflect",
                 x_shape: tuple[int, ...] | None = None) -> None:
        if not std > 0:
            raise ValueError(f"`std` must be > 0, got {std}.")
        super().__init__(gaussian_kernel(kernel_size, std), padding=padding, x_shape=x_shape)
        self.std = std


class MotionBlur(KernelBlur):
    """Random camera-shake blur (:func:`motion_kernel`), drawn once from ``seed``.

    Defaults ``kernel_size = 61``, ``intensity = 0.5`` are the DPS/DAPS task setting
    (``configs/motion_deblur_config.yaml``). The official code draws its kernels with the
    ``motionblur`` package; ours follow the same trajectory model but not its random stream.

    Args:
        kernel_size: odd grid size of the kernel.
        intensity: shake intensity in [0, 1].
        seed: draws the trajectory.
        padding, x_shape: as :class:`KernelBlur`.
    """

    def __init__(self, kernel_size: int = 61, intensity: float = 0.5, seed: int = 0,
                 padding: str = "reflect", x_shape: tuple[int, ...] | None = None) -> None:
        super().__init__(motion_kernel(kernel_size, intensity, seed), padding=padding, x_shape=x_shape)
        self.intensity, self.seed = intensity, seed
