"""``invprob.calibrate``: the solvers' declarations, the PIT and its coverage, the search, the
choice on a problem whose right answer is known, the preset it writes, resume and the CLI."""

from __future__ import annotations

import inspect
import json
import math

import pytest
import torch

import invprob
from invprob import calibration, registry
from invprob.calibration import Candidate, pit, search
from invprob.errors import InputError
from invprob.evaluation import make_problem
from invprob.solvers import Solver, State, Tunable


class SpreadSolver(Solver):
    """Exact samples of a Gaussian-mixture posterior, pulled towards (``spread`` < 1) or pushed away
    from (``spread`` > 1) the posterior mean: calibrated at ``spread = 1`` only."""

    tunables = {"spread": Tunable(factor=8.0)}

    def __init__(self, spread: float = 1.0) -> None:
        self.spread, self.num_steps = float(spread), 1

    def start(self, context):
        return context.new_state(State, context.zeros(), 0.0)

    def step(self, state, i):
        post = state.prior.posterior(state.problem)
        k = state.num_samples
        exact = post.sample(k, torch.Generator().manual_seed(int(state.seeds[0])))  # (M, K, *x_shape)
        mean = post.mean()[:, None]
        x = (mean + self.spread * (exact - mean)).flatten(0, 1).to(state.x.dtype)
        return state.replace(x=x, x0_hat=x)


@pytest.fixture
def spread_preset(monkeypatch, tmp_path):
    """A user preset ``spread`` (in a user preset folder of its own) building :class:`SpreadSolver`."""
    monkeypatch.setenv("INVPROB_CONFIG", str(tmp_path / "config"))
    (tmp_path / "config" / "solvers").mkdir(parents=True)
    (tmp_path / "config" / "solvers" / "spread.yaml").write_text(
        f"_target_: {__name__}.SpreadSolver\nspread: 2.0\n")
    return "spread"


