"""Contract tests run over every registered solver preset (later solvers join automatically)."""

import inspect

import pytest
import torch

from conftest import small_gmm, tiny_unet
from invprob import Problem, noise, registry, streams
from invprob.errors import UnsupportedProblemError
from invprob.operators import BlackBox, MatrixOperator
from invprob.solvers import DDNM, DDRM, DiffPIR, LatentSolver, Solver

# Keep the contract run short: solvers with a `num_steps` argument use few steps here.
FAST_STEPS = 30

SOLVER_PRESETS = registry.available()["solvers"]


def build(name, steps=FAST_STEPS, population=64, inner_steps=None):
    """The preset with few steps (and, with ``inner_steps``, few Langevin / prior-ODE steps)."""
    target = registry.load_preset("solvers", name)["_target_"] if name in registry.presets("solvers") else None
    overrides = {}
    if target is not None:
        params = inspect.signature(registry.locate(target)).parameters
        if "num_steps" in params:
            overrides["num_steps"] = steps
        for key in ("ensemble_size", "num_particles"):
            if key in params:
                overrides[key] = population
        for key in ("langevin_steps", "prior_steps"):
            if inner_steps is not None and key in params:
                overrides[key] = inner_steps
        if "lbfgs_iterations" in params:  # D-Flow: each step is this many objective evaluations
            overrides["lbfgs_iterations"] = 1
        if "reference_size" in params and registry.load_preset("solvers", name).get("reference_size") is None:
            # FlowChef's paper step is sized for 3×64² measurements and diverges on these tiny ones
            # (refused at init: tests/test_flow_solvers.py); the same pull per entry runs here
            overrides["reference_size"] = 12288
    return registry.get_solver(name, **overrides)


def as_latent(prior, shape=(1, 2, 2)):
    """``prior`` as the latent prior of a linear autoencoder with a random orthogonal decoder
    from and to ``shape`` (images and latents of the same shape), for the latent solvers."""
    from invprob.evaluation import LinearAutoencoder
    from invprob.priors import LatentPrior

    d = int(torch.tensor(shape).prod())
    W, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(9), dtype=torch.float64))
    return LatentPrior(prior, LinearAutoencoder(W.to(prior.dtype), shape, shape), "plain", 1.0, shape,
                       latent_shape=shape)


def for_solver(solver, prior, shape=(1, 2, 2)):
    """The prior a solver runs on: wrapped as a latent prior for the latent solvers."""
    return as_latent(prior, prior.x_shape or shape) if isinstance(solver, LatentSolver) else prior


def linear_problem(M=2, seed=0, solver=None):
    prior = small_gmm(d_shape=(1, 2, 2), K=3, seed=seed)
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(3, 4, generator=g, dtype=torch.float64)
    op = MatrixOperator(0.9 * A / torch.linalg.matrix_norm(A, 2), (1, 2, 2))  # ‖A‖ = 0.9
    x = prior.sample(M, g)
    return for_solver(solver, prior), Problem.simulate(op, x, noise.Gaussian(0.1), generator=g)


def test_there_are_solvers():
    assert "dps" in SOLVER_PRESETS


@pytest.mark.parametrize("name", SOLVER_PRESETS)
def test_shapes_finiteness_and_accounting(name):
    solver = build(name)
    assert isinstance(solver, Solver)
    prior, problem = linear_problem(M=2, solver=solver)
    result = solver.solve(problem, prior, num_samples=3, generator=0, progress=False)
    assert result.samples.shape == (2, 3, 1, 2, 2)
    assert result.state.x.grad_fn is None  # no autograd graph leaks out of a step
    assert torch.isfinite(result.samples).all()
    assert result.nfe == solver.nfe_per_sample
    # forward-operator calls; DiffPIR, DDNM and DDRM reach the operator only through its prox or SVD (none)
    assert result.operator_calls >= 1 or isinstance(solver, (DiffPIR, DDNM, DDRM))
    assert result.seconds > 0
    # samples of the same measurement differ (it is a sampler, not an optimiser); an optimiser's
    # (D-Flow's) random starts differ, its optima may coincide where the objective has one minimiser
    drawn = solver.init(problem, prior, num_samples=3, generator=0).x if solver.optimiser else result.samples[0]
    assert (drawn[0] - drawn[1]).abs().max() > 1e-6


