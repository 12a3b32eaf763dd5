"""Use an invprob prior inside deepinv: ``to_deepinv_denoiser(prior)``."""

from __future__ import annotations

import torch

__all__ = ["to_deepinv_denoiser"]


def to_deepinv_denoiser(prior, unit_range: bool = False):
    """Wrap a σ-space :class:`~invprob.priors.Prior` as a ``deepinv.models.Denoiser``
    (``forward(x, sigma)``; a scalar or per-sample σ), computing in the prior's dtype.
    Used to run deepinv's samplers on exactly our denoiser (benchmarks).

    Args:
        prior: the prior (images in its own units, [-1, 1] for the image priors).
        unit_range: expose it as a denoiser of ``u = (x + 1) / 2`` images in [0, 1], deepinv's
            convention for its models: ``forward(u, σ) = (D(2u − 1, 2σ) + 1) / 2``. deepinv 0.5's
            ``DiffPIR`` calls its denoiser that way (``x / 2 + 0.5`` and ``σ / 2``), as does
            ``DPS`` with its default ``minus_one_one=True``; ``DDRM`` and ``DPS(...,
            minus_one_one=False)`` call it in the image's own units (``unit_range=False``).
    """
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
            if unit_range:
                out = (prior.denoise(2 * x.to(prior.dtype) - 1, (2 * sigma).clamp_min(1e-8)) + 1) / 2
            else:
                out = prior.denoise(x.to(prior.dtype), sigma.clamp_min(1e-8))
            return out.to(x.dtype)

    return _PriorDenoiser()
