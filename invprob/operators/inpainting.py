"""Inpainting: ``y = m ⊙ x`` with a binary mask (box, random pixels or the user's own)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..checks import check_tensor
from .base import SVD, LinearOperator, per_row

__all__ = ["Inpainting", "box_mask", "random_mask"]


def box_mask(x_shape: tuple[int, ...], box_size: tuple[int, int] = (128, 128), position: str = "center",
             generator: torch.Generator | None = None) -> Tensor:
    """``(1, H, W)`` mask with a ``box_size`` hole (0) — centred or at a random place
    (DAPS/DPS box inpainting: 128×128 on 256²)."""
    _, H, W = x_shape
    bh, bw = box_size
    if bh > H or bw > W:
        raise ValueError(f"`box_size` {tuple(box_size)} does not fit images of {H}x{W}.")
    if position == "center":
        top, left = (H - bh) // 2, (W - bw) // 2
    elif position == "random":
        top = int(torch.randint(0, H - bh + 1, (1,), generator=generator))
        left = int(torch.randint(0, W - bw + 1, (1,), generator=generator))
    else:
        raise ValueError(f"`box_position` must be 'center' or 'random', got {position!r}.")
    mask = torch.ones(1, H, W)
    mask[:, top : top + bh, left : left + bw] = 0
    return mask


def random_mask(x_shape: tuple[int, ...], missing: float = 0.7, pixelwise: bool = True,
                generator: torch.Generator | None = None) -> Tensor:
    """Mask hiding exactly ``round(missing · H · W)`` random pixels (all channels of a pixel
    together if ``pixelwise``, else every entry independently)."""
    if not 0 <= missing < 1:
        raise ValueError(f"`missing` must be in [0, 1), got {missing}.")
    C, H, W = x_shape
    shape = (1, H, W) if pixelwise else (C, H, W)
    n = shape[0] * H * W
    order = torch.randperm(n, generator=generator)
    mask = torch.ones(n)
    mask[order[: int(round(missing * n))]] = 0
    return mask.reshape(shape)


class Inpainting(LinearOperator):
    """Masking ``y = m ⊙ x`` (``y`` keeps the image's shape, zeros where unobserved, as in
    DPS/DAPS and deepinv). Exact SVD (singular values = the mask), ``pinv`` and ``prox_data``.

    Shapes: ``x (B, C, H, W) -> y (B, C, H, W)``; the mask is ``(P, 1 or C, H, W)`` with
    ``P = 1`` or one mask per measurement (rows ``m·K + k`` use mask ``m``).

    Args:
        x_shape: ``(C, H, W)``.
        kind: ``'random'`` (``missing`` fraction of pixels), ``'box'`` (a ``box_size`` hole,
            ``box_position`` 'center' or 'random'), or ``'mask'`` (give ``mask``).
        missing: fraction hidden for ``'random'`` (DAPS: 0.7).
        box_size, box_position: for ``'box'`` (DAPS: 128×128, centred... or random).
        mask: a user mask ``(H, W)``, ``(1 or C, H, W)`` or ``(P, 1 or C, H, W)`` of 0/1.
        num_masks: draw this many masks (one per measurement) for random kinds.
        pixelwise: hide all channels of a pixel together.
        seed: the masks are drawn once, here, from this seed.
    """

    has_svd = True

    def __init__(self, x_shape: tuple[int, ...], kind: str = "random", missing: float = 0.7,
                 box_size: tuple[int, int] = (128, 128), box_position: str = "center",
                 mask: Tensor | None = None, num_masks: int = 1, pixelwise: bool = True, seed: int = 0) -> None:
        x_shape = tuple(int(s) for s in x_shape)
        if len(x_shape) != 3:
            raise ValueError(f"`x_shape` must be (C, H, W), got {x_shape}.")
        super().__init__(x_shape=x_shape, y_shape=x_shape)
        g = torch.Generator().manual_seed(int(seed))
        if kind == "mask":
            if mask is None:
                raise ValueError("kind='mask' needs `mask`.")
            mask = self._check_mask(mask, x_shape)
        elif kind == "random":
            mask = torch.stack([random_mask(x_shape, missing, pixelwise, g) for _ in range(num_masks)])
        elif kind == "box":
            mask = torch.stack([box_mask(x_shape, tuple(box_size), box_position, g) for _ in range(num_masks)])
        else:
            raise ValueError(f"`kind` must be 'random', 'box' or 'mask', got {kind!r}.")
        self.kind = kind
        self.register_buffer("mask", mask)

    @staticmethod
    def _check_mask(mask: Tensor, x_shape: tuple[int, ...]) -> Tensor:
        check_tensor(mask, "mask")
        C, H, W = x_shape
        if mask.dim() == 2:
            mask = mask[None]
        if mask.dim() == 3:
            mask = mask[None]
        if mask.dim() != 4 or tuple(mask.shape[-2:]) != (H, W) or mask.shape[1] not in (1, C):
            raise ValueError(f"`mask` has shape {tuple(mask.shape)}, expected (H, W) = ({H}, {W}), "
                             f"(1 or {C}, {H}, {W}) or (P, 1 or {C}, {H}, {W}) for images {x_shape}.")
        if not ((mask == 0) | (mask == 1)).all():
            raise ValueError("`mask` must contain only 0 and 1; threshold it with (mask > 0.5).float().")
        return mask.float()

    def _mask(self, x: Tensor) -> Tensor:
        return per_row(self.mask, x.shape[0], "mask").to(x.dtype)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return x * self._mask(x)

    def adjoint(self, y: Tensor) -> Tensor:
        return y * self._mask(y)

    def pinv(self, y: Tensor) -> Tensor:
        return y * self._mask(y)

    def prox_data(self, z: Tensor, y: Tensor, rho: float | Tensor) -> Tensor:
        m = self._mask(z)
        rho = torch.as_tensor(rho, dtype=z.dtype, device=z.device).reshape(-1, 1, 1, 1)
        return (m * y + rho * z) / (m + rho)

    def svd(self) -> SVD:
        """``U = V = I``; singular values are the mask, ``(P, C·H·W)`` (``P`` masks)."""
        C = self.x_shape[0]
        s = self.mask.expand(-1, C, -1, -1).flatten(1)
        s = s[0] if s.shape[0] == 1 else s
        shape = self.x_shape
        return SVD(singular_values=s, Vt=lambda x: x.flatten(1), V=lambda z: z.reshape(-1, *shape),
                   Ut=lambda y: y.flatten(1), U=lambda z: z.reshape(-1, *shape))

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, x_shape={self.x_shape}, masks={self.mask.shape[0]}, " \
               f"observed={self.mask.mean().item():.3f}"
