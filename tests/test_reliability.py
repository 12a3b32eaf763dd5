"""Reliability of the command line and the API on a user's bad or unusual input: multi-coil
k-space end to end, re-runs that never return stale results, one-line errors, confined paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from invprob.errors import CheckpointError

FAST = ["solver.num_steps=5", "quiet=true", "dtype=float64", "num_samples=2"]
EXAMPLES = Path(__file__).resolve().parents[1] / "invprob" / "examples_data"


def invprob(args, cwd, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "invprob.app.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


# -- multi-coil k-space, end to end -----------------------------------------------------------
def _brain_multicoil_file(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """A 4-coil k-space of the shipped brain slice (smooth complex coil maps, 4× line mask)."""
    import h5py

    from invprob.operators import MultiCoilMRI, mri_mask

    truth = torch.from_numpy(np.load(EXAMPLES / "brain_slice36_128.npy")).float()
    H = W = 128
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, H), torch.linspace(-1, 1, W), indexing="ij")
    centres = [(-0.8, -0.8), (-0.8, 0.8), (0.8, -0.8), (0.8, 0.8)]
    maps = torch.stack([torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 1.5) * torch.exp(1j * torch.pi * (cy * yy + cx * xx) / 2)
                        for cy, cx in centres]).to(torch.complex64)
    maps = maps / maps.abs().pow(2).sum(0, keepdim=True).sqrt()
    mask = mri_mask((H, W), acceleration=4, center_fraction=0.08, seed=0)
    kspace = MultiCoilMRI(mask, maps, image_mode="magnitude")(truth)[0]
    with h5py.File(path, "w") as f:
        f["kspace"] = kspace.numpy()
        f["coil_maps"] = maps.numpy()
        f["mask"] = mask.numpy()
    return truth, kspace


def test_multicoil_kspace_keeps_complex_coil_maps_and_reconstructs_the_truth(tmp_path):
    from invprob.evaluation.metrics import psnr
    from invprob.operators import MultiCoilMRI
    from invprob.operators.readers import load_measurement
    from invprob.registry import get_operator

    truth, _ = _brain_multicoil_file(tmp_path / "scan.h5")
    # the application's path: the preset moved to the run's dtype, the file's operator likewise
    preset = get_operator("mri-4x-brain128").to(dtype=torch.float32)
    y, operator = load_measurement(tmp_path / "scan.h5", preset)
    operator = operator.to(device="cpu", dtype=torch.float32)
    assert isinstance(operator, MultiCoilMRI) and operator.coil_maps.dtype == torch.complex64
    with torch.no_grad():
        residual = (operator(truth) - y).abs().norm() / y.abs().norm()
        adjoint = operator.adjoint(y).clamp(-1, 1)
    assert residual < 1e-5
    assert psnr(adjoint, truth).item() > 20.0  # the zero-filled image of a 4× scan
    proc = invprob(["solve", "prior=brain-mri", "operator=mri-4x-brain128", "solver=daps", "solver.num_steps=2",
                    "solver.ode_steps=1", "solver.langevin_steps=2", "num_samples=1", "quiet=true",
                    "measurement=scan.h5", "hydra.run.dir=run"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "imaginary part" not in proc.stderr  # no complex-to-real cast anywhere
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["operator_class"] == "MultiCoilMRI" and metrics["prior"] == "brain-mri"
    assert np.isfinite(metrics["data_consistency_rel_residual_of_mean"][0])


# -- re-runs ------------------------------------------------------------------------------------
def test_rerun_with_other_settings_recomputes_and_records_them(tmp_path):
    first = invprob(["solve", *FAST, "seed=0", "hydra.run.dir=run"], tmp_path)
    assert first.returncode == 0, first.stderr
    a = np.load(tmp_path / "run" / "samples.npy")
    same = invprob(["solve", *FAST, "seed=0", "hydra.run.dir=run"], tmp_path)
    assert same.returncode == 0 and "skipping" in same.stdout
    other = invprob(["solve", *FAST, "seed=1", "hydra.run.dir=run"], tmp_path)
    assert other.returncode == 0, other.stderr
    assert "skipping" not in other.stdout
    b = np.load(tmp_path / "run" / "samples.npy")
    assert not np.allclose(a, b)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["seed"] == 1 and metrics["config"]["seed"] == 1
    refused = invprob(["solve", *FAST, "seed=2", "on_mismatch=refuse", "hydra.run.dir=run"], tmp_path)
    assert refused.returncode == 2 and "other settings" in refused.stderr and "seed" in refused.stderr
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["seed"] == 1  # left as it was


def test_metrics_record_presets_seed_noise_and_sweeps_get_their_own_folder(tmp_path):
    proc = invprob(["solve", *FAST, "seed=3", "noise_sigma=0.1", "hydra.run.dir=run"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (metrics["solver"], metrics["operator"], metrics["prior"]) == ("dps-gmm-tuned", "gmm-inpainting", "gmm-testbed")
    assert metrics["seed"] == 3 and metrics["noise_sigma"] == 0.1 and metrics["solver_class"] == "DPS"
    cfg = invprob(["solve", "--cfg", "hydra", "--package", "hydra.sweep"], tmp_path)
    assert cfg.returncode == 0 and "dir: multirun/" in cfg.stdout and "multirun/sweep" not in cfg.stdout


# -- one line for every bad input ---------------------------------------------------------------
def _bad_files(folder: Path) -> None:
    np.save(folder / "nan.npy", np.full((1, 32), np.nan))
    np.save(folder / "wrong_shape.npy", np.zeros((1, 5)))
    np.save(folder / "complex.npy", np.zeros((1, 32), np.complex64))
    np.save(folder / "uint8.npy", np.full((1, 8, 8), 200, np.uint8))
    np.save(folder / "unit.npy", np.random.default_rng(0).random((1, 1, 32, 32)))  # [0, 1] data
    (folder / "empty.npy").write_bytes(b"")
    (folder / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    (folder / "empty.png").write_bytes(b"")
    (folder / "corrupt.h5").write_bytes(b"not hdf5")
    (folder / "afile").write_text("a file, not a folder")
    (folder / "empty_images").mkdir()
    np.save(folder / "two_images.npy", np.zeros((2, 16, 16), np.uint8))
    (folder / "weights").mkdir()
    (folder / "weights" / "config.json").write_text((Path(__file__).resolve().parents[1] / "invprob" / "weights" /
                                                     "mnist" / "config.json").read_text())
    (folder / "weights" / "model.safetensors").write_bytes(b"truncated")


BAD_CLI = [  # (arguments, a fragment the one line must contain)
    (["measurement=nan.npy"], "NaN"),
    (["measurement=wrong_shape.npy"], "shape"),
    (["measurement=complex.npy"], "complex"),
    (["measurement=empty.npy"], "empty.npy"),
    (["measurement=corrupt.npy"], "corrupt.npy"),
    (["measurement=corrupt.h5"], "corrupt.h5"),
    (["measurement=missing.npy"], "not found"),
    (["input=corrupt.png"], "corrupt.png"),
    (["input=empty.png"], "empty.png"),
    (["input=empty.npy"], "empty.npy"),
    (["input=uint8.npy", "prior=mnist", "operator=inpainting-random", "operator.x_shape=[1,32,32]"], "input_range"),
    (["input=unit.npy", "prior=mnist", "operator=inpainting-random", "operator.x_shape=[1,32,32]"], "input_range"),
    (["input=empty_images"], "no images"),
    (["solver=nope"], "nope"),
    (["-m", "solver=dps,nope"], "nope"),
    (["input=x.npy", "measurement=y.npy"], "not both"),
    (["noise_sigma=-1"], "noise_sigma"),
    (["noise_sigma=0"], "noise_sigma"),
    (["noise_sigma=inf"], "noise_sigma"),
    (["num_samples=0"], "num_samples"),
    (["num_samples=abc"], "num_samples"),
    (["batch_size=0"], "batch_size"),
    (["seed=-1"], "seed"),
    (["dtype=float16"], "dtype"),
    (["device=cuda"] if not torch.cuda.is_available() else ["device=cuda:99"], "device"),
    (["device=tpu"], "device"),
    (["solver.num_steps=2.5"], "num_steps"),
    (["+solver.nonsense=1"], "nonsense"),
    (["hydra.run.dir=afile/run"], "output folder"),
    (["prior=mnist", "+prior.folder=weights", "operator=inpainting-random", "operator.x_shape=[1,32,32]"], "weights"),
]
BAD_TRAIN = [
    (["data=missing_folder", "out=t1"], "missing_folder"),
    (["data=empty_images", "out=t2"], "no images"),
    (["data=two_images.npy", "holdout=5", "image_size=8", "out=t3"], "holdout"),
    (["data=two_images.npy", "holdout=0", "image_size=8", "num_steps=0", "out=t4"], "num_steps"),
]


def _in_process(args, capsys):
    """``invprob ARGS`` run in this process (as :func:`invprob.app.cli.main` is by the console
    script): its exit status and stderr. The subprocess check below covers the real process."""
    from invprob.app.cli import main

    capsys.readouterr()
    try:
        code = main(args)
    except SystemExit as exit_:  # argparse / Hydra exit paths
        code = exit_.code
    return code, capsys.readouterr().err


def test_bad_cli_inputs_give_one_line_exit_2_and_no_completed_run(tmp_path, monkeypatch, capsys):
    _bad_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    cases = [(["solve", *FAST, f"hydra.run.dir=run{i}", *args], frag, f"run{i}") for i, (args, frag) in enumerate(BAD_CLI)]
    cases += [(["train", "quiet=true", *args], frag, None) for args, frag in BAD_TRAIN]
    for args, fragment, run in cases:
        code, stderr = _in_process(args, capsys)
        lines = stderr.strip().splitlines()
        assert code == 2, (args, code, stderr[-2000:])
        assert "Traceback" not in stderr, (args, stderr[-2000:])
        assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], (args, lines)
        if run is not None:
            assert not (tmp_path / run / "metrics.json").exists(), args
    # The same through the installed command's process: exit status 2, one line, no traceback.
    for args, fragment, _ in (cases[0], cases[-1]):
        proc = invprob(args, tmp_path)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (args, proc.stderr[-2000:])
        assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], (args, lines)


def test_npy_input_range_is_explicit(tmp_path):
    x = np.load(EXAMPLES / "mnist_9503.npy").astype(np.float64)  # in [-1, 1], the prior's range
    np.save(tmp_path / "bytes.npy", ((x + 1) / 2 * 255))  # the same image in [0, 255]
    np.save(tmp_path / "signed.npy", x)
    mnist = ["prior=mnist", "operator=inpainting-random", "operator.x_shape=[1,32,32]", "solver=dps",
             "solver.num_steps=3", "num_samples=1", "quiet=true", "dtype=float64"]
    refused = invprob(["solve", *mnist, "input=bytes.npy", "hydra.run.dir=r"], tmp_path)
    assert refused.returncode == 2 and "input_range=[0,255]" in refused.stderr
    mapped = invprob(["solve", *mnist, "input=bytes.npy", "input_range=[0,255]", "hydra.run.dir=a"], tmp_path)
    direct = invprob(["solve", *mnist, "input=signed.npy", "hydra.run.dir=b"], tmp_path)
    assert mapped.returncode == 0 and direct.returncode == 0, mapped.stderr + direct.stderr
    assert np.allclose(np.load(tmp_path / "a" / "samples.npy"), np.load(tmp_path / "b" / "samples.npy"))


def test_list_piped_into_a_reader_that_stops_early_is_quiet(tmp_path):
    proc = subprocess.run(f"{sys.executable} -m invprob.app.cli list | head -1", shell=True, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "solvers:" and "Traceback" not in proc.stderr and "Broken pipe" not in proc.stderr


def test_help_and_small_demo_run(tmp_path):
    top = invprob(["--help"], tmp_path)
    assert top.returncode == 0 and "solve" in top.stdout
    solve_help = invprob(["solve", "--help"], tmp_path)
    assert solve_help.returncode == 0 and "solver: " in solve_help.stdout and "dps-gmm-tuned" in solve_help.stdout
    demo = invprob(["demo", "mnist-gmm", "--gmm-only", "--num-samples", "2", "--num-steps", "5", "--quiet",
                    "--out", "demo"], tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert (tmp_path / "demo" / "figure.png").is_file()


# -- the API ------------------------------------------------------------------------------------
def test_api_refuses_what_it_used_to_accept():
    from invprob import Problem, noise
    from invprob.errors import UnsupportedProblemError
    from invprob.evaluation import testbed
    from invprob.operators import Inpainting
    from invprob.registry import get_solver

    prior, problem, _ = testbed.make_problem("inpainting", seed=0)
    with pytest.raises(ValueError, match="finite"):
        noise.Gaussian(float("inf"))
    with pytest.raises(TypeError, match="num_steps"):
        get_solver("dps", num_steps=2.5)
    with pytest.raises(TypeError, match="measurement"):  # complex y, real operator
        Problem(problem.operator, problem.measurement.to(torch.complex128), problem.noise)
    with pytest.raises(ValueError, match="at least one"):
        Problem(problem.operator, problem.measurement[:0], problem.noise)
    with pytest.raises(TypeError, match="problem"):
        get_solver("dps", num_steps=2).solve(None, prior)
    with pytest.raises(ValueError, match="GiB"):
        get_solver("dps", num_steps=2).solve(problem, prior, num_samples=10**9, progress=False)
    op32 = Inpainting((1, 8, 8), kind="random", missing=0.5, seed=0)  # float32 mask, float64 prior
    y = op32(torch.zeros(1, 1, 8, 8, dtype=torch.float64))
    with pytest.raises(UnsupportedProblemError, match=r"operator.to\(torch.float64\)"):
        get_solver("mcg", num_steps=2).init(Problem(op32, y, noise.Gaussian(0.05)), prior)


DOCUMENTED = (ValueError, TypeError, NotImplementedError)
INTERNAL = ("unsupported operand", "object is not", "positional argument", "unexpected keyword", "must be real number",
            "not supported for", "Expected all tensors", "expected scalar type")  # UnsupportedProblemError, CapabilityError, CheckpointError subclass these


def test_fuzz_constructors_and_solve_succeed_with_finite_output_or_raise_documented_errors():
    """A seeded table of random shapes, dtypes and values through operators, problems and solvers."""
    from invprob import Problem, noise
    from invprob.evaluation import testbed
    from invprob.operators import GaussianBlur, Identity, Inpainting, SuperResolution
    from invprob.registry import get_solver

    rng = np.random.default_rng(0)
    prior = testbed.gmm_prior(0)
    choices = {
        "shape": [(1, 8, 8), (1, 8, 9), (2, 8, 8), (1, 0, 8), (8, 8)],
        "dtype": [torch.float64, torch.float32, torch.complex128, torch.int64],
        "value": [0.0, 1e30, float("nan"), -1.0],
        "sigma": [0.05, 0.0, -1.0, float("inf"), 1e-8],
        "samples": [1, 3, 0, -2, 2.0],
        "solver": ["dps", "mcg", "daps", "reddiff", "enkg-gmm-tuned"],
    }
    outcomes = {"ok": 0, "refused": 0}
    for _ in range(60):
        # each field valid (its first options) three times in four, so that both outcomes occur
        pick = {k: v[0] if rng.random() < 0.75 or k == "solver" else v[rng.integers(len(v))] for k, v in choices.items()}
        pick["solver"] = choices["solver"][rng.integers(len(choices["solver"]))]
        try:
            shape = pick["shape"]
            kind = rng.integers(4)
            operator = (Identity(shape) if kind == 0 else Inpainting(shape, kind="random", missing=0.5, seed=0) if kind == 1
                        else GaussianBlur(kernel_size=3, std=1.0, x_shape=shape) if kind == 2
                        else SuperResolution(factor=2, x_shape=shape))
            operator = operator.to(torch.float64)
            x = torch.full((1, *shape), pick["value"]).to(pick["dtype"])
            problem = Problem(operator, operator(x), noise.Gaussian(pick["sigma"]))
            overrides = {"ensemble_size": 4} if pick["solver"].startswith("enkg") else {}
            solver = get_solver(pick["solver"], num_steps=3, **overrides)
            if pick["solver"] == "daps":
                solver = get_solver("daps", num_steps=3, langevin_steps=2, ode_steps=1, lr=1e-5)
            result = solver.solve(problem, prior, num_samples=pick["samples"], generator=0, progress=False)
        except DOCUMENTED as err:
            # a refusal says what is wrong; Python's own messages would mean an unchecked input
            assert not any(text in str(err) for text in INTERNAL), (pick, repr(err))
            outcomes["refused"] += 1
            continue
        assert torch.isfinite(result.samples).all(), pick
        outcomes["ok"] += 1
    assert outcomes["ok"] >= 3 and outcomes["refused"] >= 10, outcomes


# -- paths and checksums ------------------------------------------------------------------------
def test_preset_and_card_names_cannot_leave_their_folders(tmp_path, monkeypatch):
    from invprob.priors.cards import fetch, load_from_card
    from invprob.registry import load_preset

    with pytest.raises(KeyError):
        load_preset("priors", "../solvers/dps")
    monkeypatch.setenv("INVPROB_CACHE", str(tmp_path / "cache"))
    (tmp_path / "payload.bin").write_bytes(b"x")
    url = (tmp_path / "payload.bin").as_uri()
    for card in ({"name": "../escape", "architecture": "adm", "files": [{"path": "w.pt", "url": url}]},
                 {"name": "ok", "architecture": "adm", "files": [{"path": "../../escape.pt", "url": url}]},
                 {"name": "ok", "architecture": "adm", "files": [{"path": str(tmp_path / "abs.pt"), "url": url}]}):
        with pytest.raises(CheckpointError, match="folder|relative"):
            fetch(card, progress=False)
        with pytest.raises(CheckpointError, match="folder|relative"):
            load_from_card(card)
    assert not (tmp_path / "escape").exists() and not (tmp_path / "escape.pt").exists()
    assert not (tmp_path / "abs.pt").exists()
    proc = invprob(["fetch-prior", "../priors/ffhq-adm"], tmp_path)
    assert proc.returncode == 2 and "unknown prior preset" in proc.stderr


def test_shipped_weights_are_checked_against_the_package_manifest(tmp_path, monkeypatch):
    import shutil

    from invprob.priors import shipped

    copy = tmp_path / "weights"
    shutil.copytree(shipped.WEIGHTS / "mnist", copy / "mnist")
    config = json.loads((copy / "mnist" / "config.json").read_text())
    del config["sha256"]  # removing the checksum beside the file must not disable the check
    (copy / "mnist" / "config.json").write_text(json.dumps(config))
    data = bytearray((copy / "mnist" / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (copy / "mnist" / "model.safetensors").write_bytes(bytes(data))
    monkeypatch.setattr(shipped, "WEIGHTS", copy)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        shipped.load_shipped("mnist")


def test_make_clean_leaves_the_users_outputs_alone():
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    clean = makefile.split("clean:", 1)[1].splitlines()[1]
    assert "outputs" not in clean and "multirun" not in clean and "$(VENV)" in clean


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_folder_is_one_line(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    proc = invprob(["solve", *FAST, f"hydra.run.dir={locked}/run"], tmp_path)
    assert proc.returncode == 2 and "output folder" in proc.stderr
