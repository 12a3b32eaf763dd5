"""Metrics: posterior accuracy (sliced Wasserstein, noise floor, coverage) and image quality.

PSNR/SSIM delegate to deepinv (``deepinv.loss.metric``) on images mapped to [0, 1].
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..io import to_unit

__all__ = ["sliced_wasserstein", "sliced_wasserstein_floor", "coverage", "posterior_mean_error",
           "psnr", "ssim"]


def _flat(samples: Tensor, name: str) -> Tensor:
    if samples.dim() < 2:
        raise ValueError(f"`{name}` must be (N, *x_shape) samples, got shape {tuple(samples.shape)}.")
    return samples.reshape(samples.shape[0], -1)


def sliced_wasserstein(a: Tensor, b: Tensor, num_projections: int = 512,
                       generator: torch.Generator | None = None) -> Tensor:
    """Sliced 2-Wasserstein distance ``SW2(a, b)`` between two sample sets.

    ``sqrt(E_θ W2²(θᵀa, θᵀb))`` over ``num_projections`` random unit directions θ; the 1-D
    W2 compares sorted projections (quantile functions interpolated if the sets differ in
    size). Shapes: ``a (N, *x_shape)``, ``b (N', *x_shape)``; returns a 0-d tensor.
    """
    a, b = _flat(a, "a"), _flat(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"`a` and `b` live in different dimensions: {a.shape[1]} vs {b.shape[1]}.")
    dtype = torch.promote_types(a.dtype, b.dtype)
    theta = torch.randn((a.shape[1], num_projections), generator=generator, dtype=dtype, device=a.device)
    theta = theta / theta.norm(dim=0, keepdim=True)
    pa = (a.to(dtype) @ theta).sort(dim=0).values
    pb = (b.to(dtype) @ theta).sort(dim=0).values
    if pa.shape[0] != pb.shape[0]:
        n = max(pa.shape[0], pb.shape[0])
        levels = (torch.arange(n, dtype=dtype, device=a.device) + 0.5) / n
        pa, pb = _quantiles(pa, levels), _quantiles(pb, levels)
    return ((pa - pb) ** 2).mean(0).mean().sqrt()


def _quantiles(sorted_values: Tensor, levels: Tensor) -> Tensor:
    n = sorted_values.shape[0]
    pos = (levels * n - 0.5).clamp(0, n - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=n - 1)
    w = (pos - lo)[:, None]
    return sorted_values[lo] * (1 - w) + sorted_values[hi] * w


def sliced_wasserstein_floor(sample: Callable[[int, torch.Generator], Tensor], n: int,
                             num_projections: int = 512, generator: torch.Generator | None = None) -> Tensor:
    """Noise floor: SW2 between two independent sets of ``n`` exact samples.

    ``sample(n, generator) -> (n, *x_shape)`` draws from the exact distribution (e.g.
    ``posterior.sample``). A solver at ratio ``SW2 / floor ≈ 1`` is indistinguishable from
    exact sampling at this sample size.
    """
    return sliced_wasserstein(sample(n, generator), sample(n, generator), num_projections, generator)


def coverage(samples: Tensor, reference: Tensor, level: float = 0.9) -> Tensor:
    """Per-pixel coverage of the central ``level`` credible intervals of ``samples``.

    Intervals are the empirical ``(1-level)/2`` and ``(1+level)/2`` quantiles of ``samples
    (N, *x_shape)`` per pixel. ``reference`` is a ground truth ``(*x_shape)`` or exact
    posterior samples ``(N', *x_shape)``; returns the fraction of reference values inside
    (≈ ``level`` for a calibrated sampler).
    """
    if not 0 < level < 1:
        raise ValueError(f"`level` must be in (0, 1), got {level}.")
    flat = _flat(samples, "samples")
    alpha = (1 - level) / 2
    q = torch.quantile(flat, torch.tensor([alpha, 1 - alpha], dtype=flat.dtype, device=flat.device), dim=0)
    ref = reference.reshape(-1, flat.shape[1]).to(flat.dtype)
    inside = (ref >= q[0]) & (ref <= q[1])
    return inside.to(flat.dtype).mean()


def posterior_mean_error(samples: Tensor, exact_mean: Tensor) -> Tensor:
    """Root-mean-square error of the sample mean against the exact posterior mean (per pixel)."""
    flat = _flat(samples, "samples")
    return (flat.mean(0) - exact_mean.reshape(-1).to(flat.dtype)).pow(2).mean().sqrt()


def psnr(x: Tensor, reference: Tensor, data_range: tuple[float, float] = (-1.0, 1.0)) -> Tensor:
    """PSNR (dB) per image ``(B,)`` of ``x`` against ``reference`` (``(B, C, H, W)``), via deepinv."""
    from deepinv.loss.metric import PSNR

    return PSNR()(to_unit(x, data_range).clamp(0, 1), to_unit(reference, data_range))


def ssim(x: Tensor, reference: Tensor, data_range: tuple[float, float] = (-1.0, 1.0)) -> Tensor:
    """SSIM per image ``(B,)`` of ``x`` against ``reference`` (``(B, C, H, W)``), via deepinv."""
    from deepinv.loss.metric import SSIM

    return SSIM()(to_unit(x, data_range).clamp(0, 1).float(), to_unit(reference, data_range).float())
