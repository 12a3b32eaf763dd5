"""DDRM against a direct transcription of the official update rules (``efficient_generalized_steps``
of bahjat-kawar/ddrm, in σ-space) on identical inputs and noise draws: a dense 3×4 operator
whose SVD leaves a null space, coordinates on both sides of the σ_y / s_i threshold."""

from __future__ import annotations

import pytest
import torch

from conftest import small_gmm
from invprob import Problem, noise
from invprob.errors import UnsupportedProblemError
from invprob.operators import MatrixOperator
from invprob.solvers import DDRM


class FixedNoise(DDRM):
    """DDRM whose noise draws are given (``draws[step]``), so a reference can use the same."""

    draws: dict[int, torch.Tensor] = {}

    def randn(self, state, step, stream=0):
        return self.draws[step]


def reference(problem, prior, solver, draws):
    A = problem.operator.A
    U, S, Vh = torch.linalg.svd(A, full_matrices=True)
    y, sigma_y, eta, eta_b = problem.measurement[0], problem.noise.sigma, solver.eta, solver.eta_b
    sig = solver.sigmas
    uty = U.T @ y
    zc = Vh @ draws[-1].flatten()
    init = sig[0] * zc
    for j in range(len(S)):
        if S[j] * sig[0] > sigma_y:
            init[j] = uty[j] / S[j] + (sig[0] ** 2 - sigma_y**2 / S[j] ** 2).sqrt() * zc[j]
    x = Vh.T @ init
    for i in range(solver.num_steps):
        sigma, sigma_n = sig[i], sig[i + 1]
        x0 = prior.denoise(x.reshape(1, 1, 2, 2), torch.tensor([sigma], dtype=x.dtype)).flatten()
        c, ce, cz = Vh @ x0, Vh @ ((x - x0) / sigma), Vh @ draws[i].flatten()
        new = c + sigma_n * (1 - eta**2) ** 0.5 * ce + eta * sigma_n * cz
        for j in range(len(S)):
            if S[j] * sigma_n < sigma_y:
                new[j] = c[j] + sigma_n * (1 - eta**2) ** 0.5 * (uty[j] - S[j] * c[j]) / sigma_y + eta * sigma_n * cz[j]
            elif S[j] * sigma_n > sigma_y:
                new[j] = (eta_b * uty[j] / S[j] + (1 - eta_b) * c[j]
                          + (sigma_n**2 - sigma_y**2 / S[j] ** 2 * eta_b**2).sqrt() * cz[j])
        x = Vh.T @ new
    return x0


@pytest.mark.parametrize("eta, eta_b", [(0.85, 1.0), (0.5, 0.7)])
def test_ddrm_equals_the_official_update_rules_on_identical_inputs(eta, eta_b):
    prior = small_gmm(d_shape=(1, 2, 2), K=3, seed=2)
    g = torch.Generator().manual_seed(2)
    A = torch.randn(3, 4, generator=g, dtype=torch.float64) * torch.tensor([[3.0], [1.0], [0.05]], dtype=torch.float64)
    problem = Problem.simulate(MatrixOperator(A, (1, 2, 2)), prior.sample(1, g), noise.Gaussian(0.3), generator=g)
    solver = FixedNoise(eta=eta, eta_b=eta_b, num_steps=8)
    solver.draws = {k: torch.randn(1, 1, 2, 2, generator=g, dtype=torch.float64) for k in range(-1, 8)}
    ours = solver.solve(problem, prior, num_samples=1, generator=0, progress=False).samples[0, 0].flatten()
    assert torch.allclose(ours, reference(problem, prior, solver, solver.draws), atol=1e-10)


def test_ddrm_refuses_operators_without_an_svd_and_non_gaussian_noise():
    prior = small_gmm(d_shape=(1, 2, 2), K=2)
    from invprob.operators import BlackBox

    op = BlackBox(lambda x: x.flatten(1)[:, :2], (2,), x_shape=(1, 2, 2))
    problem = Problem(op, torch.zeros(1, 2, dtype=torch.float64), noise.Gaussian(0.1))
    with pytest.raises(UnsupportedProblemError):
        DDRM().init(problem, prior, num_samples=1)
