"""What a solve leaves behind: metrics, arrays, PNGs and the comparison figure.

:func:`write_run` is the one public entry point, used by ``invprob solve`` and ``invprob demo``;
every file is written atomically (a temporary file, then a rename) and ``metrics.json`` last, so
a folder holding ``metrics.json`` holds every other output of that run.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..evaluation.metrics import psnr, ssim, std_error_correlation
from ..problem import Problem

__all__ = ["OUTPUTS", "classical_estimate", "compute_metrics", "figure", "write_run", "atomic_write"]

#: the files a complete run folder holds (``metrics.json`` is written last)
OUTPUTS = ("samples.npy", "mean.npy", "std.npy", "figure.png", "metrics.json")


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename, so
    ``path`` either holds the whole new content or does not change."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _npy_bytes(array: Tensor) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array.numpy(), allow_pickle=False)
    return buffer.getvalue()


def classical_estimate(problem: Problem) -> tuple[str, Tensor] | None:
    """The first look without a prior, for the first measurement: ``pinv(y)`` where the operator
    has one, else ``Aᵀy`` (zero-filled for MRI) for a linear operator; ``None`` otherwise.
    Returns ``(name, image (1, *x_shape))`` (real part, on the CPU)."""
    op = problem.operator
    if not op.linear:
        return None
    with torch.no_grad():
        y = problem.measurement[:1]
        if hasattr(op, "fbp"):  # CT: filtered back-projection, the classical reconstruction
            return "fbp", op.fbp(y).detach().cpu()
        image = op.pinv(y) if op.has_pinv else op.adjoint(y)
    return ("pinv" if op.has_pinv else "adjoint"), image.detach().cpu().real


def compute_metrics(problem: Problem, samples: Tensor, truth: Tensor | None,
                    data_range: tuple[float, float] | None, back: tuple[str, Tensor] | None,
                    baselines: dict[str, Tensor] | None = None) -> dict[str, Any]:
    """Quality of the posterior mean: relative data residual per measurement, PSNR/SSIM (or
    RMSE without a data range) against ``truth``, the correlation between the posterior std and
    the mean's absolute error (:func:`~invprob.evaluation.metrics.std_error_correlation`, with
    two or more samples), PSNR of the classical estimate ``back`` (first measurement) and
    PSNR/SSIM of each reconstruction in ``baselines`` (``name -> (M, *x_shape)``).

    Shapes: ``samples (M, K, *x_shape)``, ``truth (M, *x_shape)`` or ``None``.
    """
    mean = samples.mean(1)
    op = problem.operator
    y = problem.measurement
    with torch.no_grad():
        residual = (op.forward(mean.to(device=y.device, dtype=y.real.dtype)) - y).abs().flatten(1).norm(dim=1)
        relative = (residual / y.abs().flatten(1).norm(dim=1)).cpu()
    metrics: dict[str, Any] = {"data_consistency_rel_residual_of_mean": relative.tolist()}
    if truth is None:
        return metrics
    truth = truth.cpu()
    if truth.dim() in (4, 5) and data_range is not None:
        def per_item(metric, a: Tensor, b: Tensor) -> list[float]:  # volumes: the mean over their slices
            return metric(a.flatten(0, -4), b.flatten(0, -4), data_range).reshape(len(a), -1).mean(1).tolist()

        metrics["psnr_mean"] = per_item(psnr, mean, truth)
        metrics["ssim_mean"] = per_item(ssim, mean, truth)
        if back is not None:
            name, image = back
            metrics[f"psnr_{name}"] = per_item(psnr, image.clamp(*data_range), truth[:1])
        for name, image in (baselines or {}).items():
            metrics[f"psnr_{name}"] = per_item(psnr, image.cpu(), truth)
            metrics[f"ssim_{name}"] = per_item(ssim, image.cpu(), truth)
    else:
        metrics["rmse_mean"] = (mean - truth).flatten(1).pow(2).mean(1).sqrt().tolist()
        for name, image in (baselines or {}).items():
            metrics[f"rmse_{name}"] = (image.cpu() - truth).flatten(1).pow(2).mean(1).sqrt().tolist()
    if samples.shape[1] > 1:  # the error of the mean as PSNR scores it: clamped to the data range
        shown = mean.clamp(*data_range) if data_range is not None else mean
        corr = std_error_correlation(samples.std(1), shown - truth).tolist()
        identical = (samples == samples[:, :1]).flatten(1).all(1).tolist()  # no spread: the correlation is undefined
        metrics["std_error_correlation"] = [None if c != c or same else c for c, same in zip(corr, identical)]
    return metrics


def _display(img: Tensor) -> Tensor:
    """``(C, H, W)`` → what imshow takes: 2-D for one channel, the magnitude of (real, imag)."""
    img = img.float()
    if img.dim() == 3 and img.shape[0] == 1:
        return img[0]
    if img.dim() == 3 and img.shape[0] == 2:
        return img.norm(dim=0)
    return img.permute(1, 2, 0) if img.dim() == 3 else img


def figure(path: Path, panels: list[tuple[str, Tensor]], data_range: tuple[float, float] | None,
           std_max: float | None = None, panel_width: float = 2.2, dpi: int = 110) -> None:
    """One row of images titled by ``panels`` (``(title, (C, H, W))``), written atomically as a
    PNG. Titles containing "std" use the ``magma`` colour map from 0 to ``std_max`` (each its
    own maximum when ``None``); NaN pixels (unobserved ones) are drawn blue."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = [(title, _display(img)) for title, img in panels]
    if data_range is None:
        values = torch.cat([img.flatten() for title, img in images if "std" not in title])
        values = values[torch.isfinite(values)]
        data_range = (float(values.min()), float(values.max()))
    lo, hi = data_range
    gray = plt.get_cmap("gray").with_extremes(bad="tab:blue")
    lines = max(title.count("\n") + 1 for title, _ in images)  # room for titles of several lines
    fig, axes = plt.subplots(1, len(images), figsize=(panel_width * len(images), 2.3 + 0.2 * lines))
    for ax, (title, img) in zip(np.atleast_1d(axes), images):
        is_std = "std" in title
        shown = img.clamp(lo, hi) if not is_std and img.dim() == 2 else img
        if img.dim() == 3 and is_std:  # colour: one map of the root-mean-square over the channels
            shown = img.pow(2).mean(-1).sqrt()
        elif img.dim() == 3:  # colour (H, W, 3): matplotlib takes RGB in [0, 1]
            shown = ((img - lo) / max(hi - lo, 1e-12)).clamp(0, 1)
        ax.imshow(shown, cmap="magma" if is_std else gray, vmin=0 if is_std and std_max else (None if is_std else lo),
                  vmax=std_max if is_std else hi)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    atomic_write(path, buffer.getvalue())


