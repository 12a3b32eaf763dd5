"""Conversions between the prior's data space and files — done here and nowhere else.

Image priors work in [-1, 1] (contract 1 of ``docs/design.md``); files hold [0, 1] floats or
uint8.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = ["to_unit", "from_unit", "load_image", "save_image", "sha256"]


def to_unit(x: Tensor, data_range: tuple[float, float] = (-1.0, 1.0)) -> Tensor:
    """Map ``x`` from ``data_range`` to [0, 1] (no clamping)."""
    lo, hi = data_range
    return (x - lo) / (hi - lo)


def from_unit(x: Tensor, data_range: tuple[float, float] = (-1.0, 1.0)) -> Tensor:
    """Map ``x`` from [0, 1] to ``data_range``."""
    lo, hi = data_range
    return x * (hi - lo) + lo


def load_image(path: str | Path, gray: bool = True, data_range: tuple[float, float] = (-1.0, 1.0)) -> Tensor:
    """Read an image file as ``(1, C, H, W)`` float32 in ``data_range`` (C = 1 if ``gray``)."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    img = Image.open(path).convert("L" if gray else "RGB")
    arr = np.asarray(img, dtype=np.float32) / 255.0
    t = torch.from_numpy(arr)
    t = t[None] if t.dim() == 2 else t.permute(2, 0, 1)
    return from_unit(t[None], data_range)


def save_image(x: Tensor, path: str | Path, data_range: tuple[float, float] = (-1.0, 1.0)) -> None:
    """Write ``(C, H, W)`` or ``(1, C, H, W)`` in ``data_range`` as an 8-bit PNG."""
    from PIL import Image

    x = x.detach().cpu()
    if x.dim() == 4:
        x = x[0]
    arr = (to_unit(x, data_range).clamp(0, 1) * 255).round().to(torch.uint8)
    arr = arr[0].numpy() if arr.shape[0] == 1 else arr.permute(1, 2, 0).numpy()
    Image.fromarray(arr).save(path)


def sha256(path: str | Path) -> str:
    """The sha256 hex digest of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
