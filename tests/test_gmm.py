"""The analytic priors against brute force: denoiser vs Monte Carlo, posterior vs importance sampling."""


import pytest
import torch

from conftest import small_gmm
from invprob import Problem, noise
from invprob.operators import MatrixOperator
from invprob.priors import GaussianMixturePrior, GaussianPrior


def test_gmm_denoiser_matches_monte_carlo_2d(gen):
    prior = small_gmm(d_shape=(2,), K=3)
    x0 = prior.sample(400_000, gen)  # (N, 2)
    for sigma in (0.3, 1.0):
        x_query = torch.tensor([[0.5, -0.2], [1.5, 1.0]], dtype=torch.float64)
        # E[x0 | x] by self-normalised importance weights p(x | x0) over prior samples.
        logw = -((x_query[:, None, :] - x0[None]) ** 2).sum(-1) / (2 * sigma**2)
        w = torch.softmax(logw, dim=1)
        mc = w @ x0
        exact = prior.denoise(x_query, torch.full((2,), sigma, dtype=torch.float64))
        ess = 1 / (w**2).sum(1)
        assert ess.min() > 500
        assert torch.allclose(exact, mc, atol=0.02), (exact, mc)


def test_gmm_denoiser_per_sample_sigma_and_batch_independence():
    prior = small_gmm(d_shape=(1, 2, 2), K=4, seed=3)
    x = torch.randn(5, 1, 2, 2, dtype=torch.float64)
    sigma = torch.tensor([0.01, 0.1, 1.0, 10.0, 0.5], dtype=torch.float64)
    batched = prior.denoise(x, sigma)
    single = torch.cat([prior.denoise(x[i : i + 1], sigma[i : i + 1]) for i in range(5)])
    assert torch.allclose(batched, single, atol=1e-12)
    # tiny sigma: the denoiser returns (almost) the input; huge sigma: the prior mean
    assert torch.allclose(batched[0], x[0], atol=1e-3)
    assert torch.allclose(prior.denoise(x[:1], 1e4), prior.distribution().mean()[None], atol=1e-3)


def test_gaussian_prior_denoiser_closed_form():
    d = 3
    g = torch.Generator().manual_seed(0)
    L = torch.randn(d, d, generator=g, dtype=torch.float64)
    cov = L @ L.T + 0.1 * torch.eye(d, dtype=torch.float64)
    mean = torch.randn(d, generator=g, dtype=torch.float64)
    prior = GaussianPrior(mean, cov)
    x = torch.randn(4, d, generator=g, dtype=torch.float64)
    s = 0.7
    expected = mean + (cov @ torch.linalg.solve(cov + s**2 * torch.eye(d, dtype=torch.float64), (x - mean).T)).T
    assert torch.allclose(prior.denoise(x, s), expected, atol=1e-12)
    score = prior.score(x, s)
    expected_score = -torch.linalg.solve(cov + s**2 * torch.eye(d, dtype=torch.float64), (x - mean).T).T
    assert torch.allclose(score, expected_score, atol=1e-10)


def test_exact_posterior_matches_importance_sampling_2d(gen):
    prior = small_gmm(d_shape=(2,), K=3, seed=5)
    A = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    op = MatrixOperator(A, (2,))
    y = torch.tensor([[0.3], [-1.2]], dtype=torch.float64)
    problem = Problem(op, y, noise.Gaussian(0.4))
    post = prior.posterior(problem)
    x0 = prior.sample(400_000, gen)
    for m in range(2):
        logw = problem.noise.log_likelihood(y[m].expand(x0.shape[0], 1), op(x0))
        w = torch.softmax(logw, 0)
        is_mean = w @ x0
        is_second = (w[:, None, None] * x0[:, :, None] * x0[:, None, :]).sum(0)
        assert torch.allclose(post.mean()[m], is_mean, atol=0.02)
        exact_second = post.covariance()[m] + post.mean()[m][:, None] * post.mean()[m][None]
        assert torch.allclose(exact_second, is_second, atol=0.05)
        # and the exact posterior's own samples agree with its mean
        samples = post.sample(200_000, gen)[m]
        assert torch.allclose(samples.mean(0), post.mean()[m], atol=0.02)


def test_posterior_log_prob_is_bayes_rule():
    prior = small_gmm(d_shape=(2,), K=2, seed=9)
    op = MatrixOperator(torch.tensor([[0.8, -0.3]], dtype=torch.float64), (2,))
    y = torch.tensor([[0.4]], dtype=torch.float64)
    problem = Problem(op, y, noise.Gaussian(0.3))
    post = prior.posterior(problem)
    x = torch.randn(6, 2, dtype=torch.float64)
    unnorm = prior.distribution().log_prob(x) + problem.noise.log_likelihood(y.expand(6, 1), op(x))
    diff = post.log_prob(x[None])[0] - unnorm  # log p(x|y) - log p(x) p(y|x) = -log p(y): constant
    assert torch.allclose(diff, diff[0].expand_as(diff), atol=1e-9)


def test_gmm_validation_errors():
    means = torch.zeros(2, 1, 2, 2)
    covs = torch.eye(4).expand(2, 4, 4).clone()
    with pytest.raises(ValueError, match="sum to"):
        GaussianMixturePrior(torch.tensor([0.3, 0.3]), means, covs)
    with pytest.raises(ValueError, match="covs"):
        GaussianMixturePrior(torch.tensor([0.5, 0.5]), means, torch.eye(3).expand(2, 3, 3))
    bad = covs.clone()
    bad[0] = -bad[0]
    with pytest.raises(ValueError, match="semi-definite"):
        GaussianMixturePrior(torch.tensor([0.5, 0.5]), means, bad)
    prior = GaussianMixturePrior(torch.tensor([0.5, 0.5]), means, covs)
    with pytest.raises(ValueError, match="sigma"):
        prior.denoise(torch.zeros(2, 1, 2, 2), torch.tensor([0.1, 0.0]))
    with pytest.raises(ValueError, match="shape"):
        prior.denoise(torch.zeros(2, 4), 0.1)


def test_the_two_test_bed_families_differ_in_structure():
    from invprob.evaluation import FAMILIES, gmm_prior, make_problem

    assert FAMILIES == ("smooth", "anisotropic")
    smooth, aniso = gmm_prior(10), gmm_prior(10, family="anisotropic")
    assert len(smooth.weights) == 5 and len(aniso.weights) == 8
    assert torch.allclose(smooth.covs[0], smooth.covs[1])  # one shared covariance
    assert not torch.allclose(aniso.covs[0], aniso.covs[1])  # one rotated covariance per component
    spectrum = torch.linalg.eigvalsh(aniso.covs[3])
    assert torch.allclose(spectrum.max() / spectrum.min(), torch.tensor((0.25 / 0.02) ** 2, dtype=spectrum.dtype))
    # white means in a 3-dimensional subspace
    assert torch.linalg.matrix_rank(aniso.means.flatten(1)) == 3
    a, b = make_problem("inpainting", 11, family="anisotropic"), make_problem("inpainting", 11, family="anisotropic")
    assert torch.equal(a[1].measurement, b[1].measurement)
    with pytest.raises(ValueError, match="family"):
        gmm_prior(0, family="isotropic")
