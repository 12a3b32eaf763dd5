"""MRI: Cartesian single-coil ``y = M F x`` and multi-coil (SENSE) ``y_c = M F (S_c x)``.

``F`` is the centred orthonormal 2-D FFT (fastMRI ``fft2c``). Measurements are complex
k-space. The prior's space is real; ``image_mode`` says how it maps to the complex image:

* ``'channels'``: ``x (B, 2, H, W)`` holds real and imaginary parts (``x[:,0] + i x[:,1]``);
* ``'magnitude'``: ``x (B, 1, H, W)`` is a real image with zero phase (magnitude priors such
  as brain MR slices).

The adjoint is taken for the real inner product ``Re⟨A x, y⟩``, so it maps back to the
prior's real space (for ``'magnitude'`` it keeps the real part).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..checks import check_tensor
from ..errors import CapabilityError
from ._fft import fft2c, ifft2c
from .base import SVD, LinearOperator, per_row

__all__ = ["MRI", "MultiCoilMRI", "mri_mask", "estimate_coil_maps", "IMAGE_MODES"]

IMAGE_MODES = ("channels", "magnitude")


def mri_mask(shape: tuple[int, int], kind: str = "random", acceleration: int = 4,
             center_fraction: float = 0.08, seed: int = 0) -> Tensor:
    """Cartesian line mask ``(H, W)`` (phase-encoding lines along the last axis) from deepinv's
    generators: ``'random'`` lines, ``'equispaced'`` lines, ``'gaussian'`` variable density;
    ``acceleration`` ×, fully sampled ``center_fraction`` of the lines."""
    from deepinv.physics import generator as dgen

    generators = {"random": dgen.RandomMaskGenerator, "equispaced": dgen.EquispacedMaskGenerator,
                  "gaussian": dgen.GaussianMaskGenerator}
    if kind not in generators:
        raise ValueError(f"`kind` must be one of {sorted(generators)}, got {kind!r}.")
    rng = torch.Generator().manual_seed(int(seed))
    mask = generators[kind](tuple(shape), acceleration=acceleration, center_fraction=center_fraction,
                            rng=rng).step(batch_size=1)["mask"]
    return mask[0, 0].float()


def _check_mask(mask: Tensor, x_shape: tuple[int, ...] | None) -> Tensor:
    check_tensor(mask, "mask")
    if mask.is_complex():
        raise TypeError("`mask` must be real (0/1 sampling pattern), got a complex tensor.")
    if mask.dim() == 2:
        mask = mask[None]
    if mask.dim() != 3:
        raise ValueError(f"`mask` must be (H, W) or (P, H, W), got shape {tuple(mask.shape)}.")
    if x_shape is not None and tuple(mask.shape[-2:]) != tuple(x_shape[-2:]):
        raise ValueError(f"`mask` is {tuple(mask.shape[-2:])} but images are {tuple(x_shape[-2:])}; "
                         f"build the mask for the image size (e.g. mri_mask(shape=...)).")
    return mask.float()


class _MRIBase(LinearOperator):
    complex_input = False
    complex_output = True

    def __init__(self, mask: Tensor, image_mode: str, x_shape, y_shape) -> None:
        if image_mode not in IMAGE_MODES:
            raise ValueError(f"`image_mode` must be one of {IMAGE_MODES}, got {image_mode!r}.")
        super().__init__(x_shape=x_shape, y_shape=y_shape)
        self.image_mode = image_mode
        self.register_buffer("mask", mask)

    def to_complex(self, x: Tensor) -> Tensor:
        """Prior space ``(B, 2 or 1, H, W)`` → complex image ``(B, H, W)``."""
        if self.image_mode == "channels":
            return torch.complex(x[:, 0], x[:, 1])
        return x[:, 0].to(torch.promote_types(x.dtype, torch.complex64))  # complex128 for float64

    def to_real(self, image: Tensor) -> Tensor:
        """Complex image ``(B, H, W)`` → prior space (the adjoint of :meth:`to_complex`)."""
        if self.image_mode == "channels":
            return torch.stack([image.real, image.imag], 1)
        return image.real[:, None]

    def _mask(self, batch: int, dtype: torch.dtype) -> Tensor:
        return per_row(self.mask, batch, "mask").to(dtype)


class MRI(_MRIBase):
    """Single-coil Cartesian MRI ``y = M ⊙ F x``.

    Shapes: ``x (B, 2, H, W)`` (``image_mode='channels'``) or ``(B, 1, H, W)``
    (``'magnitude'``) ``-> y (B, 1, H, W)`` complex. Mask ``(H, W)`` or ``(P, H, W)`` of
    0/1 (any 2-D pattern: lines from :func:`mri_mask`, radial masks from files). Exact
    adjoint; with ``'channels'`` also SVD (singular values = mask, complex Fourier
    coordinates), ``pinv`` (zero-filled) and ``prox_data``.

    Args:
        mask: the sampling pattern.
        image_mode: ``'channels'`` or ``'magnitude'`` (module docstring).
    """

    def __init__(self, mask: Tensor, image_mode: str = "magnitude") -> None:
        mask = _check_mask(mask, None)
        H, W = mask.shape[-2:]
        channels = 2 if image_mode == "channels" else 1
        super().__init__(mask, image_mode, x_shape=(channels, H, W), y_shape=(1, H, W))
        self.has_svd = image_mode == "channels"

    @property
    def has_pinv(self) -> bool:
        return self.image_mode == "channels"

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        k = fft2c(self.to_complex(x))
        return (k * self._mask(x.shape[0], k.real.dtype))[:, None]

    def adjoint(self, y: Tensor) -> Tensor:
        return self.to_real(ifft2c(y[:, 0] * self._mask(y.shape[0], y.real.dtype)))

    def _require_channels(self, what: str) -> None:
        if self.image_mode != "channels":
            raise CapabilityError(f"{what} of single-coil MRI needs image_mode='channels': with "
                                  f"'magnitude' the real-image constraint couples k-space points.")

    def pinv(self, y: Tensor) -> Tensor:
        self._require_channels("pinv")
        return self.adjoint(y)  # M is a projection and F unitary: A⁺ = Aᴴ

    def prox_data(self, z: Tensor, y: Tensor, rho: float | Tensor) -> Tensor:
        """Closed form in k-space with ``image_mode='channels'``; conjugate gradients otherwise."""
        if self.image_mode != "channels":
            return super().prox_data(z, y, rho)
        m = self._mask(z.shape[0], z.dtype)
        rho = torch.as_tensor(rho, dtype=z.dtype, device=z.device).reshape(-1, 1, 1)
        k = (m * y[:, 0] + rho * fft2c(self.to_complex(z))) / (m + rho)
        return self.to_real(ifft2c(k))

    def svd(self) -> SVD:
        self._require_channels("svd")
        if self.mask.shape[0] != 1:
            raise CapabilityError("svd() needs a single mask.")
        H, W = self.mask.shape[-2:]
        return SVD(singular_values=self.mask[0].flatten(),
                   Vt=lambda x: fft2c(self.to_complex(x)).flatten(1),
                   V=lambda z: self.to_real(ifft2c(z.reshape(-1, H, W))),
                   Ut=lambda y: y.reshape(y.shape[0], -1),
                   U=lambda z: z.reshape(-1, 1, H, W))


class MultiCoilMRI(_MRIBase):
    """Multi-coil Cartesian MRI (SENSE) ``y_c = M ⊙ F (S_c x)``.

    Shapes: ``coil_maps (N_c, H, W)`` complex (or ``(P, N_c, H, W)``), ``x`` as in
    :class:`MRI`, ``y (B, N_c, H, W)`` complex. Exact adjoint ``Σ_c S_c* Fᴴ M y_c``;
    ``pinv`` is the least-squares (CG-SENSE) solution, see :meth:`cg_sense`.

    Args:
        mask: sampling pattern ``(H, W)`` or ``(P, H, W)``.
        coil_maps: coil sensitivities, e.g. from :func:`estimate_coil_maps`.
        image_mode: ``'channels'`` or ``'magnitude'``.
    """

    def __init__(self, mask: Tensor, coil_maps: Tensor, image_mode: str = "channels") -> None:
        check_tensor(coil_maps, "coil_maps")
        if not coil_maps.is_complex():
            raise TypeError(f"`coil_maps` must be complex, got {coil_maps.dtype}.")
        if coil_maps.dim() == 3:
            coil_maps = coil_maps[None]
        if coil_maps.dim() != 4:
            raise ValueError(f"`coil_maps` must be (N_c, H, W) or (P, N_c, H, W), got {tuple(coil_maps.shape)}.")
        H, W = coil_maps.shape[-2:]
        mask = _check_mask(mask, (H, W))
        channels = 2 if image_mode == "channels" else 1
        super().__init__(mask, image_mode, x_shape=(channels, H, W), y_shape=(coil_maps.shape[1], H, W))
        self.register_buffer("coil_maps", coil_maps)

    @property
    def has_pinv(self) -> bool:
        return True

    def _maps(self, batch: int, dtype: torch.dtype) -> Tensor:
        return per_row(self.coil_maps, batch, "coil_maps").to(dtype)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        image = self.to_complex(x)
        k = fft2c(self._maps(x.shape[0], image.dtype) * image[:, None])
        return k * self._mask(x.shape[0], k.real.dtype)[:, None]

    def adjoint(self, y: Tensor) -> Tensor:
        coil_images = ifft2c(y * self._mask(y.shape[0], y.real.dtype)[:, None])
        return self.to_real((self._maps(y.shape[0], y.dtype).conj() * coil_images).sum(1))

    def cg_sense(self, y: Tensor, num_iters: int = 30, damping: float = 0.0) -> tuple[Tensor, list[float]]:
        """Least squares ``argmin ‖A x − y‖² + damping ‖x‖²`` by conjugate gradients on the normal
        equations (CG-SENSE, Pruessmann et al. 2001). Returns ``x`` and the relative
        residuals ``‖A x_k − y‖ / ‖y‖`` per iteration."""
        def normal(v):
            return self.adjoint(self.forward(v)) + damping * v

        b = self.adjoint(y)
        x = torch.zeros_like(b)
        r = b.clone()
        p = r.clone()
        rs = (r * r).flatten(1).sum(1)
        history = []
        y_norm = y.abs().flatten(1).norm(dim=1)
        for _ in range(num_iters):
            Ap = normal(p)
            alpha = rs / (p * Ap).flatten(1).sum(1).clamp_min(1e-30)
            x = x + alpha.view(-1, 1, 1, 1) * p
            r = r - alpha.view(-1, 1, 1, 1) * Ap
            rs_new = (r * r).flatten(1).sum(1)
            p = r + (rs_new / rs.clamp_min(1e-30)).view(-1, 1, 1, 1) * p
            rs = rs_new
            history.append(((self.forward(x) - y).abs().flatten(1).norm(dim=1) / y_norm).max().item())
        return x, history

    def pinv(self, y: Tensor) -> Tensor:
        return self.cg_sense(y, num_iters=50)[0]


def estimate_coil_maps(kspace: Tensor, calib_size: int = 24, eps: float = 1e-6) -> Tensor:
    """Coil sensitivities from the fully sampled centre of k-space (ACS).

    The central ``calib_size²`` block of each coil's k-space, Hann-windowed and zero-filled,
    gives smooth low-resolution coil images ``c_j``; the maps are ``c_j / sqrt(Σ|c_j|²)``
    (normalised to the root-sum-of-squares, so ``Σ_j |S_j|² = 1`` wherever there is signal).
    A documented simpler alternative to ESPIRiT (Uecker et al. 2014), which also yields
    ``Σ|S_j|² ≈ 1`` inside the object; no maintained pure-PyTorch ESPIRiT package fits our
    dependency set (sigpy would add numba/cupy).

    Args:
        kspace: ``(N_c, H, W)`` complex, centred (DC in the middle).
        calib_size: side of the calibration block.
    Returns:
        ``(N_c, H, W)`` complex maps.
    """
    check_tensor(kspace, "kspace")
    if not kspace.is_complex() or kspace.dim() != 3:
        raise ValueError(f"`kspace` must be complex (N_c, H, W), got {kspace.dtype} {tuple(kspace.shape)}.")
    _, H, W = kspace.shape
    ch, cw = H // 2, W // 2
    half = calib_size // 2
    window = torch.zeros(H, W, dtype=kspace.real.dtype)
    hann = torch.hann_window(calib_size + 2, periodic=False, dtype=kspace.real.dtype)[1:-1]
    window[ch - half : ch - half + calib_size, cw - half : cw - half + calib_size] = hann[:, None] * hann[None]
    low = ifft2c(kspace * window)
    rss = low.abs().pow(2).sum(0).sqrt()
    return low / (rss + eps * rss.max())
