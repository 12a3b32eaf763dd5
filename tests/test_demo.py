"""Smoke tests of the default runs: they write their figures and metrics (few steps)."""

import json
import subprocess
import sys

import numpy as np


def test_default_run_is_mri_of_a_held_apart_brain_slice_smoke(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "invprob.app.cli", "demo", "solver.num_steps=2", "num_samples=2",
                           "quiet=true", f"hydra.run.dir={tmp_path}/mri"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "mri"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["solver_class"] == "MMPS" and metrics["solver"] == "mmps" and metrics["nfe_per_sample"] == 3
    assert metrics["noise_sigma"] == 0.02 and metrics["tv_lambda"] == 0.008
    # the zero-filled and TV baselines beside the posterior, and how well the std tracks the error
    assert "psnr_mean" in metrics and "psnr_adjoint" in metrics and "ssim_tv" in metrics
    assert metrics["psnr_tv"][0] > metrics["psnr_adjoint"][0] > 20 and len(metrics["std_error_correlation"]) == 1
    assert np.load(run / "samples.npy").shape == (1, 2, 1, 128, 128)
    for name in ("figure.png", "mean.png", "std.png"):
        assert (run / name).stat().st_size > 500
    assert "figure:" in proc.stdout


def test_mnist_gmm_demo_writes_figure_and_metrics_smoke(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "invprob.app.cli", "demo", "mnist-gmm", "--out", str(out), "--num-steps",
                           "50", "--mnist-steps", "5", "--num-samples", "20", "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["nfe_per_sample"] == 50 and metrics["sw2"] > 0
    assert (out / "figure.png").stat().st_size > 1000
    assert "figure:" in proc.stdout
    assert json.loads((out / "mnist_metrics.json").read_text())["nfe_per_sample"] == 25
    assert (out / "mnist_figure.png").stat().st_size > 1000
