"""The mode census of :mod:`invprob.evaluation.modes` (used by benchmarks/phase_retrieval_gmm.py)
on a density whose modes and masses are known: a mixture of well-separated isotropic Gaussians,
for which the Laplace mass of each mode is exact; the reference sampler and the diagnostics
beside it."""

import math

import torch

from invprob.evaluation import assign_to_modes, mode_census
from conftest import load_benchmark

SHAPE = (1, 2, 2)


def _mixture():
    a = torch.tensor([1.0, 2.0, -1.0, 0.5], dtype=torch.float64).reshape(SHAPE)
    c = torch.tensor([-2.0, 1.0, 2.0, 1.5], dtype=torch.float64).reshape(SHAPE)
    means = torch.stack([a, -a, c])  # a and −a are trivial images of each other: one orbit
    weights = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    scales = torch.tensor([0.1, 0.05, 0.08], dtype=torch.float64)

    def log_post(x):  # unnormalised: 7.0 + log Σ_k w_k N(x; μ_k, s_k² I)
        d = x[0].numel()
        sq = (x[:, None] - means[None]).flatten(2).pow(2).sum(-1)  # (N, K)
        logp = -0.5 * sq / scales**2 - d * scales.log() - 0.5 * d * math.log(2 * math.pi)
        return 7.0 + torch.logsumexp(weights.log() + logp, dim=1)

    return means, log_post


def test_census_recovers_orbits_and_masses():
    means, log_post = _mixture()
    g = torch.Generator().manual_seed(0)
    starts = means[[0, 2]] + 0.02 * torch.randn((2, *SHAPE), generator=g, dtype=torch.float64)
    census = mode_census(log_post, starts)  # −a is found as the trivial image of a
    assert len(census["weights"]) == 2 and census["num_maxima"] == 3
    torch.testing.assert_close(census["weights"], torch.tensor([0.5, 0.5], dtype=torch.float64), atol=1e-6, rtol=0)
    # the log masses include the unnormalised constant: log(0.5 e^7) for both orbits
    torch.testing.assert_close(census["log_mass"], torch.full((2,), 7.0 + math.log(0.5), dtype=torch.float64),
                               atol=1e-6, rtol=0)
    samples = torch.cat([means[1:2] + 0.01, means[2:3] - 0.01])
    which = assign_to_modes(log_post, samples, census["modes"])
    orbit_of_c = int((census["modes"] - means[2]).flatten(1).norm(dim=1).argmin())
    assert which.tolist() == [1 - orbit_of_c, orbit_of_c]


def test_mode_tv_floor_matches_the_exact_binomial_expectation():
    from invprob.evaluation import mode_tv_floor

    # Two orbits of weight 1/2, n = 4 samples: TV = |k/4 − 1/2| with k ~ Bin(4, 1/2),
    # E = (2·1/2·1/16 + 0 + 2·1/4·4/16) = 3/16 (zero frequencies included).
    weights = torch.tensor([0.5, 0.5], dtype=torch.float64)
    assert abs(mode_tv_floor(weights, 4, draws=20000) - 3 / 16) < 0.01
    assert mode_tv_floor(torch.tensor([1.0], dtype=torch.float64), 10) == 0.0


def test_every_daps_sweep_variant_is_a_valid_solver_setting():
    from invprob.registry import get_solver

    VARIANTS = load_benchmark("phase_retrieval_daps_sweep").VARIANTS

    for preset, overrides in VARIANTS.values():
        solver = get_solver(preset, **overrides)
        assert all(getattr(solver, k) == v for k, v in overrides.items())


