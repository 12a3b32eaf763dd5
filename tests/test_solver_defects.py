"""Solver defects found on reading the code (issue #18), each with a test that failed before
its fix: EnKG with one particle, DPS's NFE under activation checkpointing, MCG's operator calls
and its ill-conditioned pseudo-inverse, DPS under Poisson noise."""

from __future__ import annotations

import pytest
import torch

from conftest import small_gmm
from invprob import Problem, noise
from invprob.errors import UnsupportedProblemError
from invprob.evaluation import make_problem
from invprob.operators import GaussianBlur, Inpainting
from invprob.registry import get_solver
from invprob.solvers import DPS


def test_enkg_refuses_a_single_particle_instead_of_returning_prior_samples():
    prior, problem, _ = make_problem("inpainting", seed=1)
    solver = get_solver("enkg", ensemble_size=None, num_steps=4)
    with pytest.raises(UnsupportedProblemError, match="at least 2 particles"):
        solver.init(problem, prior, num_samples=1, generator=0)
    assert solver.solve(problem, prior, num_samples=2, generator=0, progress=False).samples.shape[1] == 2


def test_dps_gradient_checkpointing_refuses_a_network_without_checkpointable_blocks():
    prior, problem, _ = make_problem("inpainting", seed=1)  # a GMM: one whole-network checkpoint would not help
    with pytest.raises(UnsupportedProblemError, match="gradient_checkpointing=false"):
        DPS(num_steps=6, gradient_checkpointing=True).solve(problem, prior, num_samples=2, generator=0, progress=False)
    assert DPS(num_steps=6).solve(problem, prior, num_samples=2, generator=0, progress=False).nfe == 6


def test_block_checkpointing_switches_deepinv_blocks_and_puts_them_back():
    from invprob.priors import block_checkpointing, has_block_checkpointing
    from invprob.priors.adm import adm_prior, build_adm

    torch.manual_seed(0)
    prior = adm_prior(build_adm("ffhq"), 32)
    blocks = [m for m in prior.modules() if hasattr(m, "use_checkpoint")]
    assert blocks and has_block_checkpointing(prior) and not any(m.use_checkpoint for m in blocks)
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    (plain,) = torch.autograd.grad(prior.denoise(x, 0.5).square().sum(), x)
    with block_checkpointing(prior):
        assert all(m.use_checkpoint for m in blocks)
        (saved,) = torch.autograd.grad(prior.denoise(x, 0.5).square().sum(), x)
    assert not any(m.use_checkpoint for m in blocks)
    assert torch.allclose(plain, saved, atol=1e-5)


def test_mcg_makes_three_operator_calls_per_step_and_two_on_the_last():
    prior, problem, _ = make_problem("inpainting", seed=1)
    result = get_solver("mcg", num_steps=5).solve(problem, prior, num_samples=2, generator=0, progress=False)
    assert result.operator_calls == 3 * 5 - 1


def test_mcg_refuses_a_pseudo_inverse_that_would_amplify_the_noise_a_millionfold():
    prior = small_gmm(d_shape=(1, 16, 16), K=2).to(torch.float32)
    g = torch.Generator().manual_seed(0)
    x = prior.sample(1, g)
    blur = GaussianBlur(kernel_size=15, std=3.0, padding="circular", x_shape=(1, 16, 16)).to(torch.float32)
    with pytest.raises(UnsupportedProblemError, match=r"condition number .*'dps'"):
        get_solver("mcg").init(Problem.simulate(blur, x, noise.Gaussian(0.05), generator=g), prior, num_samples=1)
    mask = Inpainting((1, 16, 16), kind="random", missing=0.5, seed=0).to(torch.float32)
    get_solver("mcg", num_steps=3).init(Problem.simulate(mask, x, noise.Gaussian(0.05), generator=g), prior, 1)


def test_dps_under_poisson_noise_divides_the_residual_norm_by_the_measurement_as_the_official_code():
    prior = small_gmm(d_shape=(1, 4, 4), K=2)
    g = torch.Generator().manual_seed(0)
    x = prior.sample(2, g).clamp(-1, 1)
    operator = Inpainting((1, 4, 4), kind="random", missing=0.25, seed=0).to(torch.float64)
    problem = Problem.simulate(operator, x, noise.Poisson(rate=1.0), generator=g)
    solver = DPS(num_steps=3)
    state = solver.step(solver.init(problem, prior, num_samples=1, generator=0), 0)
    residual = (problem.measurement - operator(state.x0_hat)).flatten(1)
    expected = residual.norm(dim=1) * problem.measurement.flatten(1).abs().reciprocal().mean(1)
    assert torch.allclose(state.residual_norm, expected)


def test_ddim_respacing_covers_the_whole_schedule_and_matches_the_official_grid_for_divisors():
    from invprob.sampling import ddim_timesteps

    assert ddim_timesteps(1000, 50).tolist() == list(range(0, 1000, 20))  # RED-Diff's get_timesteps
    six_hundred = ddim_timesteps(1000, 600)
    assert len(six_hundred) == 600 and six_hundred[-1] == 998 and len(set(six_hundred.tolist())) == 600
    solver = get_solver("reddiff", num_steps=600)
    assert solver.abar[0] < 1e-4  # starts at the noisiest end (t = 998), not at t = 599
