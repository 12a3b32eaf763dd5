"""Analytic priors with exact answers: Gaussian and Gaussian-mixture denoisers and posteriors.

With a GMM prior ``p(x) = Σ_k w_k N(μ_k, Σ_k)`` and a linear-Gaussian measurement
``y = A x + σ_y n``, every quantity is closed-form:

* the denoiser ``E[x0 | x0 + σ n = x]`` (responsibilities under ``N(μ_k, Σ_k + σ² I)``);
* the posterior ``p(x | y)``, again a GMM: per component ``S_k = A Σ_k Aᵀ + σ_y² I``,
  ``G_k = Σ_k Aᵀ S_k⁻¹``, mean ``μ_k + G_k (y − A μ_k)``, covariance ``Σ_k − G_k A Σ_k``,
  weight ``∝ w_k N(y; A μ_k, S_k)``.

This is the test bed every solver is measured against (``docs/design.md``, "Correctness and
where numbers live").
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..checks import check_tensor
from ..noise import Gaussian
from .base import Prior

__all__ = ["GaussianMixture", "GaussianMixturePrior", "GaussianPrior"]


def _check_covs(covs: Tensor, d: int, name: str = "covs") -> None:
    if covs.dim() != 3 or covs.shape[1:] != (d, d):
        raise ValueError(f"`{name}` has shape {tuple(covs.shape)}, expected (K, {d}, {d}) "
                         f"with d = prod(x_shape).")
    if not torch.allclose(covs, covs.transpose(1, 2), atol=1e-6 * covs.abs().max().item() + 1e-12):
        raise ValueError(f"`{name}` must be symmetric; use (C + C.transpose(-1, -2)) / 2.")


class GaussianMixture:
    """A (batched) Gaussian mixture distribution on images.

    Shapes: ``weights (*batch, K)``, ``means (*batch, K, d)``, ``covs (K, d, d)`` shared by
    the batch; ``batch`` is ``()`` or ``(M,)`` (one mixture per measurement).

    Args:
        weights, means, covs: the mixture parameters (weights sum to 1 along K).
        x_shape: image shape with ``prod(x_shape) = d``.
    """

    def __init__(self, weights: Tensor, means: Tensor, covs: Tensor, x_shape: tuple[int, ...]) -> None:
        self.x_shape = tuple(x_shape)
        self.weights, self.means, self.covs = weights, means, covs
        eigvals, eigvecs = torch.linalg.eigh(covs)
        self._scale = eigvecs * eigvals.clamp_min(0).sqrt()[:, None, :]  # (K, d, d): Σ = L Lᵀ
        self._whiten: tuple[Tensor, Tensor] | None = None  # log_prob's Cholesky pieces, made on first use

    @property
    def batched(self) -> bool:
        return self.weights.dim() == 2

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` samples per mixture: ``(M, n, *x_shape)`` if batched, else ``(n, *x_shape)``."""
        weights = self.weights if self.batched else self.weights[None]
        means = self.means if self.batched else self.means[None]
        M, K, d = means.shape
        comp = torch.multinomial(weights, n, replacement=True, generator=generator)  # (M, n)
        eps = torch.randn((M, n, d), generator=generator, dtype=means.dtype, device=means.device)
        mu = torch.gather(means, 1, comp[..., None].expand(M, n, d))
        x = mu + torch.einsum("mnij,mnj->mni", self._scale[comp], eps)
        x = x.reshape(M, n, *self.x_shape)
        return x if self.batched else x[0]

    def mean(self) -> Tensor:
        """Mixture mean ``Σ_k w_k μ_k``: ``(M, *x_shape)`` or ``(*x_shape)``."""
        m = (self.weights[..., None] * self.means).sum(-2)
        return m.reshape(*m.shape[:-1], *self.x_shape)

    def covariance(self) -> Tensor:
        """Mixture covariance ``(*batch, d, d)``."""
        mean = (self.weights[..., None] * self.means).sum(-2)
        second = (self.weights[..., None, None] * (self.covs + self.means[..., :, None] * self.means[..., None, :])).sum(-3)
        return second - mean[..., :, None] * mean[..., None, :]

    def log_prob(self, x: Tensor) -> Tensor:
        """Log density of ``x (*batch, N, *x_shape)``, shape ``(*batch, N)``; needs full-rank ``covs``."""
        d = self.means.shape[-1]
        xf = x.reshape(*x.shape[: x.dim() - len(self.x_shape)], d)
        chol_inv, logdet = self._whitening()
        diff = xf[..., :, None, :] - self.means[..., None, :, :]  # (*b, N, K, d)
        # L⁻¹(x − μ_k): one matmul per component (a triangular solve per row broadcasts L to N×K).
        sol = torch.einsum("...kij,...nkj->...nki", chol_inv, diff)
        logp = -0.5 * (sol**2).sum(-1) - 0.5 * logdet - 0.5 * d * math.log(2 * math.pi)
        return torch.logsumexp(self.weights.log()[..., None, :] + logp, dim=-1)

    def _whitening(self) -> tuple[Tensor, Tensor]:
        """``(L⁻¹ (K, d, d), log det Σ (K,))`` with ``Σ = L Lᵀ``, computed on first use and kept
        (``covs`` is fixed; samplers call ``log_prob`` thousands of times)."""
        if self._whiten is None:
            chol = torch.linalg.cholesky(self.covs)  # raises for singular covariances
            eye = torch.eye(chol.shape[-1], dtype=chol.dtype, device=chol.device).expand_as(chol)
            chol_inv = torch.linalg.solve_triangular(chol, eye, upper=False)
            self._whiten = (chol_inv, 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1))
        return self._whiten

    def to(self, device) -> "GaussianMixture":
        return GaussianMixture(self.weights.to(device), self.means.to(device), self.covs.to(device), self.x_shape)


