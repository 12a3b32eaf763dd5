"""Latent priors and solvers: the A∘D bridge, plain autoencoders, the exact latent test bed,
Latent DAPS against the exact latent posterior, and the one-line refusals."""

import pytest
import torch

from invprob.errors import UnsupportedProblemError
from invprob.evaluation import LinearAutoencoder, latent_problem, sliced_wasserstein
from invprob.operators import LatentOperator
from invprob.priors import LatentPrior
from invprob.registry import get_solver


def test_the_latent_test_bed_measures_through_the_decoder_and_its_posterior_is_exact():
    t = latent_problem("gaussian_matrix", seed=4)
    latent = t.prior.latent_problem(t.problem)
    assert isinstance(latent.operator, LatentOperator) and latent.operator.x_shape == (1, 4, 4)
    assert torch.equal(latent.measurement, t.problem.measurement)
    z = t.prior.latent.sample(3, torch.Generator().manual_seed(0))
    assert torch.allclose(latent.operator(z), t.problem.operator(t.prior.decode(z)))
    assert torch.allclose(t.prior.encode(t.prior.decode(z)), z)  # E = W⁺ on the decoder's range
    # the exact posterior is Bayes' rule for y = (A W) z + n: its mean fits the data better than the prior's
    post_fit = (t.problem.operator(t.prior.decode(t.posterior.mean())) - t.problem.measurement).norm()
    prior_fit = (t.problem.operator(t.prior.decode(t.prior.latent.means.mean(0, keepdim=True)))
                 - t.problem.measurement).norm()
    assert post_fit < 0.5 * prior_fit


def test_a_plain_autoencoder_needs_encode_and_decode():
    t = latent_problem("inpainting", seed=0)
    with pytest.raises(TypeError, match="encode"):
        LatentPrior(t.prior.latent, torch.nn.Linear(3, 3), "plain", 1.0, (1, 8, 8))
    with pytest.raises(ValueError, match="kind"):
        LatentPrior(t.prior.latent, t.prior.autoencoder, "pca", 1.0, (1, 8, 8))


def test_latent_and_pixel_solvers_refuse_the_other_kind_of_prior_in_one_line():
    t = latent_problem("inpainting", seed=0)
    with pytest.raises(UnsupportedProblemError, match="latent prior.*latent-daps") as err:
        get_solver("dps").init(t.problem, t.prior, num_samples=1, generator=0)
    assert "\n" not in str(err.value)
    from invprob.evaluation import make_problem

    prior, problem, _ = make_problem("inpainting", seed=0)
    with pytest.raises(UnsupportedProblemError, match="LatentPrior") as err:
        get_solver("latent-daps").init(problem, prior, num_samples=1, generator=0)
    assert "\n" not in str(err.value)
    wrong = LatentPrior(t.prior.latent, LinearAutoencoder(torch.eye(16, dtype=torch.float64), (1, 4, 4), (1, 4, 4)),
                        "plain", 1.0, (1, 4, 4))
    with pytest.raises(UnsupportedProblemError, match="decodes to"):
        get_solver("latent-daps").init(t.problem, wrong, num_samples=1, generator=0)


def test_any_pixel_solver_runs_on_the_latent_problem():
    """``prior.latent_problem(problem)`` with the latent denoiser is e.g. latent DPS."""
    t = latent_problem("inpainting", seed=1)
    result = get_solver("dps", num_steps=50).solve(t.prior.latent_problem(t.problem), t.prior, num_samples=4,
                                                   generator=0, progress=False)
    assert result.samples.shape == (1, 4, 1, 4, 4)  # latents: the pixel solver does not decode
    assert result.operator_calls == 50  # one A(D(z)) per step


@pytest.mark.parametrize("name", ["inpainting", pytest.param("gaussian_matrix", marks=pytest.mark.slow)])
def test_latent_daps_samples_near_the_exact_latent_posterior(name):
    t = latent_problem(name, seed=3)
    g = torch.Generator().manual_seed(0)
    exact = t.prior.decode(t.posterior.sample(300, g)[0])
    baseline = sliced_wasserstein(t.prior.decode(t.prior.latent.sample(300, g)), exact,
                                  generator=torch.Generator().manual_seed(1))
    result = get_solver("latent-daps-inpainting-random").solve(t.problem, t.prior, num_samples=300, generator=0,
                                                                progress=False)
    assert result.samples.shape == (1, 300, 1, 8, 8)  # decoded images
    sw2 = sliced_wasserstein(result.samples[0], exact, generator=torch.Generator().manual_seed(1))
    assert sw2 < 0.5 * baseline, (float(sw2), float(baseline))


