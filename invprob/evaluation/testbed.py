"""The Gaussian-mixture test bed: problems whose exact posterior is known.

``d = 64`` image-shaped (``x_shape = (1, 8, 8)``) Gaussian-mixture prior of one of two families
(:data:`FAMILIES`: ``"smooth"`` and ``"anisotropic"``, :func:`gmm_prior`); two linear
problems with ``σ_y = 0.05``: random inpainting keeping 50 % of the pixels, and a random
Gaussian matrix with ``m = 16`` rows (:func:`make_problem`; their posterior is a Gaussian
mixture in closed form). One nonlinear problem, Fourier phase retrieval
(:func:`phase_retrieval_problem`), whose posterior has no closed form but whose unnormalised
density ``p(x) p(y | x)`` is exact. Everything is drawn from the ``seed``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..noise import Gaussian
from ..operators.matrix import MatrixOperator
from ..priors.latent import LatentPrior
from ..operators.phase_retrieval import PhaseRetrieval
from ..priors.adapters import FlowPrior
from ..priors.gaussian import GaussianMixture, GaussianMixturePrior
from ..problem import Problem

__all__ = ["gmm_prior", "inpainting_operator", "gaussian_matrix_operator", "make_problem", "PROBLEMS",
           "X_SHAPE", "SIGMA_Y", "FAMILIES", "PhaseRetrievalTestProblem", "phase_retrieval_problem",
           "LATENT_SHAPE", "LinearAutoencoder", "LatentTestProblem", "latent_problem", "exact_flow_prior"]

X_SHAPE = (1, 8, 8)
LATENT_SHAPE = (1, 4, 4)
SIGMA_Y = 0.05
PROBLEMS = ("inpainting", "gaussian_matrix")
FAMILIES = ("smooth", "anisotropic")


def _squared_exponential(x_shape: tuple[int, ...], length: float, dtype: torch.dtype) -> Tensor:
    """Squared-exponential kernel ``exp(-|p_i - p_j|² / 2ℓ²)`` between the pixel positions."""
    grids = torch.meshgrid(*[torch.arange(n, dtype=dtype) for n in x_shape[1:]], indexing="ij")
    pos = torch.stack([g.flatten() for g in grids], 1).repeat(x_shape[0], 1)
    return torch.exp(-((pos[:, None] - pos[None]) ** 2).sum(-1) / (2 * length**2))


def gmm_prior(seed: int = 0, x_shape: tuple[int, ...] = X_SHAPE, num_components: int | None = None,
              dtype: torch.dtype = torch.float64, family: str = "smooth") -> GaussianMixturePrior:
    """A random Gaussian-mixture prior of image shape ``x_shape`` from ``family``.

    ``"smooth"`` (5 components by default): means are smooth random fields ``0.3 · GP(ℓ = 3 px)``;
    every component has the same covariance ``0.5² K_ℓ=1 + 0.05² I`` (locally correlated texture
    on top of the mean), weights ``U(0.5, 1.5)`` normalised. Means that differ by smooth patterns
    are hard to tell apart from 32 pixels or 16 projections at σ_y = 0.05, so several components
    keep posterior weight (their entropies: ``benchmarks/results/posterior_gmm_families.md``) — the regime where a sampler
    must find every mode.

    ``"anisotropic"`` (8 components by default) differs in every structural choice: white (not
    smooth) means ``0.3 · Q c_k`` in a random 3-dimensional subspace (``Q`` orthonormal,
    ``c_k ~ N(0, I₃)``); each component its *own* covariance ``R_k diag(λ) R_kᵀ`` with a random
    rotation ``R_k`` and a spectrum log-spaced from 0.25² down to 0.02² (condition number 156),
    so the posterior's curvature differs by direction and by component; unequal weights
    ``U(0,1)² + 0.05`` normalised. The likelihood of a component depends on its orientation, so
    inpainting posteriors are mostly unimodal and the test is the covariance (how well a sampler
    resolves thin and wide directions at once); Gaussian-matrix posteriors are often bimodal.
    Its draws use the generator of ``seed + 1000``, so no draw is shared with ``"smooth"``.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown test-bed family {family!r}; choose one of {FAMILIES}.")
    d = math.prod(x_shape)
    if family == "anisotropic":
        K = 8 if num_components is None else num_components
        g = torch.Generator().manual_seed(int(seed) + 1000)
        weights = torch.rand(K, generator=g, dtype=dtype) ** 2 + 0.05
        basis, _ = torch.linalg.qr(torch.randn((d, 3), generator=g, dtype=dtype))
        means = 0.3 * (basis @ torch.randn((3, K), generator=g, dtype=dtype))
        spectrum = torch.logspace(math.log10(0.25**2), math.log10(0.02**2), d, dtype=dtype)
        rotations = [torch.linalg.qr(torch.randn((d, d), generator=g, dtype=dtype))[0] for _ in range(K)]
        covs = torch.stack([r @ torch.diag(spectrum) @ r.T for r in rotations])
        covs = (covs + covs.transpose(1, 2)) / 2
        return GaussianMixturePrior(weights / weights.sum(), means.T.reshape(K, *x_shape), covs, data_range=None)
    K = 5 if num_components is None else num_components
    g = torch.Generator().manual_seed(int(seed))
    weights = torch.rand(K, generator=g, dtype=dtype) + 0.5
    weights = weights / weights.sum()
    smooth = _squared_exponential(x_shape, 3.0, dtype) + 1e-6 * torch.eye(d, dtype=dtype)
    means = 0.3 * (torch.linalg.cholesky(smooth) @ torch.randn((d, K), generator=g, dtype=dtype))
    texture = 0.5**2 * _squared_exponential(x_shape, 1.0, dtype) + 0.05**2 * torch.eye(d, dtype=dtype)
    covs = texture[None].repeat(K, 1, 1)
    return GaussianMixturePrior(weights, means.T.reshape(K, *x_shape), covs, data_range=None)


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


