"""The grid sweep parses its grid, refuses shared tune/report seeds and picks the best setting it scored."""

import json
import math

import pytest

from conftest import load_benchmark

sweep = load_benchmark("posterior_gmm_sweep")


def test_grid_values_are_parsed_to_their_types():
    grid = sweep.parse_grid(["lr=4.2e-6,1e-5", "num_steps=50,100", "grad_clamp=1.0,none", "mc_algo=hmc"])
    assert grid == {"lr": [4.2e-6, 1e-5], "num_steps": [50, 100], "grad_clamp": [1.0, None], "mc_algo": ["hmc"]}
    assert type(grid["num_steps"][0]) is int
    with pytest.raises(SystemExit, match="KEY=V1,V2"):
        sweep.parse_grid(["lr"])


def test_shared_seeds_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        sweep.main(["--preset", "latent-daps", "--grid", "num_steps=5", "--tune-seeds", "1", "--report-seeds", "1",
                    "--json", str(tmp_path / "out.json")])
    assert "must not share a seed" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


def test_the_chosen_setting_is_the_best_on_the_tuning_seeds(tmp_path):
    out = tmp_path / "sweep.json"
    sweep.main(["--latent", "--preset", "latent-daps", "--grid", "num_steps=3,6", "ode_steps=1", "--tune-seeds", "1",
                "--report-seeds", "2", "--num-samples", "40", "--json", str(out)])
    report = json.loads(out.read_text())
    best = min(report["grid"], key=lambda row: row["geometric_mean_ratio"])
    assert report["report"]["chosen"]["overrides"] == best["overrides"]
    assert report["report"]["preset"]["overrides"] == {}
    for row in report["grid"]:
        ratios = [cell["ratio"] for cell in row["cells"].values()]
        assert len(ratios) == 2 and math.isclose(row["geometric_mean_ratio"], math.sqrt(ratios[0] * ratios[1]))
    assert "| chosen: num_steps=" in out.with_suffix(".md").read_text()


def fake_run(ratio_of_lr):
    """A stand-in for posterior_gmm.run: each setting's SW2/floor from its lr (None: refused)."""
    def run(seed, num_samples, solvers, **kwargs):
        (preset, overrides), = solvers.values()
        ratio = ratio_of_lr(overrides.get("lr"), seed)
        row = {"refused": "unstable step"} if ratio is None else {"ratio": ratio, "coverage90": 0.9}
        return {"problems": {name: {"solvers": {"row": row}} for name in ("inpainting", "gaussian_matrix")}}
    return run


def test_refused_and_diverged_settings_are_never_chosen(tmp_path, monkeypatch):
    # lr 1: refused on seed 2; lr 2: NaN on seed 1; lr 3: finite everywhere, though worse where the others are finite
    table = {1: {1: 1.0, 2: None}, 2: {1: float("nan"), 2: 1.0}, 3: {1: 4.0, 2: 4.0}}
    monkeypatch.setattr(sweep, "run", fake_run(lambda lr, seed: table[lr].get(seed, 5.0) if lr else 6.0))
    out = tmp_path / "sweep.json"
    sweep.main(["--preset", "daps", "--grid", "lr=1,2,3", "--tune-seeds", "1", "2", "--report-seeds", "7",
                "--json", str(out)])
    report = json.loads(out.read_text())
    assert report["report"]["chosen"]["overrides"] == {"lr": 3}
    assert [math.isfinite(row["geometric_mean_ratio"]) for row in report["grid"]] == [False, False, True]
    assert {key.split(", seed ")[1] for row in report["grid"] for key in row["cells"]} == {"1", "2"}
    assert {key.split(", seed ")[1] for row in report["report"].values() for key in row["cells"]} == {"7"}
    md = out.with_suffix(".md").read_text()
    assert "refused or diverged" in md and "| chosen: lr=3 |" in md


def test_a_grid_refused_everywhere_chooses_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "run", fake_run(lambda lr, seed: None))
    out = tmp_path / "sweep.json"
    with pytest.raises(SystemExit, match="nothing to choose"):
        sweep.main(["--preset", "daps", "--grid", "lr=1,2", "--tune-seeds", "1", "--report-seeds", "7",
                    "--json", str(out)])
    assert not out.exists()


@pytest.mark.parametrize("preset, grid, named", [("nosuch", "lr=1", "unknown solver preset"),
                                                 ("latent-daps", "foo=1", "has no argument"),
                                                 ("latent-daps", "num_steps=0", "num_steps")])
def test_bad_presets_and_grids_are_refused_before_any_solve(tmp_path, capsys, preset, grid, named):
    with pytest.raises(SystemExit):
        sweep.main(["--preset", preset, "--grid", grid, "--tune-seeds", "1", "--report-seeds", "2",
                    "--json", str(tmp_path / "out.json")])
    err = capsys.readouterr().err
    assert "--preset" in err and named in err and "Traceback" not in err
    assert not (tmp_path / "out.json").exists()
