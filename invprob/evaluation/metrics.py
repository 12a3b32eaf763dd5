"""Metrics: posterior accuracy (sliced Wasserstein, noise floor, coverage, std–error
correlation) and image quality.

PSNR/SSIM delegate to deepinv (``deepinv.loss.metric``) on images mapped to [0, 1]; LPIPS to
the ``lpips`` package (Zhang et al. 2018); FID/KID over sets to torchmetrics. The perceptual
metrics need pretrained feature networks from the user's torch cache (downloaded once when
online): without them the factories print one notice and return ``None``, so a table leaves the
column out instead of crashing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from ..io import to_unit

__all__ = ["sliced_wasserstein", "sliced_wasserstein_floor", "coverage", "posterior_mean_error",
           "std_error_correlation", "psnr", "ssim", "lpips_metric", "set_distances"]


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


def std_error_correlation(std: Tensor, error: Tensor, block: int = 1) -> Tensor:
    """Pearson correlation per image ``(B,)`` between a posterior std map and the absolute error
    of the posterior mean, both ``(B, *x_shape)``: near 1 when the spread marks where the mean is
    wrong, near 0 for a std map of uniform speckle, NaN where either map is exactly constant. ``block > 1`` correlates the means over ``block ×
    block`` tiles of images ``(B, C, H, W)`` whose sides ``block`` divides (regions rather than
    pixels)."""
    if std.shape != error.shape:
        raise ValueError(f"`std` {tuple(std.shape)} and `error` {tuple(error.shape)} must have the same shape.")
    dtype = std.dtype if std.is_floating_point() else torch.get_default_dtype()
    std, error = std.to(dtype), error.abs().to(dtype)
    if block > 1:
        if std.dim() != 4 or std.shape[-2] % block or std.shape[-1] % block:
            raise ValueError(f"`block` {block} needs images (B, C, H, W) whose H and W it divides, "
                             f"got shape {tuple(std.shape)}.")
        std, error = torch.nn.functional.avg_pool2d(std, block), torch.nn.functional.avg_pool2d(error, block)
    a = _flat(std, "std") - _flat(std, "std").mean(1, keepdim=True)
    b = _flat(error, "error") - _flat(error, "error").mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))


def psnr(x: Tensor, reference: Tensor, data_range: tuple[float, float] = (-1.0, 1.0)) -> Tensor:
    """PSNR (dB) per image ``(B,)`` of ``x`` against ``reference`` (``(B, C, H, W)``), via deepinv."""
    from deepinv.loss.metric import PSNR

    return PSNR()(to_unit(x, data_range).clamp(0, 1), to_unit(reference, data_range))


def ssim(x: Tensor, reference: Tensor, data_range: tuple[float, float] = (-1.0, 1.0)) -> Tensor:
    """SSIM per image ``(B,)`` of ``x`` against ``reference`` (``(B, C, H, W)``), via deepinv."""
    from deepinv.loss.metric import SSIM

    return SSIM()(to_unit(x, data_range).clamp(0, 1).float(), to_unit(reference, data_range).float())


def _cached(url: str) -> bool:
    """Whether the torch hub cache holds the file of ``url`` (torchvision's and torch-fidelity's
    weights are cached there under their file names)."""
    return (Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]).is_file()


def _notice(what: str) -> None:
    print(f"notice: {what}; the column is left out.", file=sys.stderr)


def lpips_metric(backbone: str = "pretrained",
                 data_range: tuple[float, float] = (-1.0, 1.0)) -> Callable[[Tensor, Tensor], Tensor] | None:
    """LPIPS (Zhang et al. 2018, "The unreasonable effectiveness of deep features as a perceptual
    metric"), AlexNet variant, version 0.1, via the ``lpips`` package: ``f(x, reference) -> (B,)``
    for images ``(B, C, H, W)`` in ``data_range`` (gray images are repeated to 3 channels; lower
    is better).

    Args:
        backbone: ``'pretrained'``: torchvision's ImageNet AlexNet weights, read from the torch
            cache (``torch.hub.get_dir()``); ``'random'``: a randomly initialised AlexNet (a
            stand-in that needs no download, for tests).
        data_range: the images' value range.

    Returns:
        The metric, or ``None`` after one notice when ``lpips`` is not installed or the AlexNet
        weights are not in the cache (``python -c "import torchvision;
        torchvision.models.alexnet(weights='DEFAULT')"`` fetches them once when online).
    """
    if backbone not in ("pretrained", "random"):
        raise ValueError(f"`backbone` must be 'pretrained' or 'random', got {backbone!r}.")
    try:
        import lpips
    except ImportError:
        _notice("LPIPS needs the `lpips` package (pip install lpips)")
        return None
    from torchvision.models import AlexNet_Weights

    if backbone == "pretrained" and not _cached(AlexNet_Weights.IMAGENET1K_V1.url):
        _notice(f"LPIPS needs torchvision's AlexNet weights in {torch.hub.get_dir()}/checkpoints")
        return None
    net = lpips.LPIPS(net="alex", pnet_rand=backbone == "random", verbose=False).eval()

    def metric(x: Tensor, reference: Tensor) -> Tensor:
        a, b = (to_unit(t, data_range).clamp(0, 1).float() * 2 - 1 for t in (x, reference))
        if a.shape[1] == 1:
            a, b = a.repeat(1, 3, 1, 1), b.repeat(1, 3, 1, 1)
        with torch.no_grad():
            return net.to(a.device)(a, b).flatten()

    return metric


def set_distances(real: Tensor, fake: Tensor, feature: torch.nn.Module | None = None,
                  data_range: tuple[float, float] = (-1.0, 1.0), kid_subset: int = 50) -> dict[str, float] | None:
    """FID (Heusel et al. 2017) and KID (Bińkowski et al. 2018) between two image sets, via
    torchmetrics.

    Args:
        real, fake: ``(N, C, H, W)`` in ``data_range`` (gray repeated to 3 channels). FID needs
            far more images than feature dimensions to be meaningful (thousands for Inception's
            2048); KID is unbiased for small sets.
        feature: the feature network (a module with ``num_features`` mapping ``(N, 3, H, W)`` uint8 or
            float to ``(N, num_features)``); ``None``: torchmetrics' InceptionV3 (torch-fidelity),
            whose weights must be in the torch cache.
        kid_subset: KID's subset size (capped by the set sizes).

    Returns:
        ``{"fid": ..., "kid": ..., "kid_std": ...}``, or ``None`` after one notice when the
        Inception weights or torch-fidelity are missing.
    """
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance
    except ImportError:
        _notice("FID/KID need the `torchmetrics` package (pip install torchmetrics)")
        return None
    if feature is None:
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
        except ImportError:
            _notice("FID/KID need the `torch-fidelity` package (pip install torch-fidelity)")
            return None
        if not _cached(URL_INCEPTION_V3):
            _notice(f"FID/KID need the InceptionV3 weights in {torch.hub.get_dir()}/checkpoints")
            return None
        feature = 2048
    a, b = (to_unit(t, data_range).clamp(0, 1).float() for t in (real, fake))
    if a.shape[1] == 1:
        a, b = a.repeat(1, 3, 1, 1), b.repeat(1, 3, 1, 1)
    fid = FrechetInceptionDistance(feature=feature, normalize=True)
    kid = KernelInceptionDistance(feature=feature, normalize=True, subset_size=min(kid_subset, len(a), len(b)))
    for m in (fid, kid):
        m.update(a, real=True)
        m.update(b, real=False)
    kid_mean, kid_std = kid.compute()
    return {"fid": fid.compute().item(), "kid": kid_mean.item(), "kid_std": kid_std.item()}