def exact_flow_prior(prior: GaussianMixturePrior) -> FlowPrior:
    """``prior`` as a rectified-flow velocity network (:class:`~invprob.priors.FlowPrior`): the exact
    velocity ``v(x_t, t) = (x_t − E[x0 | x_t]) / t`` on the path ``x_t = (1 − t) x0 + t ε``, from the
    exact denoiser at ``σ = t/(1 − t)``, and ``x_t − E[x0]`` at ``t = 1``: what the flow-native
    solvers run on in the test bed."""
    mean = (prior.weights[:, None] * prior.means.flatten(1)).sum(0)

    def velocity(x: Tensor, t: Tensor) -> Tensor:
        top = t >= 1
        safe = torch.where(top, torch.full_like(t, 0.5), t)  # no 0/0 in the branch not taken (nor its gradient)
        tb, topb = safe.reshape(-1, *([1] * (x.dim() - 1))), top.reshape(-1, *([1] * (x.dim() - 1)))
        x0 = torch.where(topb, mean.reshape(x.shape[1:]).to(x.dtype), prior.denoise(x / (1 - tb), safe / (1 - safe)))
        return torch.where(topb, x - x0, (x - x0) / tb)

    return FlowPrior(velocity, x_shape=prior.x_shape, data_range=prior.data_range, dtype=prior.dtype)


def make_problem(name: str, seed: int = 0, num_measurements: int = 1, sigma_y: float = SIGMA_Y,
                 family: str = "smooth") -> tuple[GaussianMixturePrior, Problem, Tensor]:
    """``(prior, problem, x_true)`` for test-bed problem ``name`` drawn from ``seed``, with the
    prior of ``family`` (:func:`gmm_prior`)."""
    if name not in PROBLEMS:
        raise ValueError(f"unknown test-bed problem {name!r}; choose one of {PROBLEMS}.")
    prior = gmm_prior(seed, family=family)
    op = inpainting_operator(seed) if name == "inpainting" else gaussian_matrix_operator(seed)
    g = torch.Generator().manual_seed(int(seed) + 3)
    x_true = prior.sample(num_measurements, g)
    problem = Problem.simulate(op, x_true, Gaussian(sigma_y), generator=g)
    return prior, problem, x_true


@dataclass(frozen=True)
class PhaseRetrievalTestProblem:
    """Fourier phase retrieval with the test-bed GMM prior, its exact density at hand.

    Attributes:
        prior: the test-bed prior (:func:`gmm_prior`).
        problem: the simulated problem (:class:`~invprob.operators.PhaseRetrieval`, float64,
            Gaussian noise), one measurement.
        truth: the image that was measured ``(1, *X_SHAPE)``.
        density: the prior's mixture as a distribution with a log density.
        generator: the generator that drew ``truth`` and the noise, left where it stopped; the
            benchmarks go on drawing from it (prior samples, census starts).
    """

    prior: GaussianMixturePrior
    problem: Problem
    truth: Tensor
    density: GaussianMixture
    generator: torch.Generator

    def log_prior(self, x: Tensor) -> Tensor:
        """``log p(x)`` of the mixture prior, ``x (N, *X_SHAPE) -> (N,)``; differentiable."""
        return self.density.log_prob(x)

    def log_likelihood(self, x: Tensor) -> Tensor:
        """``log p(y | x)`` of the noise model at ``A(x)``, ``x (N, *X_SHAPE) -> (N,)``; differentiable."""
        y = self.problem.measurement
        return self.problem.noise.log_likelihood(y.expand(len(x), *y.shape[1:]), self.problem.operator(x))

    def log_posterior(self, x: Tensor) -> Tensor:
        """The unnormalised exact log posterior ``log p(x) + log p(y | x)``: ``(N, *X_SHAPE) -> (N,)``."""
        return self.log_prior(x) + self.log_likelihood(x)