@pytest.mark.parametrize("name", SOLVER_PRESETS)
def test_same_seed_same_sample_whatever_the_batch(name):
    solver = build(name)
    prior, problem = linear_problem(M=2, solver=solver)
    full = solver.solve(problem, prior, num_samples=3, generator=5, progress=False).samples
    alone = Problem(problem.operator, problem.measurement[1:], problem.noise)
    single = solver.solve(alone, prior, num_samples=2, generator=5, progress=False).samples
    assert torch.allclose(full[1, :2], single[0], atol=1e-10)
    again = solver.solve(problem, prior, num_samples=1, generator=5, progress=False).samples
    assert torch.allclose(full[:, :1], again, atol=1e-10)
    other = solver.solve(problem, prior, num_samples=1, generator=6, progress=False).samples
    assert not torch.allclose(again, other)


@pytest.mark.parametrize("name", SOLVER_PRESETS)
def test_step_is_pure(name):
    solver = build(name)
    prior, problem = linear_problem(M=1, solver=solver)
    state = solver.init(problem, prior, num_samples=2, generator=3)
    a = solver.step(state, 0)
    b = solver.step(state, 0)
    assert torch.equal(a.x, b.x)
    assert not torch.equal(a.x, state.x)


@pytest.mark.parametrize("name", SOLVER_PRESETS)
def test_refuses_mismatched_prior_and_operator_at_init(name):
    solver = build(name)
    prior, problem = linear_problem(solver=solver)
    other_prior = small_gmm(d_shape=(1, 3, 3), K=2)
    with pytest.raises(UnsupportedProblemError, match="prior"):
        solver.init(problem, other_prior, num_samples=1, generator=0)


@pytest.mark.parametrize("name", SOLVER_PRESETS)
def test_gradient_solvers_refuse_black_boxes_at_init(name):
    solver = build(name)
    if "differentiable" not in solver.requires and "linear" not in solver.requires:
        pytest.skip("derivative-free solver")
    prior, problem = linear_problem(solver=solver)
    A = problem.operator.A
    box = BlackBox(lambda x: x.flatten(1) @ A.T, output_shape=(3,), x_shape=(1, 2, 2))
    boxed = Problem(box, problem.measurement, problem.noise)
    with pytest.raises(UnsupportedProblemError, match="black box|linear"):
        solver.init(boxed, prior, num_samples=1, generator=0)


@pytest.mark.parametrize("name", SOLVER_PRESETS)
def test_num_samples_validated(name):
    solver = build(name)
    prior, problem = linear_problem(solver=solver)
    with pytest.raises(ValueError, match="num_samples"):
        solver.init(problem, prior, num_samples=0, generator=0)


def test_mcg_refuses_operators_without_pinv():
    from invprob.operators import PhaseRetrieval

    prior = small_gmm(d_shape=(1, 4, 4), K=2)
    op = PhaseRetrieval((1, 4, 4))
    problem = Problem.simulate(op, prior.sample(1, torch.Generator().manual_seed(0)).float(), noise.Gaussian(0.1))
    with pytest.raises(UnsupportedProblemError, match="linear"):
        registry.get_solver("mcg").init(problem, prior.float(), num_samples=1, generator=0)


