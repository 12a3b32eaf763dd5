"""The command line, driven as a subprocess on tiny settings (GMM test-bed prior, few steps)."""

import json
import subprocess
import sys

import numpy as np

FAST = ["solver.num_steps=20", "quiet=true", "dtype=float64", "num_samples=3"]


def invprob(args, cwd):
    return subprocess.run([sys.executable, "-m", "invprob.app.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def write_truths(folder, seed: int, count: int = 3):
    """``count`` random 1×8×8 images in [-1, 1] as PNGs in ``folder`` (one measurement each)."""
    import torch

    from invprob.io import save_image

    folder.mkdir()
    g = torch.Generator().manual_seed(seed)
    for i in range(count):
        save_image(torch.rand(1, 8, 8, generator=g) * 2 - 1, folder / f"{i}.png")


def test_solve_writes_the_promised_files(tmp_path):
    proc = invprob(["solve", *FAST, "hydra.run.dir=run"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "run"
    assert np.load(run / "samples.npy").shape == (1, 3, 1, 8, 8)
    assert np.load(run / "mean.npy").shape == (1, 1, 8, 8) and np.load(run / "std.npy").shape == (1, 1, 8, 8)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["nfe_per_sample"] == 20 and metrics["seconds"] > 0 and "rmse_mean" in metrics
    assert (run / "figure.png").stat().st_size > 1000


def test_multirun_writes_each_cell_and_skips_finished_ones(tmp_path):
    args = ["solve", "-m", *FAST, "seed=0,1", "hydra.sweep.dir=sweep"]
    first = invprob(args, tmp_path)
    assert first.returncode == 0, first.stderr
    cells = sorted(p.parent.name for p in (tmp_path / "sweep").glob("*/metrics.json"))
    assert len(cells) == 2 and any("seed=0" in c for c in cells) and any("seed=1" in c for c in cells)
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "sweep").glob("*/metrics.json")}
    again = invprob(args, tmp_path)
    assert again.returncode == 0, again.stderr
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # nothing recomputed
    assert "skipping" in (again.stdout + again.stderr) or all((p.parent / "solve.log").read_text().count("skipping") for p in stamps)


def test_bad_inputs_give_one_line_and_nonzero_exit(tmp_path):
    missing = invprob(["solve", *FAST, "input=nope.npy", "hydra.run.dir=run1"], tmp_path)
    assert missing.returncode == 2 and "input not found" in missing.stderr and "Traceback" not in missing.stderr
    np.save(tmp_path / "wrong.npy", np.zeros((1, 1, 5, 5)))
    wrong = invprob(["solve", *FAST, "input=wrong.npy", "hydra.run.dir=run2"], tmp_path)
    assert wrong.returncode == 2 and "prior models (1, 8, 8)" in wrong.stderr
    import os

    env = dict(os.environ, INVPROB_CACHE=str(tmp_path / "cache"))
    weights = subprocess.run([sys.executable, "-m", "invprob.app.cli", "solve", *FAST, "prior=ffhq-adm",
                              "hydra.run.dir=run3"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert weights.returncode == 2 and "missing file ffhq_10m.pt" in weights.stderr
    assert "Traceback" not in weights.stderr and len(weights.stderr.strip().splitlines()) == 1
    unknown = invprob(["solve", *FAST, "solver=dpss"], tmp_path)
    assert unknown.returncode != 0 and "dps" in unknown.stderr  # Hydra lists the available options


def test_tv_lambda_adds_a_tv_reconstruction_and_is_refused_where_tv_cannot_run(tmp_path):
    proc = invprob(["solve", *FAST, "tv_lambda=0.01", "hydra.run.dir=run"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["tv_lambda"] == 0.01 and len(metrics["rmse_tv"]) == 1 and 0 < metrics["rmse_tv"][0] < 2
    assert len(metrics["std_error_correlation"]) == 1 and -1 <= metrics["std_error_correlation"][0] <= 1
    nonlinear = invprob(["solve", *FAST, "tv_lambda=0.01", "operator=phase-retrieval", "operator.x_shape=[1,8,8]",
                         "hydra.run.dir=run"], tmp_path)  # into the folder of the finished run: refused, it stays
    assert nonlinear.returncode == 2 and "not linear: drop tv_lambda" in nonlinear.stderr
    assert len(nonlinear.stderr.strip().splitlines()) == 1
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["rmse_tv"] == metrics["rmse_tv"]
    negative = invprob(["solve", *FAST, "tv_lambda=-1", "hydra.run.dir=run3"], tmp_path)
    assert negative.returncode == 2 and "`tv_lambda` must be a finite number > 0" in negative.stderr


def test_list_shows_every_group_weights_and_plugins(tmp_path):
    import os

    (tmp_path / "myplugin.py").write_text("from invprob.solvers import DPS\nclass MySolver(DPS):\n    pass\n")
    dist = tmp_path / "myplugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myplugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[invprob.solvers]\nmy-solver = myplugin:MySolver\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "invprob.app.cli", "list"], cwd=tmp_path, capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "solvers:" in proc.stdout and "  daps" in proc.stdout and "  my-solver" in proc.stdout
    assert "mnist  (weights present)" in proc.stdout


MRI8 = ["operator=mri-4x", "operator.mask.shape=[8,8]", "operator.mask.center_fraction=0.25"]


def _kspace_file(tmp_path, name, with_maps=True, keys=("kspace",)):
    """A 3-coil k-space of an 8×8 test-bed image through MultiCoilMRI, saved as .h5."""
    import h5py
    import torch

    from invprob.operators import MultiCoilMRI, mri_mask

    g = torch.Generator().manual_seed(0)
    maps = torch.randn(3, 8, 8, dtype=torch.complex64, generator=g) + 2
    maps = maps / maps.abs().pow(2).sum(0, keepdim=True).sqrt()
    mask = mri_mask((8, 8), acceleration=2, center_fraction=0.25)
    op = MultiCoilMRI(mask, maps, image_mode="magnitude")
    k = op(torch.rand(1, 1, 8, 8, generator=g) * 2 - 1)[0]
    with h5py.File(tmp_path / name, "w") as f:
        for key in keys:
            f[key] = k.numpy()
        if with_maps:
            f["coil_maps"] = maps.numpy()
        f["mask"] = mask.numpy()
    return k, maps


def test_solve_reads_multicoil_kspace_h5_with_or_without_coil_maps(tmp_path):
    import torch

    k, maps = _kspace_file(tmp_path, "k.h5")
    proc = invprob(["solve", *FAST, *MRI8, "measurement=k.h5", "hydra.run.dir=run"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "run"
    assert np.load(run / "samples.npy").shape == (1, 3, 1, 8, 8)
    assert (run / "mean.png").is_file() and (run / "std.png").is_file()
    metrics = json.loads((run / "metrics.json").read_text())
    assert "psnr_mean" not in metrics and metrics["operator_class"] == "MultiCoilMRI" and metrics["operator"] == "mri-4x"
    assert np.isfinite(metrics["data_consistency_rel_residual_of_mean"][0])
    # the loader builds the multi-coil operator from the file's maps and mask
    from invprob.operators import MRI, MultiCoilMRI
    from invprob.operators.readers import load_measurement

    y, op = load_measurement(tmp_path / "k.h5", MRI(torch.ones(8, 8)), 1.0)
    assert isinstance(op, MultiCoilMRI) and y.shape == (1, 3, 8, 8) and torch.equal(op.coil_maps[0], maps)
    _kspace_file(tmp_path, "nomaps.h5", with_maps=False)
    y, op = load_measurement(tmp_path / "nomaps.h5", MRI(torch.ones(8, 8)), 1.0)  # maps estimated from ACS
    assert isinstance(op, MultiCoilMRI) and op.coil_maps.shape == (1, 3, 8, 8)


def test_bad_kspace_files_give_one_line(tmp_path):
    _kspace_file(tmp_path, "bad.h5", keys=("ksp",))
    proc = invprob(["solve", *FAST, *MRI8, "measurement=bad.h5", "hydra.run.dir=run"], tmp_path)
    assert proc.returncode == 2 and "expected `kspace`" in proc.stderr and "ksp" in proc.stderr
    assert "Traceback" not in proc.stderr
    real = tmp_path / "real.npz"
    np.savez(real, kspace=np.zeros((3, 8, 8), np.float32))
    proc = invprob(["solve", *FAST, *MRI8, "measurement=real.npz", "hydra.run.dir=run2"], tmp_path)
    assert proc.returncode == 2 and "must be complex" in proc.stderr


def test_multirun_through_submitit_local_launcher_and_slurm_preset(tmp_path):
    args = ["solve", "-m", *FAST, "seed=0,1", "hydra.sweep.dir=sweep", "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=5"]
    proc = invprob(args, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "sweep").glob("*/metrics.json"))) == 2
    cfg = invprob(["solve", "hydra/launcher=slurm", "--cfg", "hydra", "--package", "hydra.launcher"], tmp_path)
    assert cfg.returncode == 0, cfg.stderr
    assert "SlurmLauncher" in cfg.stdout and "cpus_per_task: 4" in cfg.stdout


def test_folder_input_and_batch_size_give_the_same_samples(tmp_path):
    write_truths(tmp_path / "truths", seed=0)
    whole = invprob(["solve", *FAST, "input=truths", "hydra.run.dir=whole"], tmp_path)
    assert whole.returncode == 0, whole.stderr
    parts = invprob(["solve", *FAST, "input=truths", "batch_size=2", "hydra.run.dir=parts"], tmp_path)
    assert parts.returncode == 0, parts.stderr
    a, b = np.load(tmp_path / "whole" / "samples.npy"), np.load(tmp_path / "parts" / "samples.npy")
    assert a.shape == (3, 3, 1, 8, 8) and np.allclose(a, b, atol=1e-12)


def test_torchrun_two_gloo_ranks_give_the_single_process_samples(tmp_path):
    write_truths(tmp_path / "truths", seed=1)
    single = invprob(["solve", *FAST, "input=truths", "hydra.run.dir=single"], tmp_path)
    assert single.returncode == 0, single.stderr
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                "-m", "invprob.app.cli", "solve"]
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    sharded = subprocess.run(torchrun + [*FAST, "input=truths", "hydra.run.dir=sharded"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=600, env=env)
    assert sharded.returncode == 0, sharded.stderr
    a, b = np.load(tmp_path / "single" / "samples.npy"), np.load(tmp_path / "sharded" / "samples.npy")
    assert a.shape == (3, 3, 1, 8, 8) and np.allclose(a, b, atol=1e-12)  # as batch_size: rounding only
    metrics = json.loads((tmp_path / "sharded" / "metrics.json").read_text())
    assert metrics["ranks"] == 2 and metrics["nfe_per_sample"] == json.loads(
        (tmp_path / "single" / "metrics.json").read_text())["nfe_per_sample"]
    unnamed = subprocess.run(torchrun + [*FAST, "input=truths"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=600, env=env)
    assert unnamed.returncode != 0 and "hydra.run.dir" in unnamed.stderr


def test_a_submitit_job_of_two_tasks_shards_the_solve_like_torchrun(tmp_path):
    # the Slurm preset's path (srun starts one task per rank), run by submitit's local executor
    write_truths(tmp_path / "truths", seed=2)
    single = invprob(["solve", *FAST, "input=truths", "hydra.run.dir=single"], tmp_path)
    assert single.returncode == 0, single.stderr
    proc = invprob(["solve", "-m", *FAST, "input=truths", "hydra.sweep.dir=sweep", "hydra/launcher=submitit_local",
                    "hydra.launcher.timeout_min=5", "hydra.launcher.tasks_per_node=2"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    (metrics,) = (tmp_path / "sweep").glob("*/metrics.json")
    assert json.loads(metrics.read_text())["ranks"] == 2
    a, b = np.load(tmp_path / "single" / "samples.npy"), np.load(metrics.parent / "samples.npy")
    assert np.allclose(a, b, atol=1e-12)


def test_flow_solvers_run_from_the_cli_and_a_diverging_step_is_refused_in_one_line(tmp_path):
    ok = invprob(["solve", *FAST, "solver=ot-ode", "hydra.run.dir=run"], tmp_path)  # the GMM prior, σ-space
    assert ok.returncode == 0, ok.stderr
    assert np.load(tmp_path / "run" / "samples.npy").shape == (1, 3, 1, 8, 8)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["nfe_per_sample"] == 20
    bad = invprob(["solve", *FAST, "solver=flowchef", "hydra.run.dir=run2"], tmp_path)  # the paper's 500
    assert bad.returncode == 2 and "step_size <=" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "run2" / "samples.npy").exists()
