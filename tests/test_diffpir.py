"""DiffPIR against its official schedule and a hand replay of one step."""

import torch

from invprob.evaluation import testbed
from invprob.registry import get_solver
from invprob.solvers.diffpir import quad_timesteps


def test_quad_schedule_matches_the_official_scripts():
    # main_ddpir_*.py, skip_type='quad': seq = sqrt(linspace(0, 1000², N)), seq[-1] -= 1, t = 999 − seq
    assert quad_timesteps(1000, 100)[:5] == [999, 899, 857, 825, 798]
    assert quad_timesteps(1000, 100)[-3:] == [10, 5, 0]
    assert quad_timesteps(1000, 20)[:4] == [999, 770, 675, 602] and quad_timesteps(1000, 20)[-3:] == [54, 26, 0]


def test_one_step_is_denoise_prox_and_zeta_renoising():
    prior, problem, _ = testbed.make_problem("inpainting", seed=0)
    solver = get_solver("diffpir", num_steps=10)
    state = solver.init(problem, prior, num_samples=3, generator=0)
    i = 2
    state = state.replace(x=prior.sample(3, torch.Generator().manual_seed(1)) + solver.sigmas[i] * torch.randn(
        3, 1, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64))
    after = solver.step(state, i)
    sigma, sigma_next = solver.sigmas[i], solver.sigmas[i + 1]
    x0 = prior.denoise(state.x, torch.full((3,), sigma, dtype=torch.float64))  # data_range None: no clamp
    rho = 7.0 * (0.05 / 2) ** 2 / sigma**2
    A = problem.operator.A
    y = state.measurement
    # argmin ‖y − A u‖² + ρ ‖u − x0‖², in closed form
    u = torch.linalg.solve(A.T @ A + rho * torch.eye(64, dtype=A.dtype), (A.T @ y.T + rho * x0.flatten(1).T)).T
    z = solver.randn(state, step=i)
    expected = u.reshape(3, 1, 8, 8) + sigma_next * (0.7**0.5 * (state.x - u.reshape(3, 1, 8, 8)) / sigma + 0.3**0.5 * z)
    assert torch.allclose(after.x, expected, atol=1e-10)
    assert torch.allclose(after.x0_hat, u.reshape(3, 1, 8, 8), atol=1e-10)


def test_last_step_returns_the_iterate_not_the_denoised_image():
    prior, problem, _ = testbed.make_problem("inpainting", seed=0)
    solver = get_solver("diffpir", num_steps=5)
    result = solver.solve(problem, prior, num_samples=2, generator=0, progress=False)
    assert result.nfe == 5
    assert torch.equal(result.samples[0], result.state.x)
    assert not torch.equal(result.state.x, result.state.x0_hat)