def _png(img: Tensor, lo: float, hi: float) -> bytes:
    from PIL import Image

    arr = ((_display(img) - lo) / max(hi - lo, 1e-12)).clamp(0, 1).mul(255).round().byte().numpy()
    buffer = io.BytesIO()
    Image.fromarray(arr).save(buffer, format="png")
    return buffer.getvalue()


def write_run(out: Path, problem: Problem, samples: Tensor, truth: Tensor | None,
              data_range: tuple[float, float] | None, record: dict[str, Any],
              baselines: dict[str, tuple[str, Tensor]] | None = None) -> dict[str, Any]:
    """Write a run's outputs to ``out`` and return its metrics.

    ``samples.npy (M, K, *x_shape)``, ``mean.npy`` / ``std.npy (M, *x_shape)``, ``mean.png`` /
    ``std.png`` (first measurement; of a volume, its middle slice), ``figure.png`` (truth,
    measurement, classical estimate, the ``baselines`` reconstructions (``name -> (figure title,
    (M, *x_shape))``, e.g. TV; their metrics are ``psnr_<name>`` …), posterior mean and std, up to three samples; PSNR / SSIM in the titles
    when ``truth`` and a data range are known) and, last, ``metrics.json``: ``record`` (the run's
    settings and counts) plus :func:`compute_metrics`.
    """
    samples = samples.detach().cpu()
    mean = samples.mean(1)
    std = samples.std(1) if samples.shape[1] > 1 else torch.zeros_like(mean)
    back = classical_estimate(problem)
    titles = {name: title for name, (title, _) in (baselines or {}).items()}
    baselines = {name: image.detach().cpu() for name, (_, image) in (baselines or {}).items()}
    metrics = {**record, **compute_metrics(problem, samples, truth, data_range, back, baselines)}
    atomic_write(out / "samples.npy", _npy_bytes(samples))
    atomic_write(out / "mean.npy", _npy_bytes(mean))
    atomic_write(out / "std.npy", _npy_bytes(std))
    if mean.dim() == 5:  # volumes (M, D, C, H, W): the images show the middle slice
        middle = mean.shape[1] // 2
        mean, std, samples = mean[:, middle], std[:, middle], samples[:, :, middle]
        truth = truth[:, middle] if truth is not None else None
        back = (back[0], back[1][:, middle]) if back is not None else None
        baselines = {name: image[:, middle] for name, image in baselines.items()}
    if mean.dim() == 4:
        lo, hi = data_range if data_range is not None and mean.shape[1] != 2 else (0.0, float(_display(mean[0]).max()))
        atomic_write(out / "mean.png", _png(mean[0], lo, hi))
        atomic_write(out / "std.png", _png(std[0], 0.0, float(_display(std[0]).max())))
    scored = truth is not None and data_range is not None and mean.dim() == 4 and mean.shape[1] != 2

    def titled(title: str, image: Tensor) -> tuple[str, Tensor]:  # PSNR / SSIM of the first measurement
        if not scored:
            return title, image
        a, b = image[None].float().clamp(*data_range), truth[:1].cpu().float()
        return f"{title}\n{float(psnr(a, b, data_range)):.2f} dB / {float(ssim(a, b, data_range)):.3f}", image

    panels: list[tuple[str, Tensor]] = []
    if truth is not None:
        panels.append(("truth", truth[0].cpu()))
    y = problem.measurement[:1]
    if y.dim() == 4 and not y.is_complex():
        panels.append(("measurement", y[0].cpu()))
    if back is not None:
        panels.append(titled(back[0], back[1][0]))
    panels += [titled(titles[name], image[0]) for name, image in baselines.items()]
    panels += [titled("posterior mean", mean[0]), ("posterior std", std[0])]
    panels += [titled(f"sample {k}", samples[0, k]) for k in range(min(3, samples.shape[1]))]
    figure(out / "figure.png", panels, data_range)
    atomic_write(out / "metrics.json", json.dumps(metrics, indent=2).encode())
    return metrics