def test_enkg_runs_on_a_black_box_without_any_autograd_graph():
    prior, problem = linear_problem(M=2)
    A = problem.operator.A.numpy()
    seen = []

    def simulator(x):  # numpy code: no autograd possible
        seen.append(torch.is_grad_enabled())
        return x.reshape(x.shape[0], -1) @ A.T

    box = BlackBox(simulator, output_shape=(3,), x_shape=(1, 2, 2), numpy=True)
    boxed = Problem(box, problem.measurement, problem.noise)

    class WatchedPrior(type(prior)):
        def _denoise(self, x, sigma):
            seen.append(torch.is_grad_enabled() or x.requires_grad)
            return super()._denoise(x, sigma)

    watched = WatchedPrior(prior.weights, prior.means.reshape(-1, 1, 2, 2), prior.covs)
    solver = registry.get_solver("enkg", num_steps=20, ensemble_size=64)
    result = solver.solve(boxed, watched, num_samples=4, generator=0, progress=False)
    assert result.samples.shape == (2, 4, 1, 2, 2) and torch.isfinite(result.samples).all()
    assert seen and not any(seen)  # neither the simulator nor the network ever saw autograd
    assert result.samples.grad_fn is None
    # the ensemble update pulls the particles towards the data
    free = registry.get_solver("enkg", num_steps=20, ensemble_size=64, guidance_scale=0.0)
    unguided = free.solve(boxed, watched, num_samples=4, generator=0, progress=False).samples
    def misfit(s):
        return (problem.operator(s.reshape(-1, 1, 2, 2)) - problem.measurement.repeat_interleave(4, 0)).norm()
    assert misfit(result.samples) < misfit(unguided)


def test_daps_refuses_an_unstable_langevin_step_at_init():
    prior, problem = linear_problem()
    big = MatrixOperator(3 * problem.operator.A, (1, 2, 2))
    with pytest.raises(UnsupportedProblemError, match="unstable"):
        registry.get_solver("daps").init(Problem(big, problem.measurement, problem.noise), prior, 1, 0)


def test_daps_warns_at_the_edge_of_stability_where_its_paper_settings_sit():
    prior, problem = linear_problem()
    A = problem.operator.A
    edge = MatrixOperator(A / torch.linalg.matrix_norm(A, ord=2) * 1.02**0.5, (1, 2, 2))  # lr·‖A‖²/τ² = 1.02
    with pytest.warns(RuntimeWarning, match="edge of stability"):
        registry.get_solver("daps").init(Problem(edge, problem.measurement, problem.noise), prior, 1, 0)


def test_daps_hmc_stability_limit_is_one_plus_momentum():
    """Damped HMC on the top singular direction is a heavy-ball recursion, stable while
    lr·‖A‖²/τ² < 1 + m: at 1.5 Langevin refuses and HMC (m = 0.73) runs without a warning;
    at 1.9 HMC refuses too."""
    import warnings

    prior, problem = linear_problem()
    A = problem.operator.A
    for ratio, hmc_ok in ((1.5, True), (1.9, False)):
        op = MatrixOperator(A / torch.linalg.matrix_norm(A, ord=2) * ratio**0.5, (1, 2, 2))  # lr·‖A‖²/τ² = ratio
        scaled = Problem(op, problem.measurement, problem.noise)
        with pytest.raises(UnsupportedProblemError, match="Langevin step is unstable"):
            registry.get_solver("daps").init(scaled, prior, 1, 0)
        hmc = registry.get_solver("daps", mc_algo="hmc", momentum=0.73)
        if hmc_ok:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                hmc.init(scaled, prior, 1, 0)
        else:
            with pytest.raises(UnsupportedProblemError, match=r"HMC step is unstable.*> 1.73"):
                hmc.init(scaled, prior, 1, 0)


