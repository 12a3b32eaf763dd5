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