class GaussianMixturePrior(Prior):
    """Exact MMSE denoiser of a Gaussian mixture ``Σ_k w_k N(μ_k, Σ_k)`` on any ``x_shape``.

    ``denoise(x (B, *x_shape), sigma (B,))`` evaluates, per sample and in log space,
    ``x0_hat = Σ_k r_k(x) [μ_k + Σ_k (Σ_k + σ² I)⁻¹ (x − μ_k)]`` with responsibilities
    ``r_k ∝ w_k N(x; μ_k, Σ_k + σ² I)``, using one eigendecomposition per component made
    at construction (so every sample may have its own σ at no extra cost).

    Args:
        weights: ``(K,)`` positive, summing to 1.
        means: ``(K, *x_shape)``.
        covs: ``(K, d, d)`` symmetric positive semi-definite, ``d = prod(x_shape)``.
        data_range: the interval the data lives in, or ``None`` (default: unbounded).
    """

    def __init__(self, weights: Tensor, means: Tensor, covs: Tensor,
                 data_range: tuple[float, float] | None = None) -> None:
        super().__init__()
        for value, name in ((weights, "weights"), (means, "means"), (covs, "covs")):
            check_tensor(value, name)
        if weights.dim() != 1 or (weights <= 0).any():
            raise ValueError(f"`weights` must be a (K,) tensor of positive numbers, got shape "
                             f"{tuple(weights.shape)}.")
        if abs(weights.sum().item() - 1) > 1e-5:
            raise ValueError(f"`weights` sum to {weights.sum().item():.6g}, not 1; pass "
                             f"weights / weights.sum().")
        K = weights.shape[0]
        if means.dim() < 2 or means.shape[0] != K:
            raise ValueError(f"`means` must be (K={K}, *x_shape), got {tuple(means.shape)}.")
        self.x_shape = tuple(means.shape[1:])
        d = math.prod(self.x_shape)
        _check_covs(covs, d)
        eigvals, eigvecs = torch.linalg.eigh(covs)
        if (eigvals < -1e-6 * eigvals.abs().max()).any():
            raise ValueError("`covs` must be positive semi-definite; found negative eigenvalues "
                             f"(min {eigvals.min().item():.3g}).")
        self.data_range = data_range
        self.register_buffer("weights", weights)
        self.register_buffer("means", means.reshape(K, d))
        self.register_buffer("covs", covs)
        self.register_buffer("eigvals", eigvals.clamp_min(0))
        self.register_buffer("eigvecs", eigvecs)

    @property
    def num_components(self) -> int:
        return self.weights.shape[0]

    def _denoise(self, x: Tensor, sigma: Tensor) -> Tensor:
        B = x.shape[0]
        diff = x.reshape(B, 1, -1).to(self.means.dtype) - self.means[None]  # (B, K, d)
        z = torch.einsum("kij,bki->bkj", self.eigvecs, diff)  # coordinates in each eigenbasis
        var = self.eigvals[None] + sigma.to(self.means.dtype).reshape(B, 1, 1) ** 2  # (B, K, d)
        log_resp = self.weights.log()[None] - 0.5 * ((z**2) / var + var.log()).sum(-1)
        resp = torch.softmax(log_resp, dim=1)  # (B, K)
        shrunk = torch.einsum("kij,bkj->bki", self.eigvecs, (self.eigvals[None] / var) * z)
        x0_hat = (resp[..., None] * (self.means[None] + shrunk)).sum(1)
        return x0_hat.reshape(x.shape).to(x.dtype)

    def distribution(self) -> GaussianMixture:
        """The prior itself as a :class:`GaussianMixture` (for ``sample``, ``log_prob``)."""
        return GaussianMixture(self.weights, self.means, self.covs, self.x_shape)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` exact prior samples ``(n, *x_shape)``."""
        return self.distribution().sample(n, generator)

    def posterior(self, problem) -> GaussianMixture:
        """Exact posterior ``p(x | y_m)`` for each measurement, a batched :class:`GaussianMixture`.

        Requires a linear operator (``matrix()`` available) and ``Gaussian`` noise.
        """
        op, noise = problem.operator, problem.noise
        if not op.linear or not hasattr(op, "matrix"):
            raise ValueError(f"posterior() needs a linear operator with a matrix; got "
                             f"{type(op).__name__} (linear={op.linear}).")
        if not isinstance(noise, Gaussian):
            raise ValueError(f"posterior() needs Gaussian noise, got {type(noise).__name__}.")
        dtype = self.means.dtype
        A = op.matrix().to(dtype)
        y = problem.measurement.reshape(problem.num_measurements, -1).to(dtype)
        if A.shape[1] != self.means.shape[1]:
            raise ValueError(f"operator acts on {A.shape[1]} entries but the prior has "
                             f"{self.means.shape[1]} (x_shape {self.x_shape}).")
        m = A.shape[0]
        S = A @ self.covs @ A.T + noise.sigma**2 * torch.eye(m, dtype=dtype, device=A.device)  # (K, m, m)
        chol = torch.linalg.cholesky(S)
        G = torch.cholesky_solve(A @ self.covs, chol).transpose(1, 2)  # (K, d, m) = Σ Aᵀ S⁻¹
        covs = self.covs - G @ A @ self.covs
        covs = 0.5 * (covs + covs.transpose(1, 2))
        resid = y[:, None, :] - (self.means @ A.T)[None]  # (M, K, m)
        means = self.means[None] + torch.einsum("kdm,bkm->bkd", G, resid)
        sol = torch.linalg.solve_triangular(chol[None], resid[..., None], upper=False)[..., 0]
        logdet = 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        log_w = self.weights.log()[None] - 0.5 * (sol**2).sum(-1) - 0.5 * logdet[None]
        weights = torch.softmax(log_w, dim=1)
        return GaussianMixture(weights, means, covs, self.x_shape)


class GaussianPrior(GaussianMixturePrior):
    """Gaussian prior ``N(mean, cov)`` — a one-component :class:`GaussianMixturePrior`.

    Args:
        mean: ``(*x_shape)``.
        cov: ``(d, d)`` with ``d = prod(x_shape)``.
    """

    def __init__(self, mean: Tensor, cov: Tensor, data_range: tuple[float, float] | None = None) -> None:
        check_tensor(mean, "mean")
        check_tensor(cov, "cov")
        if cov.dim() != 2:
            raise ValueError(f"`cov` must be (d, d), got {tuple(cov.shape)}.")
        super().__init__(torch.ones(1, dtype=mean.dtype, device=mean.device), mean[None], cov[None],
                         data_range=data_range)