def test_psld_refuses_nonlinear_operators_and_samples_near_the_exact_latent_posterior():
    from invprob import Problem, noise
    from invprob.operators import PhaseRetrieval

    t = latent_problem("inpainting", seed=3)
    op = PhaseRetrieval((1, 8, 8)).to(torch.float64)
    nonlinear = Problem.simulate(op, t.x_true, noise.Gaussian(0.05), generator=torch.Generator().manual_seed(0))
    with pytest.raises(UnsupportedProblemError, match="linear operator.*latent-daps"):
        get_solver("psld").init(nonlinear, t.prior, num_samples=1, generator=0)
    g = torch.Generator().manual_seed(0)
    exact = t.prior.decode(t.posterior.sample(200, g)[0])
    baseline = sliced_wasserstein(t.prior.decode(t.prior.latent.sample(200, g)), exact,
                                  generator=torch.Generator().manual_seed(1))
    result = get_solver("psld").solve(t.problem, t.prior, num_samples=200, generator=0, progress=False)
    assert result.nfe == 1000 and result.operator_calls == 2000  # A x̂ and A(Aᵀ...) per step
    sw2 = sliced_wasserstein(result.samples[0], exact, generator=torch.Generator().manual_seed(1))
    assert sw2 < 0.5 * baseline, (float(sw2), float(baseline))


def _sw2_ratio(t, samples, n):
    """SW2 of ``samples`` to exact posterior samples, over the prior's SW2 (decoded images)."""
    g = torch.Generator().manual_seed(0)
    exact = t.prior.decode(t.posterior.sample(n, g)[0])
    baseline = sliced_wasserstein(t.prior.decode(t.prior.latent.sample(n, g)), exact,
                                  generator=torch.Generator().manual_seed(1))
    return float(sliced_wasserstein(samples, exact, generator=torch.Generator().manual_seed(1)) / baseline)


def test_resample_pieces_match_the_official_vp_formulas():
    from invprob.solvers.resample import stochastic_resample

    solver = get_solver("resample")
    # the official schedule: consistency at index 330, 320, ..., 10; pixel space down to index 170
    branches = [solver.branch(i) for i in range(500)]
    assert branches.count("pixel") == 17 and branches.count("latent") == 16
    assert branches[499 - 330] == "pixel" and branches[499 - 160] == "latent" and branches[499 - 340] is None
    assert solver.nfe_per_sample == 500 + 33 * 5
    g = torch.Generator().manual_seed(0)
    z, d, z0_y, noise = (torch.randn(4, 3, generator=g, dtype=torch.float64) for _ in range(4))
    sigma, sigma_next = 2.0, 1.5
    a_t, a_prev = 1 / (1 + sigma**2), 1 / (1 + sigma_next**2)
    # ddim.py `pseudo_x0 = (x - sqrt_one_minus_at**2 * e_t) / a_t.sqrt()` on x = √ᾱ z, e_t from D
    x = a_t**0.5 * z
    e_t = (x - a_t**0.5 * d) / (1 - a_t) ** 0.5
    assert torch.allclose(solver._x0(z, d, sigma), (x - (1 - a_t) * e_t) / a_t**0.5)
    # ddim.py `stochastic_resample`: (σ² √a pseudo_x0 + (1 − a) x_t)/(σ² + 1 − a) + noise √(1/(1/σ² + 1/(1 − a)))
    var = 40 * (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)
    x_t = a_prev**0.5 * z
    official = ((var * a_prev**0.5 * z0_y + (1 - a_prev) * x_t) / (var + 1 - a_prev)
                + noise * (1 / (1 / var + 1 / (1 - a_prev))) ** 0.5)
    assert torch.allclose(a_prev**0.5 * stochastic_resample(z0_y, z, sigma, sigma_next, 40.0, noise), official)


def test_resample_samples_near_the_exact_latent_posterior():
    t = latent_problem("inpainting", seed=3)
    result = get_solver("resample").solve(t.problem, t.prior, num_samples=100, generator=0, progress=False)
    assert result.nfe == 665 and result.encoder_calls == 17  # one E(x*) per pixel-space consistency
    assert result.decoder_calls > result.nfe  # the latent optimisations decode at every iteration
    assert _sw2_ratio(t, result.samples[0], 100) < 0.5


def test_stsl_trace_probe_is_the_hessian_trace_of_a_gaussian_and_stsl_samples_near_the_posterior():
    from invprob.priors import GaussianPrior
    from invprob.solvers.stsl import trace_probe

    c, sigma, d = 0.7, 1.3, 16
    prior = GaussianPrior(torch.zeros(1, 4, 4, dtype=torch.float64), c**2 * torch.eye(d, dtype=torch.float64))
    g = torch.Generator().manual_seed(0)
    z = torch.randn(20000, 1, 4, 4, generator=g, dtype=torch.float64)
    eps = torch.randn(z.shape, generator=g, dtype=torch.float64)
    probes = trace_probe(prior, z, prior.denoise(z, z.new_full((len(z),), sigma)), sigma, eps)
    abar = 1 / (1 + sigma**2)  # x = √ᾱ z ~ N(0, ᾱ (c² + σ²) I): tr ∇² log p = −d / (ᾱ (c² + σ²))
    assert abs(float(probes.mean()) / (-d / (abar * (c**2 + sigma**2))) - 1) < 0.03
    t = latent_problem("gaussian_matrix", seed=3)
    result = get_solver("stsl").solve(t.problem, t.prior, num_samples=200, generator=0, progress=False)
    assert result.nfe == 250 and result.operator_calls == 100 and result.encoder_calls == 1
    assert _sw2_ratio(t, result.samples[0], 200) < 0.5
