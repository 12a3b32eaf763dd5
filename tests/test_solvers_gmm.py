"""Every solver against the exact posterior of the GMM test bed (d = 64, σ_y = 0.05), on the
50 % inpainting problem of seed 7, with 200 samples. Thresholds are fractions of the prior's
own SW2 to the posterior; the benchmark (benchmarks/posterior_gmm.py) has the full numbers."""

import pytest
import torch

from invprob.evaluation import sliced_wasserstein, testbed
from invprob.registry import get_solver

N = 200


@pytest.fixture(scope="module")
def bed():
    prior, problem, _ = testbed.make_problem("inpainting", seed=7)
    post = prior.posterior(problem)
    g = torch.Generator().manual_seed(0)
    exact = post.sample(N, g)[0]
    prior_sw = sliced_wasserstein(prior.sample(N, g), exact, generator=g).item()
    return prior, problem, exact, prior_sw


# (preset, overrides, bound as a fraction of the prior's SW2); bounds leave ~2x slack over
# what was measured when they were set (mcg-gmm-tuned 0.10, reddiff 0.23,
# daps-sigma-y 0.12 and daps 0.10 with 100 annealing steps).
CASES = [
    ("mcg-gmm-tuned", {}, 0.3),
    ("reddiff", {}, 0.45),
    ("daps-sigma-y", {"num_steps": 100}, 0.3),
    ("daps", {"num_steps": 100}, 0.3),
    # the official code's damped HMC (its phase-retrieval config): measured 0.10, as Langevin DAPS
    ("daps-hmc-phase-retrieval", {"num_steps": 100}, 0.3),
    ("diffpir", {}, 0.5),
    ("ddnm", {}, 0.6),
]


@pytest.mark.parametrize("preset,overrides,bound", CASES)
def test_solver_is_far_closer_to_the_posterior_than_the_prior(bed, preset, overrides, bound):
    prior, problem, exact, prior_sw = bed
    result = get_solver(preset, **overrides).solve(problem, prior, num_samples=N, generator=3, progress=False)
    sw = sliced_wasserstein(result.samples[0], exact, generator=torch.Generator().manual_seed(1)).item()
    assert sw < bound * prior_sw, (preset, sw / prior_sw)


def test_reddiff_starts_from_the_pseudo_inverse(bed):
    prior, problem, _, _ = bed
    solver = get_solver("reddiff")
    state = solver.init(problem, prior, num_samples=2, generator=0)
    assert torch.allclose(state.x[0], problem.operator.pinv(problem.measurement)[0])


def test_gradient_checkpointing_gives_the_same_samples(monkeypatch):
    from invprob.registry import get_prior
    from invprob.operators import Inpainting
    from invprob import Problem, noise

    prior = get_prior("mnist")
    op = Inpainting((1, 32, 32), kind="random", missing=0.5, seed=0)
    x = torch.zeros(1, 1, 32, 32)
    problem = Problem.simulate(op, x, noise.Gaussian(0.05), generator=torch.Generator().manual_seed(0))
    plain = get_solver("mcg", num_steps=4).solve(problem, prior, num_samples=2, generator=0, progress=False)
    import torch.utils.checkpoint as ckpt

    calls = []
    original = ckpt.checkpoint
    monkeypatch.setattr(ckpt, "checkpoint", lambda *a, **k: calls.append(1) or original(*a, **k))
    saved = get_solver("mcg", num_steps=4, gradient_checkpointing=True).solve(problem, prior, num_samples=2,
                                                                              generator=0, progress=False)
    assert len(calls) >= 4 * 6  # every resnet block of the network checkpointed, at each of the 4 steps
    assert saved.nfe == plain.nfe == 4  # recomputations are not network evaluations of the algorithm
    assert torch.allclose(plain.samples, saved.samples, atol=1e-5)
    assert not any(m.gradient_checkpointing for m in prior.modules() if hasattr(m, "gradient_checkpointing"))


def test_daps_with_the_official_smaller_step_samples_the_gaussian_matrix_posterior():
    """DAPS's default lr 1e-4 is refused on this problem (unstable); the official configs' other
    step, 5e-5, is stable and close to the posterior (measured 0.18 of the prior's SW2 with 100
    annealing steps; the benchmark's 1000-NFE run: 1.64x the floor)."""
    prior, problem, _ = testbed.make_problem("gaussian_matrix", seed=7)
    g = torch.Generator().manual_seed(0)
    exact = prior.posterior(problem).sample(N, g)[0]
    prior_sw = sliced_wasserstein(prior.sample(N, g), exact, generator=g).item()
    result = get_solver("daps", lr=5e-5, num_steps=100).solve(problem, prior, num_samples=N, generator=3,
                                                              progress=False)
    sw = sliced_wasserstein(result.samples[0], exact, generator=torch.Generator().manual_seed(1)).item()
    assert sw < 0.35 * prior_sw, sw / prior_sw
