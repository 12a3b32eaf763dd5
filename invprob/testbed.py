"""The Gaussian-mixture test bed: problems whose exact posterior is known.

``d = 64`` image-shaped (``x_shape = (1, 8, 8)``) Gaussian-mixture prior; two linear
problems with ``σ_y = 0.05``: random inpainting keeping 50 % of the pixels, and a random
Gaussian matrix with ``m = 16`` rows. Everything is drawn from the ``seed``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .noise import Gaussian
from .operators.matrix import MatrixOperator
from .priors.gaussian import GaussianMixturePrior
from .problem import Problem

__all__ = ["gmm_prior", "inpainting_operator", "gaussian_matrix_operator", "make_problem", "PROBLEMS"]

X_SHAPE = (1, 8, 8)
SIGMA_Y = 0.05
PROBLEMS = ("inpainting", "gaussian_matrix")


def _squared_exponential(x_shape: tuple[int, ...], length: float, dtype: torch.dtype) -> Tensor:
    """Squared-exponential kernel ``exp(-|p_i - p_j|² / 2ℓ²)`` between the pixel positions."""
    grids = torch.meshgrid(*[torch.arange(n, dtype=dtype) for n in x_shape[1:]], indexing="ij")
    pos = torch.stack([g.flatten() for g in grids], 1).repeat(x_shape[0], 1)
    return torch.exp(-((pos[:, None] - pos[None]) ** 2).sum(-1) / (2 * length**2))


def gmm_prior(seed: int = 0, x_shape: tuple[int, ...] = X_SHAPE, num_components: int = 5,
              dtype: torch.dtype = torch.float64) -> GaussianMixturePrior:
    """A random GMM of smooth images whose posteriors are often multimodal.

    Means are smooth random fields ``0.3 · GP(ℓ = 3 px)``; every component has covariance
    ``0.5² K_ℓ=1 + 0.05² I`` (locally correlated texture on top of the mean). Means that
    differ by smooth patterns are hard to tell apart from 32 pixels or 16 projections at
    σ_y = 0.05, so several components keep posterior weight (entropy up to ≈ 1.4 nats over
    seeds 0–4) — the regime where a sampler must find every mode.
    """
    g = torch.Generator().manual_seed(int(seed))
    d = math.prod(x_shape)
    weights = torch.rand(num_components, generator=g, dtype=dtype) + 0.5
    weights = weights / weights.sum()
    smooth = _squared_exponential(x_shape, 3.0, dtype) + 1e-6 * torch.eye(d, dtype=dtype)
    means = 0.3 * (torch.linalg.cholesky(smooth) @ torch.randn((d, num_components), generator=g, dtype=dtype))
    texture = 0.5**2 * _squared_exponential(x_shape, 1.0, dtype) + 0.05**2 * torch.eye(d, dtype=dtype)
    covs = texture[None].repeat(num_components, 1, 1)
    return GaussianMixturePrior(weights, means.T.reshape(num_components, *x_shape), covs, data_range=None)


def inpainting_operator(seed: int = 0, x_shape: tuple[int, ...] = X_SHAPE, observed: float = 0.5,
                        dtype: torch.dtype = torch.float64) -> MatrixOperator:
    """Random-pixel inpainting as a selection matrix keeping ``observed`` of the pixels."""
    g = torch.Generator().manual_seed(int(seed) + 1)
    d = math.prod(x_shape)
    keep = torch.randperm(d, generator=g)[: int(round(observed * d))].sort().values
    return MatrixOperator(torch.eye(d, dtype=dtype)[keep], x_shape)


def gaussian_matrix_operator(seed: int = 0, x_shape: tuple[int, ...] = X_SHAPE, m: int = 16,
                             dtype: torch.dtype = torch.float64) -> MatrixOperator:
    """Random Gaussian matrix ``(m, d)`` with ``N(0, 1/d)`` entries (rows of norm ≈ 1)."""
    g = torch.Generator().manual_seed(int(seed) + 2)
    d = math.prod(x_shape)
    return MatrixOperator(torch.randn((m, d), generator=g, dtype=dtype) / math.sqrt(d), x_shape)


def make_problem(name: str, seed: int = 0, num_measurements: int = 1,
                 sigma_y: float = SIGMA_Y) -> tuple[GaussianMixturePrior, Problem, Tensor]:
    """``(prior, problem, x_true)`` for test-bed problem ``name`` drawn from ``seed``."""
    if name not in PROBLEMS:
        raise ValueError(f"unknown test-bed problem {name!r}; choose one of {PROBLEMS}.")
    prior = gmm_prior(seed)
    op = inpainting_operator(seed) if name == "inpainting" else gaussian_matrix_operator(seed)
    g = torch.Generator().manual_seed(int(seed) + 3)
    x_true = prior.sample(num_measurements, g)
    problem = Problem.simulate(op, x_true, Gaussian(sigma_y), generator=g)
    return prior, problem, x_true
