"""Use an invprob prior inside deepinv: ``to_deepinv_denoiser(prior)``."""

from __future__ import annotations

import torch

__all__ = ["to_deepinv_denoiser"]


def to_deepinv_denoiser(prior):
    """Wrap a σ-space :class:`~invprob.priors.Prior` as a ``deepinv.models.Denoiser``
    (``forward(x, sigma)``; a scalar or per-sample σ), computing in the prior's dtype.
    Used to run deepinv's samplers on exactly our denoiser (benchmarks)."""
    import deepinv

    class _PriorDenoiser(deepinv.models.Denoiser):
        def __init__(self) -> None:
            super().__init__()
            self.prior = prior

        def forward(self, x, sigma, *args, **kwargs):
            sigma = torch.as_tensor(sigma, dtype=prior.dtype, device=x.device).reshape(-1)
            if sigma.numel() == 1:
                sigma = sigma.expand(x.shape[0])
            # deepinv may query σ = 0 at the last step; the MMSE denoiser there is the identity.
            out = prior.denoise(x.to(prior.dtype), sigma.clamp_min(1e-8))
            return out.to(x.dtype)

    return _PriorDenoiser()
