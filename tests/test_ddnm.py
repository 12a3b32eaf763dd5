"""DDNM+ against a hand replay of one step in explicit matrices, and on a complex-SVD operator."""

import torch

from invprob import Problem, noise
from invprob.evaluation import testbed
from invprob.operators import GaussianBlur
from invprob.registry import get_solver


def test_one_step_matches_the_explicit_range_null_space_update():
    prior, problem, _ = testbed.make_problem("gaussian_matrix", seed=0)
    solver = get_solver("ddnm")
    state = solver.init(problem, prior, num_samples=2, generator=0)
    i = 97  # σ' ≈ 0.047 lies between σ_y / s_i = 0.033 … 0.094: both regimes of Λ and of the noise
    sigma, sigma_next, eta, sy = solver.sigmas[i], solver.sigmas[i + 1], 0.85, 0.05
    state = state.replace(x=prior.sample(2, torch.Generator().manual_seed(1)) + sigma * torch.randn(
        2, 1, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64))
    after = solver.step(state, i)
    U, S, Vh = torch.linalg.svd(problem.operator.A, full_matrices=False)
    x0 = prior.denoise(state.x, torch.full((2,), sigma, dtype=torch.float64)).flatten(1)
    eps = (state.x.flatten(1) - x0) / sigma
    z = solver.randn(state, step=i).flatten(1)
    y = state.measurement
    lam = torch.where(sigma_next >= sy / S, torch.ones_like(S), S * sigma_next * (1 - eta**2) ** 0.5 / sy)
    c = x0 @ Vh.T
    x0_data = x0 - (lam * (c - (y @ U) / S)) @ Vh
    std = torch.where(sigma_next > sy / S, (sigma_next**2 - (sy / S) ** 2).clamp_min(0).sqrt(), eta * sigma_next * torch.ones_like(S))
    P = Vh.T @ Vh  # projection on the range of Aᵀ
    null = (z - z @ P) * eta + (eps - eps @ P) * (1 - eta**2) ** 0.5
    expected = x0_data + (std * (z @ Vh.T)) @ Vh + sigma_next * null
    assert bool((lam < 1).any()) and bool((lam == 1).any())  # both regimes are exercised
    assert torch.allclose(after.x.flatten(1), expected, atol=1e-10)
    assert torch.allclose(after.x0_hat.flatten(1), x0_data, atol=1e-10)


def test_runs_on_an_operator_with_a_complex_fourier_svd():
    prior = testbed.gmm_prior(0)
    op = GaussianBlur(kernel_size=3, std=1.0, padding="circular", x_shape=(1, 8, 8)).to(torch.float64)
    problem = Problem.simulate(op, prior.sample(1, torch.Generator().manual_seed(0)), noise.Gaussian(0.05),
                               generator=torch.Generator().manual_seed(1))
    result = get_solver("ddnm", num_steps=20).solve(problem, prior, num_samples=3, generator=0, progress=False)
    assert result.samples.dtype == torch.float64 and torch.isfinite(result.samples).all()
    residual = (op(result.samples[0]) - problem.measurement).flatten(1).norm(dim=1) / problem.measurement.norm()
    assert residual.max() < 0.5


def test_time_travel_walk_and_step_follow_the_official_code():
    from invprob.solvers import DDNM
    from invprob.solvers.ddnm import schedule_jump

    # RePaint's get_schedule_jump as DDNM's svd_ddnm.py runs it (T_sampling 6, length 2, repeat 2)
    assert schedule_jump(6, 2, 2) == [5, 4, 3, 2, 3, 4, 3, 2, 1, 0, 1, 2, 1, 0, -1]
    assert schedule_jump(4) == [3, 2, 1, 0, -1]
    solver = DDNM(num_steps=6, travel_length=2, travel_repeat=2)
    assert solver.num_steps == 14 and solver.nfe_per_sample == 10
    prior, problem, _ = testbed.make_problem("gaussian_matrix", seed=0)
    state = solver.init(problem, prior, num_samples=3, generator=0)
    for i in range(3):  # 5 -> 4 -> 3 -> 2
        state = solver.step(state, i)
    up = solver.step(state, 3)  # 2 -> 3: x = x̂0 (uncorrected) + σ_3 z, no network call
    sigma_3 = solver.sigmas[6 - 1 - 3]
    assert torch.allclose(up.x, state.x0_raw + sigma_3 * solver.randn(state, step=3))
    assert not torch.allclose(state.x0_raw, state.x0_hat)  # the corrected estimate is not where it restarts
    result = solver.solve(problem, prior, num_samples=3, generator=0, progress=False)
    assert result.nfe == 10 and torch.isfinite(result.samples).all()
