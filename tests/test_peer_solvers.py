"""ΠGDM, MMPS and TDS: their updates against transcriptions of the official rules and closed forms,
and their samples against exact posteriors."""

import pytest
import torch

from conftest import DenseWithoutSVD, small_gmm
from invprob import Problem, noise
from invprob.errors import UnsupportedProblemError
from invprob.evaluation import make_problem, sliced_wasserstein, testbed
from invprob.operators import MatrixOperator
from invprob.priors import GaussianMixturePrior
from invprob.sampling import ddim_sigmas
from invprob.solvers import MMPS, TDS, PiGDM


def _problem(sigma_y=0.1, seed=0, M=2):
    prior = small_gmm(d_shape=(1, 2, 2), K=3, seed=seed)
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(3, 4, generator=g, dtype=torch.float64)
    op = MatrixOperator(A, (1, 2, 2))
    x = prior.sample(M, g)
    return prior, Problem.simulate(op, x, noise.Gaussian(sigma_y), generator=g)


def test_pigdm_guidance_is_the_pseudo_inverse_when_noiseless_and_cg_agrees_with_the_svd():
    prior, problem = _problem()
    solver = PiGDM(cg_iterations=10)
    state = solver.init(problem, prior, num_samples=2, generator=0)
    residual = torch.randn(state.measurement.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    A = problem.operator.A
    for sigma_y in (0.0, 0.3):
        state.problem.noise.sigma = sigma_y  # the noise level the guidance reads
        for r2 in (0.5, 1e-3):
            v = solver.guidance_vector(state, residual, r2).flatten(1)
            exact = r2 * (A.T @ torch.linalg.solve(r2 * A @ A.T + sigma_y**2 * torch.eye(3, dtype=A.dtype), residual.T)).T
            assert torch.allclose(v, exact, atol=1e-10)
            if sigma_y == 0:
                assert torch.allclose(v, residual @ torch.linalg.pinv(A).T, atol=1e-10)
            dense = Problem(DenseWithoutSVD(A, (1, 2, 2)), problem.measurement, noise.Gaussian(max(sigma_y, 1e-12)))
            cg = solver.guidance_vector(state.replace(problem=dense), residual, r2).flatten(1)
            assert torch.allclose(cg, exact, atol=1e-8)


def test_pigdm_step_is_the_official_vp_update():
    """One step against a transcription of RED-diff's ``algos/pgdm.py`` (awd=True, σ_y = 0) in
    the VP variable, with the same denoiser and the same fresh noise."""
    prior, problem = _problem(sigma_y=1e-12)
    solver = PiGDM(eta=0.7, weight=1.3, num_steps=20)
    state = solver.init(problem, prior, num_samples=2, generator=3)
    i = 5
    new = solver.step(state.replace(x=state.x * 0.05), i)  # a mid-level iterate
    x_tilde = state.x * 0.05
    sigma, sigma_next = ddim_sigmas(20)[i], ddim_sigmas(20)[i + 1]
    at, as_ = 1 / (1 + sigma**2), 1 / (1 + sigma_next**2)
    x_t = (at**0.5 * x_tilde).requires_grad_(True)
    x0 = prior.denoise(x_t / at**0.5, torch.full((4,), sigma, dtype=torch.float64))
    eps = (x_t - at**0.5 * x0) / (1 - at) ** 0.5
    pinv = torch.linalg.pinv(problem.operator.A)
    y = problem.measurement.repeat_interleave(2, 0)
    v = (y @ pinv.T - x0.flatten(1) @ (pinv @ problem.operator.A).T).reshape(x0.shape).detach()
    (g,) = torch.autograd.grad((v * x0).sum(), x_t)
    c1 = 0.7 * ((1 - at / as_) * (1 - as_) / (1 - at)) ** 0.5
    c2 = (1 - as_ - c1**2) ** 0.5
    z = solver.randn(state, step=i)
    x_s = as_**0.5 * x0.detach() + c1 * z + c2 * eps.detach() + as_**0.5 * at**0.5 * 1.3 * g
    assert torch.allclose(new.x, x_s / as_**0.5, atol=1e-10)


def test_mmps_posterior_denoiser_is_exact_for_a_gaussian_prior():
    """For a Gaussian prior, σ² ∂x̂0/∂x_t is the exact covariance of x0 | x_t, so with as many CG
    iterations as measurements the moment-matched mean is E[x0 | x_t, y] in closed form."""
    g = torch.Generator().manual_seed(0)
    L = torch.randn(4, 4, generator=g, dtype=torch.float64)
    cov, mean = L @ L.T + 0.1 * torch.eye(4, dtype=torch.float64), torch.randn(4, generator=g, dtype=torch.float64)
    prior = GaussianMixturePrior(torch.ones(1, dtype=torch.float64), mean.reshape(1, 1, 2, 2), cov[None])
    A = torch.randn(3, 4, generator=g, dtype=torch.float64)
    problem = Problem(MatrixOperator(A, (1, 2, 2)), torch.randn(1, 3, generator=g, dtype=torch.float64),
                      noise.Gaussian(0.2))
    solver = MMPS(cg_iterations=3)
    state = solver.init(problem, prior, num_samples=1, generator=0)
    sigma = 0.7
    x_t = torch.randn(1, 1, 2, 2, generator=g, dtype=torch.float64)
    got = solver.posterior_denoise(state, x_t, sigma).flatten()
    precision = torch.linalg.inv(cov) + torch.eye(4, dtype=torch.float64) / sigma**2
    c_t = torch.linalg.inv(precision)
    m_t = c_t @ (torch.linalg.solve(cov, mean) + x_t.flatten() / sigma**2)
    gain = c_t @ A.T @ torch.linalg.inv(A @ c_t @ A.T + 0.04 * torch.eye(3, dtype=torch.float64))
    exact = m_t + gain @ (problem.measurement[0] - A @ m_t)
    assert torch.allclose(got, exact, atol=1e-8)
    one = MMPS(cg_iterations=1).posterior_denoise(state, x_t, sigma).flatten()
    assert (one - exact).norm() > 1e-6  # one iteration is an approximation (the paper's default)


def _small_mixture_problem():
    prior = testbed.gmm_prior(3, x_shape=(1, 2, 2))
    op = testbed.inpainting_operator(3, x_shape=(1, 2, 2))
    g = torch.Generator().manual_seed(5)
    problem = Problem.simulate(op, prior.sample(1, g), noise.Gaussian(0.05), generator=g)
    return prior, problem, prior.posterior(problem).sample(100_000, g)[0]


@pytest.mark.slow  # 20–60 s: the default suite keeps TDS's contract tests and refusals
@pytest.mark.parametrize("num_steps, particles, tol", [(250, 40_000, 0.025), (1000, 20_000, 0.015)])
def test_tds_is_asymptotically_exact_on_a_small_mixture(num_steps, particles, tol):
    """With many particles the weights correct the twisted proposals: the posterior mean and
    spread of a 4-pixel mixture problem (2 pixels observed) come out right. TDS targets the
    posterior of its own DDPM chain, whose prior is under-dispersed with few steps (fixed-small
    reverse variance): hence the looser tolerance at 250 steps. Importance sampling from the
    100-step chain without twisting misses the unobserved pixels' spread by 0.05, so the
    tolerances bite."""
    prior, problem, exact = _small_mixture_problem()
    samples = TDS(num_steps=num_steps, num_particles=particles).solve(
        problem, prior, num_samples=particles, generator=1, progress=False).samples[0]
    assert (samples.mean(0) - exact.mean(0)).abs().max() < 0.03
    assert (samples.std(0) - exact.std(0)).abs().max() < tol


def test_tds_refuses_noiseless_data():
    prior, problem = _problem(sigma_y=0.1)
    problem.noise.sigma = 0.0
    with pytest.raises(UnsupportedProblemError, match="sigma > 0"):
        TDS().init(problem, prior, num_samples=2, generator=0)


@pytest.mark.parametrize("name", ["inpainting", "gaussian_matrix"])
def test_pigdm_and_mmps_beat_the_prior_by_half_on_the_gmm_test_bed(name):
    prior, problem, _ = make_problem(name, seed=3)
    post = prior.posterior(problem)
    g = torch.Generator().manual_seed(0)
    exact = post.sample(300, g)[0]
    baseline = sliced_wasserstein(prior.sample(300, g), exact, generator=torch.Generator().manual_seed(1))
    for solver in (PiGDM(), MMPS()):
        samples = solver.solve(problem, prior, num_samples=300, generator=0, progress=False).samples[0]
        sw2 = sliced_wasserstein(samples, exact, generator=torch.Generator().manual_seed(1))
        assert sw2 < 0.5 * baseline, (type(solver).__name__, float(sw2), float(baseline))
