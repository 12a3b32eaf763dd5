"""Centred, orthonormal 2-D FFTs (fastMRI's ``fft2c``: ifftshift → FFT → fftshift, norm='ortho')."""

from __future__ import annotations

import torch
from torch import Tensor


def fft2c(x: Tensor) -> Tensor:
    x = torch.fft.ifftshift(x, dim=(-2, -1))
    return torch.fft.fftshift(torch.fft.fft2(x, norm="ortho"), dim=(-2, -1))


def ifft2c(k: Tensor) -> Tensor:
    k = torch.fft.ifftshift(k, dim=(-2, -1))
    return torch.fft.fftshift(torch.fft.ifft2(k, norm="ortho"), dim=(-2, -1))