def phase_retrieval_problem(seed: int = 7, oversampling: float = 2.0, sigma_y: float = SIGMA_Y,
                            unit_range: bool = False) -> PhaseRetrievalTestProblem:
    """Phase retrieval ``y = |F(pad(x))| + σ_y n`` of a draw of the test-bed prior.

    The prior is :func:`gmm_prior` of ``seed``; the truth and the noise are drawn, in that order,
    from a generator seeded with ``seed + 3`` (as in :func:`make_problem`). Without phase the
    posterior is multimodal (the trivial ambiguities of
    :func:`~invprob.operators.phase_retrieval.trivial_images` and non-trivial ones), and with the
    mixture's exact density its modes and their masses can be measured
    (:mod:`invprob.evaluation.modes`, :mod:`invprob.evaluation.reference`).

    Args:
        seed: draws the prior, the truth and the noise.
        oversampling: the DPS/DAPS padding convention of
            :class:`~invprob.operators.PhaseRetrieval` (2.0: 1.5× per axis).
        sigma_y: standard deviation of the Gaussian noise on ``y``.
        unit_range: measure ``|F(pad(x/2 + 1/2))|`` (DAPS's convention) instead of ``|F(pad(x))|``.

    Returns:
        A :class:`PhaseRetrievalTestProblem`.
    """
    prior = gmm_prior(seed)
    op = PhaseRetrieval(X_SHAPE, oversampling=oversampling, unit_range=unit_range).to(torch.float64)
    g = torch.Generator().manual_seed(seed + 3)
    truth = prior.sample(1, g)
    problem = Problem.simulate(op, truth, Gaussian(sigma_y), generator=g)
    density = GaussianMixture(prior.weights, prior.means, prior.covs, prior.x_shape)
    return PhaseRetrievalTestProblem(prior, problem, truth, density, g)


class LinearAutoencoder(nn.Module):
    """A linear autoencoder: ``decode(z) = W z``, ``encode(x) = W⁺ x = Wᵀ x`` (``W`` has orthonormal
    columns), images ``(B, *image_shape)`` and latents ``(B, *latent_shape)``. Plugs into
    :class:`~invprob.priors.LatentPrior` as a ``'plain'`` autoencoder."""

    def __init__(self, W: Tensor, latent_shape: tuple[int, ...], image_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.register_buffer("W", W)
        self.latent_shape, self.image_shape = tuple(latent_shape), tuple(image_shape)

    def decode(self, z: Tensor) -> Tensor:
        return (z.flatten(1) @ self.W.T).reshape(-1, *self.image_shape)

    def encode(self, x: Tensor) -> Tensor:
        return (x.flatten(1) @ self.W).reshape(-1, *self.latent_shape)


@dataclass(frozen=True)
class LatentTestProblem:
    """A latent problem with an exact posterior: a GMM prior on ``z`` (``LATENT_SHAPE``), a linear
    decoder ``x = W z`` to ``X_SHAPE`` images and a linear-Gaussian measurement of ``x``.

    Attributes:
        prior: the :class:`~invprob.priors.LatentPrior` (GMM latent prior + :class:`LinearAutoencoder`).
        problem: the image-space problem ``y = A x + n`` (what a user has).
        z_true, x_true: the latent drawn and its image.
        posterior: the exact posterior over ``z``, a :class:`~invprob.priors.gaussian.GaussianMixture`
            (that of ``y = (A W) z + n``).
    """

    prior: LatentPrior
    problem: Problem
    z_true: Tensor
    x_true: Tensor
    posterior: GaussianMixture


def latent_problem(name: str, seed: int = 0, family: str = "smooth", sigma_y: float = SIGMA_Y) -> LatentTestProblem:
    """The exact latent test bed: test-bed problem ``name`` (``PROBLEMS``) on images ``x = W z``.

    The latent prior is :func:`gmm_prior` of ``family`` on ``LATENT_SHAPE`` (16 dimensions); ``W``
    (64 × 16) has orthonormal columns drawn from ``seed + 2000``, so ``E = Wᵀ`` is its
    pseudo-inverse and ``E(D(z)) = z``; the operator is the pixel test bed's operator of ``name``
    on the 64-pixel images. The posterior over ``z`` is the exact Gaussian mixture of the linear
    problem ``y = (A W) z + n``.
    """
    if name not in PROBLEMS:
        raise ValueError(f"unknown test-bed problem {name!r}; choose one of {PROBLEMS}.")
    latent = gmm_prior(seed, x_shape=LATENT_SHAPE, family=family)
    d, k = math.prod(X_SHAPE), math.prod(LATENT_SHAPE)
    g = torch.Generator().manual_seed(int(seed) + 2000)
    W, _ = torch.linalg.qr(torch.randn((d, k), generator=g, dtype=torch.float64))
    prior = LatentPrior(latent, LinearAutoencoder(W, LATENT_SHAPE, X_SHAPE), "plain", 1.0, X_SHAPE, image_range=None)
    op = inpainting_operator(seed) if name == "inpainting" else gaussian_matrix_operator(seed)
    g = torch.Generator().manual_seed(int(seed) + 3)
    z = latent.sample(1, g)
    x = prior.decode(z)
    problem = Problem.simulate(op, x, Gaussian(sigma_y), generator=g)
    linear = Problem(MatrixOperator(op.A @ W, LATENT_SHAPE), problem.measurement, problem.noise)
    return LatentTestProblem(prior, problem, z, x, latent.posterior(linear))
