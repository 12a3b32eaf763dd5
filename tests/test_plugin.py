"""The example plugin package (``examples/plugin_solver``) installs with pip and its solver is
found by all three entry points: ``invprob list`` / ``invprob solve``, Python's ``get_solver``,
and the solver contract tests (which run over every registered solver). It is installed into a
temporary folder on ``PYTHONPATH`` (the environment itself is left as it was)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "plugin_solver"


def pip(*args):
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The environment of a Python process that has the plugin installed."""
    target = tmp_path_factory.mktemp("site")
    proc = pip("install", "--no-deps", "--no-build-isolation", "--target", str(target), str(PLUGIN))
    assert proc.returncode == 0, proc.stderr
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]))


def cli(*args, cwd, env):
    return subprocess.run([sys.executable, "-m", "invprob.app.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env=env)


def test_the_plugin_solver_is_listed_solved_from_the_cli_and_from_python(installed, tmp_path):
    listing = cli("list", cwd=tmp_path, env=installed)
    assert "tweedie-dc  (plugin)" in listing.stdout
    run = cli("solve", "solver=tweedie-dc", "solver.num_steps=20", "num_samples=2", "quiet=true",
              f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, env=installed)
    assert run.returncode == 0, run.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["nfe_per_sample"] == 20 and metrics["solver"] == "tweedie-dc"
    bad = cli("solve", "solver=tweedie-dc", "solver.nonsense=1", cwd=tmp_path, env=installed)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "dc_steps" in bad.stderr
    code = ("from invprob.registry import get_solver, get_prior; from invprob.evaluation import make_problem;"
            "prior, problem, _ = make_problem('inpainting', seed=1);"
            "r = get_solver('tweedie-dc', num_steps=10).solve(problem, prior, num_samples=3, generator=0, progress=False);"
            "print(tuple(r.samples.shape), r.nfe)")
    python = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=installed)
    assert python.returncode == 0, python.stderr
    assert python.stdout.split()[-1] == "10"


def test_the_plugin_solver_passes_the_solver_contract_tests(installed):
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(ROOT / "tests" / "test_solver_contract.py"), "-k", "tweedie"],
                          capture_output=True, text=True, cwd=ROOT, timeout=900, env=installed)
    assert proc.returncode == 0, proc.stdout[-3000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert "failed" not in summary and "error" not in summary and int(summary.split(" passed")[0].split()[-1]) >= 6
