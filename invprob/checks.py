"""Small input-validation helpers shared by every module (one place, one wording)."""

from __future__ import annotations

import re
from typing import Sequence

import torch
from torch import Tensor

#: a plain name (presets, model-card folders): letters, digits and ``_ . + -``, not starting with
#: ``.`` — never a path
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def check_tensor(value: object, name: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(value).__name__}; "
                        f"convert it with torch.as_tensor(...).")
    return value


def check_finite(value: Tensor, name: str) -> None:
    if not torch.isfinite(value).all():
        bad = (~torch.isfinite(value)).sum().item()
        raise ValueError(f"`{name}` contains {bad} NaN/Inf value(s); clean the data "
                         f"(e.g. torch.nan_to_num) before building the problem.")


def check_shape(value: Tensor, expected: Sequence[int], name: str, leading: str = "B") -> None:
    """Check ``value.shape == (N, *expected)`` for any batch size N."""
    expected = tuple(expected)
    if value.dim() != len(expected) + 1 or tuple(value.shape[1:]) != expected:
        raise ValueError(f"`{name}` has shape {tuple(value.shape)}, expected ({leading}, "
                         f"{', '.join(map(str, expected))}); add a batch dimension with "
                         f"x[None] or resize it to the operator's shape.")


def check_same_device(value: Tensor, device: torch.device, name: str, other: str) -> None:
    if value.device != torch.device(device):
        raise ValueError(f"`{name}` is on {value.device} but {other} is on {device}; "
                         f"move one of them with .to('{device}').")


def as_sigma(sigma: Tensor | float, batch: int, like: Tensor, name: str = "sigma") -> Tensor:
    """Return ``sigma`` as a ``(batch,)`` tensor on ``like``'s device and dtype.

    A Python float or 0-d tensor is broadcast to the batch (documented convenience);
    anything else must already be ``(batch,)``. Non-positive values are refused.
    """
    if not isinstance(sigma, Tensor):
        sigma = torch.tensor(float(sigma))
    if sigma.dim() == 0:
        sigma = sigma.expand(batch)
    if sigma.shape != (batch,):
        raise ValueError(f"`{name}` has shape {tuple(sigma.shape)}, expected ({batch},) — one "
                         f"noise level per sample of the batch, or a scalar.")
    if sigma.is_complex() or not sigma.is_floating_point():
        raise TypeError(f"`{name}` must be a real floating tensor, got {sigma.dtype}.")
    if (sigma <= 0).any():
        raise ValueError(f"`{name}` must be > 0 (got min {sigma.min().item():.3g}); a clean "
                         f"image needs no denoising — skip the call at sigma = 0.")
    return sigma.to(device=like.device, dtype=like.dtype)


def check_int(value: object, name: str, minimum: int = 0) -> int:
    """``value`` as an ``int`` >= ``minimum``; a float (``2.5``, even ``3.0``) or a bool is refused
    rather than truncated."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer, got {value!r} ({type(value).__name__}).")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}.")
    return int(value)
