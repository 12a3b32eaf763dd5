"""Sparse-view and limited-angle CT of a small volume from a 2-D prior, with and without the
slice coupling of DiffusionMBIR.

The volume: brain MR slices 36–40 of the shipped data set at 128² (``held_apart('brain-mri')``),
five consecutive slices of one series that the ``brain-mri`` prior never saw in training,
stacked as a test volume ``(5, 1, 128, 128)``. They are MR images, not CT: the test checks
tomographic reconstruction of a real anatomical volume with a matching prior, not CT
attenuation values. Choices made on other data: TV's λ and DPS's ζ are chosen on slices 31–35
(the prior's training slices, never on the evaluation volume), ζ on the sparse-view task and
carried to the limited-angle one as ζ‖A‖ (the step relative to the operator's norm).

A real CT slice as a third task: ``CT_small.dcm`` of pydicom's test files
(:func:`invprob.evaluation.datasets.ct_slice`, 128², Hounsfield units mapped to [-1, 1]) from 18
views, with the ``natural-gray`` prior (no CT prior is shipped), TV's λ and DPS's ζ‖A‖ carried
over from the sparse-view volume task.

Tasks (:class:`invprob.operators.CT`, parallel beam, 182 detector cells): sparse view, 18 views
over [0°, 180°); limited angle, 90 views at 1° over [0°, 90°). Gaussian noise σ_y = 0.2 on the
line integrals (pixel units of [-1, 1] images; the rays carry values of order 10–100).

Rows: FBP; TV (deepinv PGD from the FBP, 2-D TV per slice, 100 iterations); the VE predictor–corrector
sampler with its CG data step but no coupling (``diffusion-mbir`` with λ = 0: slice-wise); the
same with the z-TV coupling (``diffusion-mbir``, λ = 0.08); DPS slice-wise and DPS with the
coupling (:class:`invprob.solvers.SliceCoupled`). Diffusion rows run ``--steps`` steps (a CPU
budget far below DiffusionMBIR's 2000) and one sample per volume.

Metrics: PSNR over all voxels and SSIM of the axial slices against the truth ([-1, 1] → [0, 1]);
``z-error``: ‖D_z x̂ − D_z x‖ / ‖D_z x‖ with D_z the difference between neighbouring slices,
the inter-slice consistency the coronal and sagittal planes show; NFE per volume; seconds; peak
memory above the row's start (:class:`PeakMemory`: the CUDA allocator's peak on a GPU, the
resident set size on the CPU).

Command of the committed results (``benchmarks/results/ct_volume.{json,md,png}``):
``python benchmarks/ct_volume.py``. Usage: ``python benchmarks/ct_volume.py [--steps 100] [--device cpu]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

from invprob import Problem
from invprob.datasets import load_images
from invprob.evaluation import PeakMemory, psnr, ssim, tv_baseline
from invprob.evaluation.datasets import ct_slice
from invprob.noise import Gaussian
from invprob.operators import CT, ct_angles
from invprob.operators.base import spectral_norm
from invprob.priors import SliceWisePrior
from invprob.registry import get_prior
from invprob.solvers import DPS, DiffusionMBIR, SliceCoupled

RESULTS = Path(__file__).resolve().parent / "results"
SIGMA_Y = 0.2
REAL_TASK = "real CT slice (pydicom CT_small, 18 views, natural-gray prior)"
TASKS = {"sparse view (18 views)": dict(views=18, span=180.0), "limited angle (90°)": dict(views=90, span=90.0)}
TV_GRID = (1.0, 3.0, 10.0, 30.0, 100.0)
DPS_GRID = (0.3, 1.0, 3.0)  # ζ‖A‖


def metrics(estimate: torch.Tensor, truth: torch.Tensor) -> dict:
    """PSNR over the volume, mean axial SSIM and the inter-slice error of ``(D, 1, H, W)`` volumes
    (no inter-slice error for a single slice)."""
    est = estimate.clamp(-1, 1).float()
    mse = (est - truth).pow(2).mean()
    out = {"psnr": float(10 * torch.log10(4.0 / mse)), "ssim": float(ssim(est, truth).mean())}
    if len(truth) > 1:
        dz_est, dz_truth = est[1:] - est[:-1], truth[1:] - truth[:-1]
        out["z_error"] = float((dz_est - dz_truth).norm() / dz_truth.norm())
    return out


def simulate(volume: torch.Tensor, views: int, span: float, seed: int = 0):
    op = CT(volume.shape[-1], ct_angles(views, span=span), slices=volume.shape[0])
    return Problem.simulate(op, volume[None], Gaussian(SIGMA_Y), generator=torch.Generator().manual_seed(seed))


def measured(run, device: torch.device) -> tuple[torch.Tensor, int, float, int]:
    """``run() -> (estimate, nfe)`` timed and with its peak memory: ``(estimate, nfe, seconds, bytes)``."""
    with PeakMemory(device) as memory:
        clock = time.perf_counter()
        estimate, nfe = run()
        seconds = time.perf_counter() - clock
    return estimate, nfe, seconds, memory.bytes


def run_solver(solver, problem, prior) -> tuple[torch.Tensor, int]:
    result = solver.solve(problem, prior, num_samples=1, generator=0, progress=False)
    return result.samples[0, 0], result.nfe


def tv(problem, step: float, lam: float) -> torch.Tensor:
    """2-D TV per slice: the volume's slices as a batch of the single-slice operator."""
    op = problem.operator
    single = CT(op.size, op.angles.double(), slices=None).to(problem.measurement.dtype)
    y = problem.measurement[0]  # (D, 1, A, N)
    return tv_baseline(single, y, lam, iters=100, stepsize=step, init=single.fbp(y))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    started = time.time()
    train, evaluation = load_images("brain-mri", 128, holdout=5, resize=128)
    tuning, volume = train[-5:].to(device), evaluation.to(device)  # slices 31–35; 36–40
    base = get_prior("brain-mri").to(device)
    prior = SliceWisePrior(base, volume.shape[0])
    rows, images, choices = {}, {}, {}
    for task, geometry in TASKS.items():
        tune_problem = simulate(tuning, **geometry).to(device)
        problem = simulate(volume, **geometry).to(device)
        norm = spectral_norm(problem.operator, torch.float32, device)
        step = 1.0 / norm**2
        # choices on the tuning slices
        tv_scores = {lam: metrics(tv(tune_problem, step, lam), tuning)["psnr"] for lam in TV_GRID}
        lam_tv = max(tv_scores, key=tv_scores.get)
        if "zeta_norm" not in choices:
            scores = {}
            for c in DPS_GRID:
                est, _ = run_solver(DPS(scale=c / norm, num_steps=args.steps), tune_problem, prior)
                scores[c] = metrics(est, tuning)["psnr"] if torch.isfinite(est).all() else float("-inf")
            choices["zeta_norm"] = max(scores, key=scores.get)
            choices["dps_tuning_psnr"] = scores
        choices.setdefault("tv_lambda", {})[task] = lam_tv
        zeta = choices["zeta_norm"] / norm
        estimates = {"FBP": measured(lambda: (problem.operator.fbp(problem.measurement)[0], 0), device),
                     "TV": measured(lambda: (tv(problem, step, lam_tv), 0), device)}
        solvers = {
            "VE-PC + CG, slice-wise (λ=0)": DiffusionMBIR(num_steps=args.steps, lam=0.0),
            "DiffusionMBIR (z-TV λ=0.08)": DiffusionMBIR(num_steps=args.steps),
            "DPS slice-wise": DPS(scale=zeta, num_steps=args.steps),
            "DPS + z-TV": SliceCoupled(DPS(scale=zeta, num_steps=args.steps)),
        }
        for name, solver in solvers.items():
            print(f"{task}: {name}", flush=True)
            estimates[name] = measured(lambda: run_solver(solver, problem, prior), device)
        rows[task] = {name: {**metrics(est, volume), "nfe": nfe, "seconds": sec, "peak_bytes": peak}
                      for name, (est, nfe, sec, peak) in estimates.items()}
        images[task] = {name: est.detach().cpu() for name, (est, *_) in estimates.items()}
        print(json.dumps(rows[task], indent=1), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    # a real CT slice (pydicom's CT_small) from 18 views with the natural-image prior
    truth = ct_slice().to(device)
    op = CT(truth.shape[-1], ct_angles(18))
    problem = Problem.simulate(op, truth, Gaussian(SIGMA_Y), generator=torch.Generator().manual_seed(0)).to(device)
    norm = spectral_norm(op, torch.float32, device)
    natural = get_prior("natural-gray").to(device)
    lam_tv = choices["tv_lambda"][next(iter(TASKS))]
    estimates = {"FBP": measured(lambda: (op.fbp(problem.measurement), 0), device),
                 "TV": measured(lambda: (tv_baseline(op, problem.measurement, lam_tv, iters=100, stepsize=1 / norm**2,
                                                     init=op.fbp(problem.measurement)), 0), device)}
    for name, solver in {"VE-PC + CG": DiffusionMBIR(num_steps=args.steps),
                         "DPS": DPS(scale=choices["zeta_norm"] / norm, num_steps=args.steps)}.items():
        print(f"real CT slice: {name}", flush=True)
        estimates[name] = measured(lambda: run_solver(solver, problem, natural), device)
    rows[REAL_TASK] = {name: {**metrics(est.reshape(truth.shape), truth), "nfe": nfe, "seconds": sec, "peak_bytes": peak}
                       for name, (est, nfe, sec, peak) in estimates.items()}
    plot_slice({name: est.detach().cpu().reshape(truth.shape[-2:]) for name, (est, *_) in estimates.items()},
               truth.cpu()[0, 0], args.out / "ct_slice.png")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    record = {"command": shlex.join(["python", "benchmarks/ct_volume.py", *(argv or sys.argv[1:])]),
              "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {device}",
              "date": time.strftime("%Y-%m-%d"), "commit": commit, "wall_seconds": time.time() - started,
              "steps": args.steps, "sigma_y": SIGMA_Y, "choices": choices, "rows": rows}
    (args.out / "ct_volume.json").write_text(json.dumps(record, indent=2))
    (args.out / "ct_volume.md").write_text(render(record))
    plot(images, volume.cpu(), args.out / "ct_volume.png")


def render(record: dict) -> str:
    lines = ["# CT of a 5-slice volume from the 2-D `brain-mri` prior", "",
             f"Command: `{record['command']}` — {record['machine']}, {record['date']}, commit {record['commit']}, "
             f"{record['wall_seconds'] / 60:.1f} min. Diffusion rows: {record['steps']} steps, one sample; "
             f"σ_y = {record['sigma_y']}. TV λ per task and DPS ζ‖A‖ = {record['choices']['zeta_norm']:g} were "
             f"chosen on slices 31–35 (TV λ: {record['choices']['tv_lambda']}). How and why: the docstring of "
             f"`benchmarks/ct_volume.py`.", ""]
    for task, rows in record["rows"].items():
        lines += [f"## {task}", "", "| method | PSNR (dB) | SSIM (axial) | z-error | NFE / volume | seconds | peak MiB |",
                  "|---|---|---|---|---|---|---|"]
        for name, r in rows.items():
            z = f"{r['z_error']:.3f}" if "z_error" in r else "–"
            lines.append(f"| {name} | {r['psnr']:.2f} | {r['ssim']:.3f} | {z} | {r['nfe']} | "
                         f"{r['seconds']:.1f} | {r['peak_bytes'] / 2**20:.0f} |")
        lines.append("")
    lines.append("Figures: `ct_volume.png` (axial middle slice, coronal and sagittal planes through the centre), "
                 "`ct_slice.png` (the real CT slice).")
    return "\n".join(lines) + "\n"


def plot(images: dict, volume: torch.Tensor, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    D, _, H, W = volume.shape
    for_task = list(images.items())
    names = ["truth", *for_task[0][1]]
    fig, axes = plt.subplots(len(for_task) * 3, len(names), figsize=(1.6 * len(names), 1.6 * 1.5 * len(for_task) + 0.3),
                             gridspec_kw={"height_ratios": [1.0, 0.25, 0.25] * len(for_task)})
    for t, (task, estimates) in enumerate(for_task):
        for j, name in enumerate(names):
            vol = (volume if name == "truth" else estimates[name]).clamp(-1, 1)[:, 0]
            planes = (vol[D // 2], vol[:, H // 2, :], vol[:, :, W // 2])
            for p, (plane, label) in enumerate(zip(planes, ("axial", "coronal", "sagittal"))):
                ax = axes[3 * t + p, j]
                ax.imshow(plane, cmap="gray", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
                ax.set_xticks([]), ax.set_yticks([])
                if p == 0:
                    ax.set_title(name if t == 0 else "", fontsize=6)
                if j == 0:
                    ax.set_ylabel(f"{task}\n{label}" if p == 0 else label, fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_slice(estimates: dict, truth: torch.Tensor, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = {"truth": truth, **estimates}
    fig, axes = plt.subplots(1, len(panels), figsize=(1.8 * len(panels), 2.0))
    for ax, (name, img) in zip(axes, panels.items()):
        ax.imshow(img.clamp(-1, 1), cmap="gray", vmin=-1, vmax=1)
        ax.set_title(name, fontsize=7)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