def test_daps_hmc_step_is_the_official_damped_hmc_recursion():
    """One annealing level (σ_max → 0, so the level's output is the chain's end), replayed by hand
    with the solver's own noise draw: v0 ~ N(0, I); v ← m v + h ∇log p + sqrt(2(1 − m)) ε;
    x0 ← x0 + h v, h = sqrt(lr) (zhangbingliang2019/DAPS cores/mcmc.py, MCMCSampler.mc_update)."""
    prior, problem = linear_problem()
    solver = registry.get_solver("daps", mc_algo="hmc", momentum=0.6, num_steps=1, langevin_steps=7, lr=3e-3,
                                 tau=0.2, sigma_max=2.0)
    state = solver.init(problem, prior, num_samples=3, generator=5)
    out = solver.step(state, 0)
    A, y = problem.operator.A, state.measurement.flatten(1)
    sigma, h, m = 2.0, 3e-3**0.5, 0.6
    # the level's noise as one per-sample draw of (7 + 1) images (the solver takes it slice by slice)
    noise = streams.randn(state.seeds, 0, (8, *state.x.shape[1:]), stream=1, dtype=state.x.dtype).flatten(2)
    x0_hat = out.x0_hat.flatten(1)
    x, v = x0_hat.clone(), noise[:, -1]
    for j in range(7):
        score = -2 * (x @ A.T - y) @ A / 0.2**2 + (x0_hat - x) / sigma**2
        v = m * v + h * score + (2 * (1 - m)) ** 0.5 * noise[:, j]
        x = x + h * v
    assert torch.allclose(out.x.flatten(1), x, atol=1e-10)
    # Langevin: x0 ← x0 + lr ∇log p + sqrt(2 lr) ε_j, ε_j slice j of the level's one draw of 7 images
    langevin = registry.get_solver("daps", num_steps=1, langevin_steps=7, lr=3e-3, tau=0.2, sigma_max=2.0)
    out = langevin.step(langevin.init(problem, prior, num_samples=3, generator=5), 0)
    noise = streams.randn(state.seeds, 0, (7, *state.x.shape[1:]), stream=1, dtype=state.x.dtype).flatten(2)
    x0_hat = out.x0_hat.flatten(1)
    x = x0_hat.clone()
    for j in range(7):
        score = -2 * (x @ A.T - y) @ A / 0.2**2 + (x0_hat - x) / sigma**2
        x = x + 3e-3 * score + (2 * 3e-3) ** 0.5 * noise[:, j]
    assert torch.allclose(out.x.flatten(1), x, atol=1e-10)
    with pytest.raises(ValueError, match="`mc_algo`"):
        registry.get_solver("daps", mc_algo="mh")
    with pytest.raises(ValueError, match="`momentum`"):
        registry.get_solver("daps", mc_algo="hmc", momentum=1.0)


@pytest.fixture(scope="module")
def network_prior(tmp_path_factory):
    """A float32 network prior loaded as a user would: a diffusers directory (VP, ε-prediction)."""
    from diffusers import DDPMScheduler

    from invprob.priors import from_diffusers

    folder = tmp_path_factory.mktemp("ddpm")
    tiny_unet().save_pretrained(folder / "unet")
    DDPMScheduler(num_train_timesteps=1000).save_pretrained(folder / "scheduler")
    return from_diffusers(folder)


@pytest.mark.parametrize("name", SOLVER_PRESETS)
def test_every_solver_runs_a_float32_network_prior(name, network_prior):
    from invprob.operators import Inpainting

    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    problem = Problem.simulate(Inpainting((1, 8, 8), kind="random", missing=0.5, seed=0), x, noise.Gaussian(0.05),
                               generator=torch.Generator().manual_seed(1))
    assert network_prior.dtype == torch.float32
    solver = build(name, steps=3, population=8, inner_steps=3)  # a network call costs ms, not µs
    result = solver.solve(problem, for_solver(solver, network_prior, (1, 8, 8)), num_samples=2, generator=0, progress=False)
    assert result.samples.shape == (2, 2, 1, 8, 8) and result.samples.dtype == torch.float32
    assert torch.isfinite(result.samples).all() and result.nfe == solver.nfe_per_sample
