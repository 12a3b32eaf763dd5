"""The flow-native solvers (FlowChef, PnP-Flow, OT-ODE, D-Flow): every prior's flow path, their
updates against transcriptions of the reference code, and their samples against exact posteriors."""

import pytest
import torch

from conftest import DenseWithoutSVD, small_gmm
from invprob import Problem, noise
from invprob.errors import UnsupportedProblemError
from invprob.evaluation import exact_flow_prior, make_problem, posterior_mean_error, sliced_wasserstein
from invprob.operators import MatrixOperator
from invprob.priors import FlowPrior
from invprob.solvers import DFlow, FlowChef, OTODE, PnPFlow
from invprob.solvers.base import CallCounter


def _problem(sigma_y=0.1, seed=0, M=2):
    prior = small_gmm(d_shape=(1, 2, 2), K=3, seed=seed)
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(3, 4, generator=g, dtype=torch.float64)
    op = MatrixOperator(0.9 * A / torch.linalg.matrix_norm(A, 2), (1, 2, 2))
    return prior, Problem.simulate(op, prior.sample(M, g), noise.Gaussian(sigma_y), generator=g)


def test_flow_denoise_is_the_posterior_mean_on_the_path_for_every_prior():
    prior = small_gmm()
    x_t = torch.randn(3, 1, 2, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    t = 0.3
    # independently: x_t = (1 − t) x0 + t ε is a linear-Gaussian measurement of x0
    op = MatrixOperator((1 - t) * torch.eye(4, dtype=torch.float64), (1, 2, 2))
    exact = prior.posterior(Problem(op, x_t.flatten(1), noise.Gaussian(t))).mean()
    assert torch.allclose(prior.flow_denoise(x_t, t), exact.reshape(x_t.shape), atol=1e-10)
    flow = exact_flow_prior(prior)
    assert flow.velocity_native and not prior.velocity_native
    assert torch.allclose(flow.flow_denoise(x_t, t), exact.reshape(x_t.shape), atol=1e-10)
    # the σ-space view of the velocity network is the same denoiser
    assert torch.allclose(flow.denoise(x_t, 0.5), prior.denoise(x_t, 0.5), atol=1e-10)
    # t = 1 is pure noise: a velocity network answers (the prior mean), a σ-space denoiser (σ = ∞) cannot
    mean = (prior.weights[:, None] * prior.means.flatten(1)).sum(0).reshape(1, 1, 2, 2)
    assert torch.allclose(flow.flow_denoise(x_t, 1.0), mean.expand_as(x_t), atol=1e-12)
    assert torch.allclose(flow.flow_denoise(x_t, 1 - 1e-7), mean.expand_as(x_t), atol=1e-6)
    linear = FlowPrior(lambda x, t: x - 0.25, x_shape=(1, 2, 2), dtype=torch.float64)
    with pytest.raises(ValueError, match=r"`t` must be in \(0, 1\].*1 − 1e-5"):
        prior.flow_denoise(x_t, 1.0)
    with pytest.raises(ValueError, match="`t` must be"):
        linear.flow_denoise(x_t, 1.5)
    with CallCounter(prior, op) as counter:  # one NFE per call, counted by the denoise hooks
        prior.flow_denoise(x_t, t)
    assert counter.nfe == 1


def test_flowchef_step_is_the_official_update():
    """``z_h = z − t v``; ``z ← z − s ∇ mean|A z_h − y|²``; ``z ← z + v dt`` (official lines 124–154)."""
    prior, problem = _problem()
    solver = FlowChef(step_size=0.7, num_steps=10)
    state = solver.init(problem, prior, num_samples=3, generator=2)
    assert torch.allclose(state.x, (1 - 1e-5) * solver.randn(state, step=-1))
    A, y = problem.operator.A, state.measurement
    for i in (0, 4, 9):
        x = state.x + 0.1 * i
        s = state.replace(x=x)
        t, t_next = min(1 - i / 10, 1 - 1e-5), (0.0 if i == 9 else 1 - (i + 1) / 10)
        x0 = prior.flow_denoise(x, t)
        v = (x - x0) / t
        grad = (2 / 3 * (x0.flatten(1) @ A.T - y) @ A).reshape(x.shape)
        expected = x - (0.7 * grad if i < 9 else 0) + (t_next - t) * v  # no guidance at the last step
        out = solver.step(s, i)
        assert torch.allclose(out.x, expected, atol=1e-10) and torch.allclose(out.x0_hat, x0, atol=1e-12)


def test_flowchef_refuses_a_diverging_step_and_names_the_largest_stable_one():
    prior, problem = _problem()  # ‖A‖ = 0.9, m = 3 measured entries
    with pytest.raises(UnsupportedProblemError, match=r"step_size <= 3\.7"):
        FlowChef().init(problem, prior, num_samples=1, generator=0)  # the paper's 500
    FlowChef(step_size=3.6).init(problem, prior, num_samples=1, generator=0)
    FlowChef(reference_size=12288).init(problem, prior, num_samples=1, generator=0)  # the paper's pull per entry
    with pytest.raises(ValueError, match="`step_size`"):
        FlowChef(step_size=-1.0)


def test_pnp_flow_step_is_the_official_iteration():
    """``z = x − lr (1 − t')^α Aᵀ(Ax − y)``; ``x = mean_j D(t' z + (1 − t') ε_j, t')`` with ``t' = 1 − t``."""
    prior, problem = _problem()
    solver = PnPFlow(alpha=0.5, lr=0.8, num_steps=10, num_draws=3)
    state = solver.init(problem, prior, num_samples=2, generator=4)
    state = state.replace(x=torch.randn(state.x.shape, dtype=state.x.dtype, generator=torch.Generator().manual_seed(3)))
    A, y, i = problem.operator.A, state.measurement, 3
    t = 1 - i / 10
    z = state.x - 0.8 * t**0.5 * ((state.x.flatten(1) @ A.T - y) @ A).reshape(state.x.shape)
    draws = [solver.chain_noise(state, i, 3, j) for j in range(3)]
    expected = sum(prior.flow_denoise((1 - t) * z + t * e, t) for e in draws) / 3
    assert torch.allclose(solver.step(state, i).x, expected, atol=1e-10)
    # the first step is at t = 1 − 1e-5 for a σ-space prior: the start point is forgotten
    out = solver.step(solver.init(problem, prior, num_samples=2, generator=4), 0)
    assert torch.isfinite(out.x).all()


@pytest.mark.parametrize("operator", ["svd", "cg"])
def test_ot_ode_step_is_the_reference_update(operator):
    """``u = (x̂ − x)/(1 − τ)``; ``x ← x + δ(u + (1 − τ)/τ γ Jᵀ Aᵀ(r² AAᵀ + σ² I)⁻¹(y − A x̂))``."""
    prior, problem = _problem(sigma_y=0.2)
    A = problem.operator.A
    if operator == "cg":
        problem = Problem(DenseWithoutSVD(A, (1, 2, 2)), problem.measurement, problem.noise)
    solver = OTODE(start_time=0.25, gamma="gamma_t", num_steps=6, cg_iterations=3)  # CG on 3 rows: exact
    state = solver.init(problem, prior, num_samples=2, generator=1)
    init = (problem.measurement @ A).reshape(-1, 1, 2, 2).repeat_interleave(2, 0)
    assert torch.allclose(state.x, 0.25 * init + 0.75 * solver.randn(state, step=-1))
    i = 2
    tau = 0.25 + i * 0.75 / 6
    t, delta = 1 - tau, 0.75 / 6
    out = solver.step(state, i)
    r2 = t**2 / (t**2 + tau**2)
    gamma = (tau / (tau**2 + t**2)) ** 0.5
    for b in range(state.x.shape[0]):
        x = state.x[b : b + 1]
        x0 = prior.flow_denoise(x, t)
        J = torch.autograd.functional.jacobian(lambda u: prior.flow_denoise(u.reshape(1, 1, 2, 2), t).flatten(), x.flatten())
        vec = A.T @ torch.linalg.solve(r2 * A @ A.T + 0.04 * torch.eye(3, dtype=A.dtype), state.measurement[b] - A @ x0.flatten())
        expected = x.flatten() + delta * ((x0 - x).flatten() / t + t / tau * gamma * (J.T @ vec))
        assert torch.allclose(out.x[b].flatten(), expected, atol=1e-9)
    with pytest.raises(ValueError, match="`gamma`"):
        OTODE(gamma="linear")
    with pytest.raises(ValueError, match="`start_time`"):
        OTODE(start_time=1.0)


def test_d_flow_lbfgs_direction_is_the_bfgs_inverse_hessian_and_the_objective_never_rises():
    prior, problem = _problem()
    solver = DFlow(num_steps=3, lbfgs_iterations=4, ode_steps=3, inversion_steps=4)
    state = solver.init(problem, prior, num_samples=3, generator=0)
    losses = [state.loss]
    for i in range(3):
        state = solver.step(state, i)
        losses.append(state.loss)
    assert all(bool((b <= a).all()) for a, b in zip(losses, losses[1:])) and bool((losses[-1] < losses[0]).all())
    assert torch.allclose(state.x, solver.transport(prior, state.z), atol=1e-10)  # the sample is T(z)
    # the two-loop recursion with one pair is the BFGS update of H0 = h I
    B, n = state.z.shape[0], state.z[0].numel()
    g = torch.Generator().manual_seed(0)
    s, y = torch.randn(B, n, generator=g, dtype=torch.float64), torch.randn(B, n, generator=g, dtype=torch.float64)
    y = y + 3 * s  # yᵀs > 0
    rho, h = 1 / (y * s).sum(1), torch.linspace(0.5, 2.0, B, dtype=torch.float64)
    probe = state.replace(history=((s, y, rho),), h_diag=h)
    direction = solver.two_loop(probe).reshape(B, n)
    for b in range(B):
        I = torch.eye(n, dtype=torch.float64)
        V = I - rho[b] * torch.outer(y[b], s[b])
        H = V.T @ (h[b] * I) @ V + rho[b] * torch.outer(s[b], s[b])
        assert torch.allclose(direction[b], -H @ state.grad[b].flatten(), atol=1e-10)


def test_d_flow_checkpointing_changes_memory_not_the_sample_or_the_count():
    prior, problem = _problem()
    runs = [DFlow(num_steps=2, lbfgs_iterations=3, ode_steps=2, inversion_steps=2, gradient_checkpointing=c)
            .solve(problem, prior, num_samples=2, generator=0, progress=False) for c in (True, False)]
    assert torch.allclose(runs[0].samples, runs[1].samples, atol=1e-12)
    assert runs[0].nfe == runs[1].nfe == 2 * 2 + 2 * 2 * (1 + 2 * 3)


@pytest.mark.parametrize("name", ["inpainting", "gaussian_matrix"])
def test_flow_solvers_beat_the_prior_by_half_on_the_gmm_test_bed(name):
    """Through the exact velocity (:class:`FlowPrior` around the exact denoiser), seed 3. PnP-Flow is
    a point estimator (its draws spread far less than the posterior): its mean is what it gets right."""
    prior, problem, _ = make_problem(name, seed=3)
    flow = exact_flow_prior(prior)
    post = prior.posterior(problem)
    g = torch.Generator().manual_seed(0)
    exact, prior_draws = post.sample(200, g)[0], prior.sample(200, g)
    baseline = sliced_wasserstein(prior_draws, exact, generator=torch.Generator().manual_seed(1))
    for solver in (FlowChef(step_size=6.0), OTODE(), DFlow(num_steps=2, lbfgs_iterations=10)):
        samples = solver.solve(problem, flow, num_samples=200, generator=0, progress=False).samples[0]
        sw2 = sliced_wasserstein(samples, exact, generator=torch.Generator().manual_seed(1))
        assert sw2 < 0.5 * baseline, (type(solver).__name__, float(sw2), float(baseline))
    samples = PnPFlow(alpha=0.01).solve(problem, flow, num_samples=200, generator=0, progress=False).samples[0]
    mean = post.mean()[0]
    assert posterior_mean_error(samples, mean) < 0.2 * posterior_mean_error(prior_draws, mean)


def test_d_flow_memory_is_per_row_so_a_sample_does_not_depend_on_its_batch():
    """More iterations than ``history_size``: each row keeps its own last pairs, whatever the rows beside it keep."""
    prior, problem = _problem(M=2)
    solver = DFlow(num_steps=3, lbfgs_iterations=5, ode_steps=2, inversion_steps=2, history_size=3)
    full = solver.solve(problem, prior, num_samples=3, generator=5, progress=False)
    alone = Problem(problem.operator, problem.measurement[1:], problem.noise)
    single = solver.solve(alone, prior, num_samples=1, generator=5, progress=False).samples
    assert torch.allclose(full.samples[1, :1], single[0], atol=1e-10)
    history = full.state.history
    assert 0 < len(history) and all(int(sum((rho != 0).long() for _, _, rho in history)[b]) <= 3 for b in range(6))
