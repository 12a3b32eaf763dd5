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