def test_reference_sampler_reweights_modes_exactly():
    """Tempered SMC + MALA on a posterior with known mode weights: prior ½N((2, 0), 0.2²I) +
    ½N((−2, 0), 0.5²I), likelihood |x₁| = 2 with σ = 0.1. Each branch of the likelihood meets one
    component, so the posterior weights are ∝ N(0; 0, s_k² + 0.1²): 0.695 / 0.305 (not the prior's
    ½ / ½; the cross terms are below e^−190). Laplace would not be needed: the frequencies are."""
    from invprob.evaluation import reference_sampler

    means = torch.tensor([[2.0, 0.0], [-2.0, 0.0]], dtype=torch.float64)
    scales = torch.tensor([0.2, 0.5], dtype=torch.float64)

    def log_prior(x):
        sq = (x[:, None] - means[None]).pow(2).sum(-1)
        return torch.logsumexp(-0.5 * sq / scales**2 - 2 * scales.log(), dim=1)

    def log_lik(x):
        return -0.5 * (x[:, 0].abs() - 2.0).pow(2) / 0.1**2

    g = torch.Generator().manual_seed(0)
    comp = torch.randint(0, 2, (4000,), generator=g)
    init = means[comp] + scales[comp, None] * torch.randn((4000, 2), generator=g, dtype=torch.float64)
    x, stats = reference_sampler(log_prior, log_lik, init, g)
    expected = (0.05**-0.5) / (0.05**-0.5 + 0.26**-0.5)
    assert stats["stages"] > 1 and 0.3 < stats["mean_acceptance"] < 0.9
    assert abs((x[:, 0] > 0).double().mean().item() - expected) < 0.04
    # within a mode the sample matches the exact Gaussian product: x₁ ~ N(2, (1/0.2² + 1/0.1²)⁻¹)
    right = x[x[:, 0] > 0, 0]
    assert abs(right.mean().item() - 2.0) < 0.01
    assert abs(right.std().item() - (1 / 0.2**2 + 1 / 0.1**2) ** -0.5) < 0.01


def test_orbit_plot_pools_the_rest_and_marks_the_truth(tmp_path, monkeypatch):
    import matplotlib.axes

    plot_orbits = load_benchmark("phase_retrieval_gmm").plot_orbits

    report = {"seed": 7, "oversampling": 4.0, "sigma_y": 0.05,
              "census": {"weights": [0.9, 0.1, 0.0], "reference_weights": [0.5, 0.3, 0.2], "truth_orbit": 1},
              "rows": {"prior (no data)": {"orbit_frequencies": [0.0, 0.0, 0.0]},
                       "daps": {"orbit_frequencies": [0.1, 0.2, 0.1]}}}
    bars = []
    original = matplotlib.axes.Axes.bar
    monkeypatch.setattr(matplotlib.axes.Axes, "bar",
                        lambda self, x, h, *a, **k: bars.append((k.get("label"), list(h))) or original(self, x, h, *a, **k))
    plot_orbits(report, str(tmp_path / "orbits.png"), top=2)
    assert (tmp_path / "orbits.png").stat().st_size > 0
    assert [b[0] for b in bars] == ["exact-density reference", "daps"]  # the prior is left out
    assert [round(v, 9) for v in bars[0][1]] == [0.5, 0.3, 0.2] and [round(v, 9) for v in bars[1][1]] == [0.1, 0.2, 0.7]  # unassigned pooled


def test_exact_conditional_daps_uses_the_exact_score_of_p_x0_given_xt():
    """For a Gaussian prior N(μ, Σ), p(x0 | x_t) is Gaussian with precision P = Σ⁻¹ + I/σ² and
    mean P⁻¹(Σ⁻¹μ + x_t/σ²): the diagnostic's prior score must be −P (x0 − mean)."""
    from types import SimpleNamespace

    from invprob.evaluation import ExactConditionalDAPS
    from invprob.priors import GaussianMixture
    from invprob.registry import get_solver

    g = torch.Generator().manual_seed(0)
    d, sigma = 4, 0.3
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    cov, mu = a @ a.T / d + 0.2 * torch.eye(d, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)
    density = GaussianMixture(torch.ones(1, dtype=torch.float64), mu[None], cov[None], (1, 2, 2))
    solver = ExactConditionalDAPS.from_daps(get_solver("daps"), density.log_prob)
    x0, xt = (torch.randn(3, 1, 2, 2, generator=g, dtype=torch.float64) for _ in range(2))
    score = solver.prior_score(SimpleNamespace(x=xt), x0, x0_hat=None, sigma=sigma).flatten(1)
    precision = torch.linalg.inv(cov) + torch.eye(d, dtype=torch.float64) / sigma**2
    mean = torch.linalg.solve(precision, (torch.linalg.inv(cov) @ mu)[:, None] + xt.flatten(1).T / sigma**2).T
    torch.testing.assert_close(score, -(x0.flatten(1) - mean) @ precision.T)
