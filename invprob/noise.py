"""Measurement noise models: ``y = noise.sample(A(x))`` and ``noise.log_likelihood(y, A(x))``.

Noise levels are stated in the units of ``y = A(x)`` (contract 1 of ``docs/design.md``):
with images in [-1, 1], the DPS/DAPS/InverseBench setting ``sigma_y = 0.05`` is
``Gaussian(0.05)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .checks import check_tensor

__all__ = ["NoiseModel", "Gaussian", "Poisson", "PhotonCounts"]


class NoiseModel(nn.Module):
    """Base class: ``sample(y_clean, generator) -> y`` and per-sample ``log_likelihood``."""

    def sample(self, y_clean: Tensor, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError

    def log_likelihood(self, y: Tensor, y_clean: Tensor) -> Tensor:
        """``log p(y | y_clean)`` summed over everything but the batch dim: shape ``(B,)``."""
        raise NotImplementedError

    def check_measurement(self, y: Tensor) -> None:
        """Raise ``ValueError`` naming the fix if ``y`` cannot come from this noise model (called
        once by :class:`invprob.Problem`); any finite ``y`` by default."""


class Gaussian(NoiseModel):
    """Additive white Gaussian noise ``y = y_clean + sigma * n``, ``n ~ N(0, I)``.

    For complex measurements (MRI k-space, coded diffraction) the real and imaginary
    parts each receive independent noise of standard deviation ``sigma``.

    Args:
        sigma: standard deviation in the units of ``y`` (> 0).
    """

    def __init__(self, sigma: float) -> None:
        super().__init__()
        sigma = float(sigma)
        if not 0 < sigma < math.inf:
            raise ValueError(f"Gaussian noise `sigma` must be finite and > 0, got {sigma}; for a "
                             f"noiseless problem use a small value such as 1e-3.")
        self.sigma = sigma

    def sample(self, y_clean: Tensor, generator: torch.Generator | None = None) -> Tensor:
        check_tensor(y_clean, "y_clean")
        noise = torch.randn(y_clean.shape, generator=generator, dtype=y_clean.dtype,
                            device=y_clean.device)
        if y_clean.is_complex():
            noise = noise * math.sqrt(2.0)  # randn of a complex dtype has E|n|^2 = 1 in total
        return y_clean + self.sigma * noise

    def log_likelihood(self, y: Tensor, y_clean: Tensor) -> Tensor:
        residual = (y - y_clean).flatten(1)
        num_real = residual.shape[1] * (2 if residual.is_complex() else 1)
        sq = residual.abs().pow(2).sum(1)
        return -0.5 * sq / self.sigma**2 - 0.5 * num_real * math.log(2 * math.pi * self.sigma**2)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"


class Poisson(NoiseModel):
    """Poisson (shot) noise on images in [-1, 1], as in the DPS code's ``PoissonNoise``.

    ``y_clean`` in [-1, 1] is mapped to photon counts ``k ~ Poisson(rate * scale * (y+1)/2)``
    and back: ``y = 2 k / (rate * scale) - 1``. ``scale = 255`` follows the DPS code
    (``guided_diffusion/measurements.py``); a larger ``rate`` means less noise.

    Args:
        rate: photons per grey level (> 0). DPS uses 1.0.
        scale: grey levels spanning [0, 1] (default 255).
    """

    def __init__(self, rate: float, scale: float = 255.0) -> None:
        super().__init__()
        if not float(rate) > 0:
            raise ValueError(f"Poisson `rate` must be > 0, got {rate}.")
        self.rate = float(rate)
        self.scale = float(scale)

    def _intensity(self, y_clean: Tensor) -> Tensor:
        return ((y_clean + 1) / 2).clamp_min(0) * self.rate * self.scale

    def sample(self, y_clean: Tensor, generator: torch.Generator | None = None) -> Tensor:
        check_tensor(y_clean, "y_clean")
        if y_clean.is_complex():
            raise TypeError("Poisson noise needs a real `y_clean` (intensities), got complex.")
        counts = torch.poisson(self._intensity(y_clean), generator=generator)
        return 2 * counts / (self.rate * self.scale) - 1

    def log_likelihood(self, y: Tensor, y_clean: Tensor) -> Tensor:
        counts = ((y + 1) / 2 * self.rate * self.scale).round()
        lam = self._intensity(y_clean).clamp_min(1e-12)
        ll = counts * lam.log() - lam - torch.lgamma(counts + 1)
        return ll.flatten(1).sum(1)

    def extra_repr(self) -> str:
        return f"rate={self.rate}, scale={self.scale}"


class PhotonCounts(NoiseModel):
    """Poisson photon counts ``y ~ Poisson(y_clean)``: ``y_clean`` is the expected count (≥ 0)
    and ``y`` the detected count, unscaled — the pre-log model of transmission CT
    (:class:`invprob.operators.TransmissionCT`). Measurements must be non-negative counts.
    """

    def sample(self, y_clean: Tensor, generator: torch.Generator | None = None) -> Tensor:
        check_tensor(y_clean, "y_clean")
        if y_clean.is_complex():
            raise TypeError("PhotonCounts needs real expected counts `y_clean`, got complex.")
        return torch.poisson(y_clean.clamp_min(0), generator=generator)

    def log_likelihood(self, y: Tensor, y_clean: Tensor) -> Tensor:
        lam = y_clean.clamp_min(1e-12)
        return (y * lam.log() - lam - torch.lgamma(y + 1)).flatten(1).sum(1)

    def check_measurement(self, y: Tensor) -> None:
        if y.is_complex():
            raise ValueError("`measurement`: photon counts must be real, got a complex tensor.")
        if bool((y < 0).any()):
            raise ValueError(f"`measurement` holds negative photon counts (min {y.min().item():.4g}); PhotonCounts "
                             f"takes raw detector counts before the log transform — pass the pre-log data, or use "
                             f"noise.Gaussian for post-log line integrals.")
