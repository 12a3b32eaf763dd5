"""TemperedSMC against an exact two-mode posterior: a population sampler must give each mode
its posterior weight, which one chain per sample cannot (it keeps the mode it starts in)."""

import torch

from invprob import Problem, noise
from invprob.operators import MatrixOperator
from invprob.priors import GaussianMixturePrior
from invprob.registry import get_solver


def test_tempered_smc_gives_well_separated_modes_their_exact_weights():
    means = torch.tensor([[2.0, 0.0], [-2.0, 0.0]], dtype=torch.float64)
    covs = torch.stack([0.3**2 * torch.eye(2), 0.6**2 * torch.eye(2)]).to(torch.float64)
    prior = GaussianMixturePrior(torch.tensor([0.3, 0.7], dtype=torch.float64), means, covs)
    op = MatrixOperator(torch.tensor([[0.0, 1.0]], dtype=torch.float64), (2,))  # sees x₂ only
    problem = Problem(op, torch.tensor([[0.0]], dtype=torch.float64), noise.Gaussian(0.2))
    # y = 0 is likelier under the narrow component (x₂ spread 0.3 vs 0.6): the exact weight of
    # the right-hand mode rises from the prior's 0.3 to ≈ 0.43; the modes stay 4 apart in x₁.
    exact = prior.posterior(problem).weights[0, 0].item()
    assert abs(exact - 0.3) > 0.05
    solver = get_solver("tempered-smc", num_steps=30, num_particles=2000)
    samples = solver.solve(problem, prior, num_samples=2000, generator=0, progress=False).samples[0]
    assert abs((samples[:, 0] > 0).double().mean().item() - exact) < 0.05
    # within the right-hand mode the spread matches the exact posterior component
    post = prior.posterior(problem)
    right = samples[samples[:, 0] > 0]
    torch.testing.assert_close(right.mean(0), post.means[0, 0], atol=0.05, rtol=0)


def test_more_samples_than_particles_is_refused_with_the_fix():
    import pytest

    prior = GaussianMixturePrior(torch.tensor([1.0], dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64),
                                 torch.eye(2, dtype=torch.float64)[None])
    problem = Problem(MatrixOperator(torch.eye(2, dtype=torch.float64), (2,)),
                      torch.zeros(1, 2, dtype=torch.float64), noise.Gaussian(0.1))
    with pytest.raises(ValueError, match="num_particles"):
        get_solver("tempered-smc", num_particles=4).init(problem, prior, num_samples=5, generator=0)
