"""A 2-D image prior applied to every slice of a volume: the prior of DiffusionMBIR-style
volume reconstruction (Chung et al. 2023), where a 2-D diffusion model denoises each slice
and a classical regulariser couples the slices."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Prior

__all__ = ["SliceWisePrior"]


class SliceWisePrior(Prior):
    """``prior`` applied slice by slice to volumes of ``slices`` slices, in one batch.

    ``denoise(x (B, D, *slice_shape), sigma (B,))`` reshapes to ``(B·D, *slice_shape)``, gives
    each slice its volume's ``sigma`` and denoises all of them in one network call (chunked by
    the wrapped prior's ``max_batch``). Under this prior the slices of a volume are independent;
    coupling them is the solver's part (``diffusion-mbir``'s total variation along the slices).
    One call of this prior counts as one NFE per volume (``D`` slice evaluations).

    Args:
        prior: a 2-D image prior, e.g. ``brain-mri`` (``x_shape (C, H, W)``).
        slices: ``D``, the number of slices of the volume.
    """

    def __init__(self, prior: Prior, slices: int) -> None:
        super().__init__()
        if not isinstance(prior, Prior):
            raise TypeError(f"`prior` must be an invprob.priors.Prior, got {type(prior).__name__}.")
        if isinstance(prior, SliceWisePrior):
            raise TypeError("`prior` is already slice-wise; wrap the 2-D image prior once.")
        if isinstance(slices, bool) or not isinstance(slices, int) or slices < 1:
            raise ValueError(f"`slices` must be a positive int (slices of the volume), got {slices!r}.")
        if prior.x_shape is not None and len(prior.x_shape) != 3:
            raise ValueError(f"`prior` must model 2-D images (C, H, W), got x_shape {tuple(prior.x_shape)}.")
        self.prior, self.slices = prior, slices
        self.x_shape = (slices, *prior.x_shape) if prior.x_shape is not None else None
        self.data_range = prior.data_range
        self.size_multiple = prior.size_multiple
        self.declare_dtype(prior.declared_dtype)

    @property
    def dtype(self) -> torch.dtype:
        return self.prior.dtype

    def _denoise(self, x: Tensor, sigma: Tensor) -> Tensor:
        if x.dim() < 3 or x.shape[1] != self.slices:
            raise ValueError(f"`x` has shape {tuple(x.shape)}; this slice-wise prior takes volumes (B, D, C, H, W) "
                             f"with D = {self.slices} slices along dim 1.")
        B, D = x.shape[:2]
        out = self.prior.denoise(x.reshape(B * D, *x.shape[2:]), sigma.repeat_interleave(D))
        return out.reshape(x.shape)

    def extra_repr(self) -> str:
        return f"slices={self.slices}"
