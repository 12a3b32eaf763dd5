"""Smoke test of the default run: it writes its figure and metrics (few steps)."""

import json
import subprocess
import sys


def test_demo_writes_figure_and_metrics_smoke(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "invprob.cli", "demo", "--out", str(out), "--num-steps", "50", "--mnist-steps", "5",
                           "--num-samples", "20", "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["nfe_per_sample"] == 50 and metrics["sw2"] > 0
    assert (out / "figure.png").stat().st_size > 1000
    assert "figure:" in proc.stdout
    assert json.loads((out / "mnist_metrics.json").read_text())["nfe_per_sample"] == 25
    assert (out / "mnist_figure.png").stat().st_size > 1000