def _solver_classes():
    return sorted({cls for cls in vars(invprob.solvers).values()
                   if isinstance(cls, type) and issubclass(cls, Solver) and cls.tunables}, key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", _solver_classes(), ids=lambda c: c.__name__)
def test_every_tunable_is_a_constructor_argument(cls):  # the attribute: test_the_preset_value_is_the_centre_of_each_range
    params = inspect.signature(cls.__init__).parameters
    for name in cls.tunables:
        assert name in params, f"{cls.__name__} declares {name!r}, which its constructor does not take"


@pytest.mark.parametrize("name", [n for n in registry.presets("solvers")
                                  if registry.locate(registry.load_preset("solvers", n)["_target_"]).tunables])
def test_the_preset_value_is_the_centre_of_each_range(name):
    solver = registry.get_solver(name)
    for key, tunable in type(solver).tunables.items():
        value = getattr(solver, key)
        if value is None:  # e.g. DAPS's tau derived from σ_y: not searched
            continue
        low, high = tunable.range(value)
        assert low <= value <= high
        if tunable.scale == "log":
            assert math.isclose(math.sqrt(low * high), value, rel_tol=1e-9)
        elif low > tunable.bounds[0] and high < tunable.bounds[1]:
            assert math.isclose((low + high) / 2, value)


def test_pit_is_uniform_for_exchangeable_samples_and_not_for_narrow_ones():
    g = torch.Generator().manual_seed(0)
    truth, samples = torch.randn(400, 1, 4, 4, generator=g), torch.randn(400, 9, 1, 4, 4, generator=g)
    coverage, ks, histogram = calibration._uniformity(pit(samples, truth, generator=g))
    assert abs(coverage - 0.9) < 0.015 and ks < 0.03 and max(abs(h - 0.1) for h in histogram) < 0.015
    coverage, ks, _ = calibration._uniformity(pit(0.5 * samples, truth, projections=32, generator=g))
    assert coverage < 0.8 and ks > 0.1


def test_search_finds_the_optimum_of_a_known_criterion_within_its_budget():
    calls = []

    def evaluate(params):
        calls.append(params)
        return Candidate(params=params, psnr=-(math.log10(params["a"]) - 0.7) ** 2)

    tunable = Tunable(factor=100.0)
    best, order = search([("a", tunable, 0.01, 100.0, 1.0)], evaluate, lambda c: (0.0, c.psnr), budget=12)
    assert len(calls) == len(order) <= 12
    assert abs(math.log10(best["a"]) - 0.7) < 0.05


def test_calibration_chooses_the_exact_spread_and_psnr_alone_does_not(spread_preset, tmp_path):
    prior, problem, _ = make_problem("inpainting", seed=3)
    common = dict(num_pairs=32, num_samples=16, seed=5, progress=False)
    calibrated = invprob.calibrate(spread_preset, problem.operator, problem.noise, prior, criterion="combined", **common)
    assert 0.75 < calibrated.best["spread"] < 1.35, calibrated.best
    assert abs(calibrated.chosen.coverage - 0.9) <= 0.05
    sharp = invprob.calibrate(spread_preset, problem.operator, problem.noise, prior, criterion="psnr", **common)
    assert sharp.best["spread"] < 0.6  # the mean of K samples gains from shrinking them: why coverage matters

    path = calibrated.write_preset(tag="inpainting")
    assert path.parent == registry.user_config_dir() / "solvers"
    assert path.stem in registry.available()["solvers"]
    built = registry.get_solver(path.stem)
    assert isinstance(built, SpreadSolver) and built.spread == calibrated.best["spread"]
    record = registry.load_preset("solvers", path.stem)["_calibration"]
    assert record["num_pairs"] == 32 and record["criterion"] == "combined" and record["trace"]
    with pytest.raises(InputError, match="tag"):
        calibrated.write_preset(tag="../escape")


def test_a_rerun_resumes_from_the_trace_without_solving_again(spread_preset, tmp_path, monkeypatch):
    prior, problem, _ = make_problem("inpainting", seed=3)
    kwargs = dict(num_pairs=8, num_samples=8, budget=6, progress=False, trace=tmp_path / "trace.json")
    first = invprob.calibrate(spread_preset, problem.operator, problem.noise, prior, **kwargs)
    assert len(json.loads((tmp_path / "trace.json").read_text())["candidates"]) == 6
    solves = []
    real = calibration._evaluate
    monkeypatch.setattr(calibration, "_evaluate", lambda *a, **k: solves.append(1) or real(*a, **k))
    again = invprob.calibrate(spread_preset, problem.operator, problem.noise, prior, **kwargs)
    assert not solves and again.best == first.best
    invprob.calibrate(spread_preset, problem.operator, problem.noise, prior, **{**kwargs, "num_samples": 4})
    assert len(solves) == 6  # other settings: the trace is not reused


def test_bad_settings_are_one_clear_error(spread_preset):
    prior, problem, _ = make_problem("inpainting", seed=3)
    args = (problem.operator, problem.noise, prior)
    with pytest.raises(InputError, match="criterion"):
        invprob.calibrate(spread_preset, *args, criterion="sharpness")
    with pytest.raises(InputError, match="num_samples"):
        invprob.calibrate(spread_preset, *args, num_samples=1)
    with pytest.raises(InputError, match="budget"):
        invprob.calibrate(spread_preset, *args, budget=0)
    with pytest.raises(InputError, match="declares"):
        invprob.calibrate(spread_preset, *args, tunables=["scale"])
    with pytest.raises(InputError, match="no tunable"):
        invprob.calibrate("mmps", *args)
    with pytest.raises(InputError, match="tau"):
        invprob.calibrate("daps-sigma-y", *args, tunables=["lr", "tau"])
    from invprob.errors import UnsupportedProblemError
    from invprob.operators import BlackBox

    black_box = BlackBox(lambda x: x.flatten(1)[:, :8], output_shape=(8,), x_shape=(1, 8, 8)).to(torch.float64)
    with pytest.raises(UnsupportedProblemError, match="black box"):
        invprob.calibrate("dps", black_box, problem.noise, prior, num_pairs=2, num_samples=2)
    with pytest.raises(ValueError, match="exceeds `ensemble_size`"):
        invprob.calibrate("enkg", *args, overrides={"ensemble_size": 4}, num_samples=8)


def test_image_crops_from_a_folder(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.fromarray((torch.rand(20, 24) * 255).to(torch.uint8).numpy()).save(tmp_path / f"{i}.png")
    crops = calibration.image_crops(tmp_path, (1, 8, 8), 5, seed=1)
    assert crops.shape == (5, 1, 8, 8) and crops.min() >= -1 and crops.max() <= 1
    with pytest.raises(InputError, match="crop"):
        calibration.image_crops(tmp_path, (1, 32, 32), 2)


def test_cli_writes_a_preset_that_solve_uses(tmp_path, monkeypatch, capsys):
    from invprob.app.cli import main

    monkeypatch.setenv("INVPROB_CONFIG", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    code = main(["calibrate", "solver=reddiff", "tunables=[grad_term_weight]", "budget=3", "num_pairs=4",
                 "num_samples=4", "quiet=true", "tag=mine", "hydra.run.dir=cal"])
    assert code == 0
    summary = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    assert summary["name"] == "reddiff-calibrated-mine" and summary["solves"] == 3
    assert (tmp_path / "cal" / "calibration.png").is_file()
    assert main(["solve", "solver=reddiff-calibrated-mine", "num_samples=2", "quiet=true", "hydra.run.dir=solve"]) == 0
    metrics = json.loads((tmp_path / "solve" / "metrics.json").read_text())
    assert metrics["solver"] == "reddiff-calibrated-mine"
    capsys.readouterr()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "calibration.json").write_text("{}")  # an earlier calibration in that folder
    assert main(["calibrate", "solver=reddiff", "criterion=sharpness", "quiet=true", "hydra.run.dir=bad"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "criterion" in err[0]
    assert not (tmp_path / "bad" / "calibration.json").exists()


def test_a_latent_prior_is_calibrated_on_decoded_images():
    from invprob.evaluation import latent_problem

    bed = latent_problem("inpainting", seed=2)
    cal = invprob.calibrate("stsl", bed.problem.operator, bed.problem.noise, bed.prior, overrides={"num_steps": 10},
                            tunables=["omega"], budget=2, num_pairs=3, num_samples=2, progress=False)
    assert len(cal.candidates) == 2 and all(c.error is None and math.isfinite(c.psnr) for c in cal.candidates)


def test_combined_prefers_the_band_then_penalises_coverage_outside_it():
    from invprob.calibration import score

    inside = Candidate(params={}, psnr=20.0, coverage=0.87)
    sharper = Candidate(params={}, psnr=21.0, coverage=0.80)
    assert score(inside) > score(sharper)  # in the band beats any PSNR outside it
    # none in the band: a diverged setting whose wide spread happens to cover the truth better
    # loses to an accurate one that is too narrow
    diverged = Candidate(params={}, psnr=-30.0, coverage=0.58)
    narrow = Candidate(params={}, psnr=28.0, coverage=0.52)
    assert score(narrow) > score(diverged)
    assert score(Candidate(params={}, psnr=28.0, coverage=0.70)) > score(narrow)
    assert score(Candidate(params={}, error="diverged")) < score(diverged)


def test_a_preset_refused_at_its_own_step_is_calibrated_to_a_stable_one():
    # DAPS's paper lr is unstable for this Gaussian matrix (refused at init); smaller ones are not
    prior, problem, _ = make_problem("gaussian_matrix", seed=20)
    cal = invprob.calibrate("daps", problem.operator, problem.noise, prior, tunables=["lr"], budget=3, grid=3,
                            num_pairs=2, num_samples=2, overrides={"num_steps": 3, "langevin_steps": 3}, progress=False)
    assert cal.candidates[0].error and "unstable" in cal.candidates[0].error
    assert cal.chosen.error is None and cal.best["lr"] < cal.start["lr"]
