"""Bad input gets a clear error naming the argument."""

import pytest
import torch

from conftest import small_gmm
from invprob import Problem, noise
from invprob.errors import UnsupportedProblemError
from invprob.operators import Identity, MatrixOperator
from invprob.registry import get_solver


def op():
    return MatrixOperator(torch.randn(3, 4, dtype=torch.float64), (1, 2, 2))


def test_measurement_shape_mismatch():
    with pytest.raises(ValueError, match="`measurement` has shape"):
        Problem(op(), torch.zeros(2, 4, dtype=torch.float64), noise.Gaussian(0.1))
    with pytest.raises(ValueError, match="`measurement` has shape"):
        Problem(op(), torch.zeros(3, dtype=torch.float64), noise.Gaussian(0.1))


def test_nan_in_measurement():
    y = torch.zeros(1, 3, dtype=torch.float64)
    y[0, 1] = float("nan")
    with pytest.raises(ValueError, match="`measurement` contains 1 NaN"):
        Problem(op(), y, noise.Gaussian(0.1))


def test_nonpositive_noise_and_sigma():
    with pytest.raises(ValueError, match="sigma"):
        noise.Gaussian(0.0)
    with pytest.raises(ValueError, match="sigma"):
        noise.Gaussian(-0.05)
    with pytest.raises(ValueError, match="rate"):
        noise.Poisson(0)
    prior = small_gmm()
    with pytest.raises(ValueError, match="`sigma` must be > 0"):
        prior.denoise(torch.zeros(1, 1, 2, 2, dtype=torch.float64), torch.tensor([-1.0]))
    with pytest.raises(ValueError, match=r"`sigma` has shape \(3,\)"):
        prior.denoise(torch.zeros(2, 1, 2, 2, dtype=torch.float64), torch.ones(3))


def test_wrong_device():
    y = torch.zeros(1, 3, dtype=torch.float64, device="meta")
    with pytest.raises(ValueError, match="`measurement` is on meta"):
        Problem(op(), y, noise.Gaussian(0.1))


def test_prior_on_other_device_refused_at_init():
    prior = small_gmm().to("meta")
    problem = Problem(op(), torch.zeros(1, 3, dtype=torch.float64), noise.Gaussian(0.1))
    with pytest.raises(UnsupportedProblemError, match="prior is on meta"):
        get_solver("dps").init(problem, prior, num_samples=1, generator=0)


@pytest.mark.parametrize("solver", ["dps", "enkg"])
def test_prior_and_measurement_in_different_precisions_refused_at_init(solver):
    """A float64 prior with a float32 problem used to crash mid-run (EnKG's covariance matmul)."""
    op32 = MatrixOperator(torch.randn(3, 4), (1, 2, 2))
    problem = Problem(op32, torch.zeros(1, 3), noise.Gaussian(0.1))
    with pytest.raises(UnsupportedProblemError, match=r"measurement is torch.float32 .* prior computes in "
                                                      r"torch.float64; .*prior.to\(dtype\)"):
        get_solver(solver).init(problem, small_gmm(), num_samples=1, generator=0)


def test_precision_mismatch_with_a_declared_dtype_prior_names_the_fix_that_works():
    """A parameter-free network's declared dtype does not follow prior.to(dtype): the error
    must not advise it."""
    from invprob.priors import EDMPrior

    prior = EDMPrior(lambda x, sigma: x / (1 + sigma.view(-1, 1, 1, 1) ** 2), x_shape=(1, 2, 2),
                     dtype=torch.float32)
    problem = Problem(MatrixOperator(torch.randn(3, 4, dtype=torch.float64), (1, 2, 2)),
                      torch.zeros(1, 3, dtype=torch.float64), noise.Gaussian(0.1))
    with pytest.raises(UnsupportedProblemError, match=r"to torch.float32 with .to\(dtype\) \(this prior's dtype is "
                                                      r"declared: prior.to\(dtype\) does not change it\)"):
        get_solver("dps").init(problem, prior, num_samples=1, generator=0)


def test_wrong_types():
    with pytest.raises(TypeError, match="`operator`"):
        Problem(lambda x: x, torch.zeros(1, 3), noise.Gaussian(0.1))
    with pytest.raises(TypeError, match="`noise`"):
        Problem(op(), torch.zeros(1, 3, dtype=torch.float64), 0.1)
    with pytest.raises(TypeError, match="`measurement`"):
        Problem(op(), [[0.0, 0.0, 0.0]], noise.Gaussian(0.1))
    with pytest.raises(TypeError, match="`generator`"):
        get_solver("dps").init(Problem(op(), torch.zeros(1, 3, dtype=torch.float64), noise.Gaussian(0.1)),
                               small_gmm(), num_samples=1, generator="seed")


def test_operator_input_checks():
    A = op()
    with pytest.raises(ValueError, match="`x` has shape"):
        A(torch.zeros(2, 1, 3, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="complex"):
        Identity((1, 2, 2))(torch.zeros(1, 1, 2, 2, dtype=torch.complex64))
    with pytest.raises(ValueError, match="x_shape"):
        MatrixOperator(torch.zeros(3, 5), (1, 2, 2))


@pytest.mark.parametrize("name,kwargs,match", [
    ("dps", {"scale": -1.0}, "scale"),
    ("daps", {"lr": 0.0}, "lr"),
    ("daps", {"tau": -0.1}, "tau"),
    ("reddiff", {"lr": -0.1}, "lr"),
    ("enkg", {"guidance_scale": -2.0}, "guidance_scale"),
    ("enkg", {"ensemble_size": 1}, "ensemble_size"),
    ("tempered-smc", {"step_size": 0.0}, "step_size"),
    ("tempered-smc", {"num_particles": 1}, "num_particles"),
    ("tempered-smc", {"ess_fraction": 1.5}, "ess_fraction"),
])
def test_bad_solver_arguments_are_named(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        get_solver(name, **kwargs)


def test_a_diverging_run_stops_with_the_step_and_the_knob_instead_of_returning_nan():
    # DAPS on phase retrieval with a Langevin step 10^4x the paper's: no ‖A‖ to refuse it at init
    # (nonlinear), so the run must stop when the iterate blows up, naming `lr`.
    from invprob.operators import PhaseRetrieval

    prior = small_gmm(d_shape=(1, 4, 4), K=2)
    problem = Problem.simulate(PhaseRetrieval((1, 4, 4)).to(torch.float64), prior.sample(1, torch.Generator().manual_seed(0)),
                               noise.Gaussian(0.05))
    solver = get_solver("daps-phase-retrieval", num_steps=10, langevin_steps=20, lr=1.0)
    with pytest.raises(FloatingPointError, match=r"DAPS diverged at step \d+ of 10.*`lr`=1\.0"):
        solver.solve(problem, prior, num_samples=2, generator=0, progress=False)
