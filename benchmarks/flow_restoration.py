"""Flow-native solvers on the shipped flow priors beside DPS and DAPS on the EDM priors, on real images.

What it measures: per task and row, PSNR and SSIM (:func:`invprob.evaluation.psnr`, :func:`~invprob.evaluation.ssim`;
images in [-1, 1] mapped to [0, 1]) of the posterior mean of ``--samples`` K draws per image against the
truth (for PnP-Flow and D-Flow, whose draws barely differ, the mean is close to one draw), averaged over
the images (D-Flow: one draw, at a reduced budget, see :data:`ROWS`); network evaluations (NFE) per sample; the wall time of the row's one batched solve (all
images × K samples); and its peak memory (:class:`invprob.evaluation.PeakMemory`: the sampled resident
set above the row's start on a CPU, the allocator's peak on a GPU).

How: natural images are the 64² centres of the first ``--images`` Set12 256² crops (as in
``restoration_set12.py``: Gaussian deblurring, std 2 px, 25² kernel; 4× bicubic super-resolution; 70 %
random inpainting; a centred box of half the side), solved with ``natural-gray-flow`` (the flow solvers)
and ``natural-gray`` (its EDM twin: the same data and crops); brain MRI is 4× single-coil Cartesian MRI
(``mri-4x-brain128``) on brain slices 36–40 at 128², held apart from both ``brain-mri-flow`` and
``brain-mri``. σ_y = 0.05 and noise seed 0 throughout. Each flow solver runs its reference
per-task preset where one exists (``solvers/pnp-flow-*.yaml``, ``ot-ode-*.yaml``, ``d-flow-*.yaml``;
FlowChef's code uses one step for every task), the default preset on MRI (no reference configures
MRI). DPS and DAPS run at about 100 NFE (the flow solvers' budget: FlowChef 100, OT-ODE 60–90) with
their per-task presets, on the EDM prior and, to separate the solver from the prior, on the flow
prior through its σ-space view.

Command of the committed results (``benchmarks/results/flow_restoration.{json,md,png}``; CPU; the
shared data through ``$INVPROB_DATA``): ``python benchmarks/flow_restoration.py``; later runs with
``--rows``/``--tasks`` and ``--merge`` replace their cells, each listed at the head of the ``.md``.

Usage: python benchmarks/flow_restoration.py [--images 6] [--samples 2] [--rows LABEL ...] [--tasks TASK ...] [--merge]
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from datetime import date
from pathlib import Path

import torch

from invprob import Problem
from invprob.errors import UnsupportedProblemError
from invprob.evaluation import PeakMemory, held_apart, image_grid, psnr, restoration_operators, set12, ssim
from invprob.noise import Gaussian
from invprob.registry import get_operator, get_prior, get_solver


RESULTS = Path(__file__).resolve().parent / "results"
SIGMA_Y = 0.05
MRI = "4x MRI (brain)"
# Each task's priors (flow, EDM) and presets: task -> {family: preset}.
PRESETS = {
    "deblur (Gaussian)": {"pnp-flow": "pnp-flow-deblur", "ot-ode": "ot-ode-deblur", "d-flow": "d-flow-deblur",
                          "dps": "dps-deblur", "daps": "daps"},
    "4x SR (bicubic)": {"pnp-flow": "pnp-flow-super-resolution", "ot-ode": "ot-ode-super-resolution",
                        "d-flow": "d-flow-super-resolution", "dps": "dps-super-resolution", "daps": "daps"},
    "inpainting 70% random": {"pnp-flow": "pnp-flow-inpainting-random", "ot-ode": "ot-ode-inpainting-random",
                              "d-flow": "d-flow-inpainting-random", "dps": "dps-inpainting", "daps": "daps"},
    "inpainting box": {"pnp-flow": "pnp-flow-inpainting-box", "ot-ode": "ot-ode-inpainting-box",
                       "d-flow": "d-flow-inpainting-box", "dps": "dps-inpainting", "daps": "daps-inpainting-box"},
    MRI: {"pnp-flow": "pnp-flow", "ot-ode": "ot-ode", "d-flow": "d-flow", "dps": "dps", "daps": "daps-mri-demo"},
}
# (row label, "flow" or "edm" prior, preset family or preset, overrides). D-Flow, an optimiser whose
# draws barely differ, is scored on one draw per image and with 2 of its per-task 7-20 outer
# iterations (40 L-BFGS iterations, 450 NFE): its full budgets (1450-4050 NFE, each with a
# backpropagation through the ODE) cost 15-40x the other rows, beyond a 2-core CPU.
ROWS = [
    ("FlowChef (paper: 100 steps)", "flow", "flowchef", {}),
    ("FlowChef, fixed scale (100 steps)", "flow", "flowchef-fixed-scale", {}),
    ("OT-ODE (paper per task)", "flow", "@ot-ode", {}),
    ("PnP-Flow (paper per task: 100 steps × 5 draws)", "flow", "@pnp-flow", {}),
    ("D-Flow (per-task λ, 2 × 20 iterations), one draw", "flow", "@d-flow", {"_samples": 1, "num_steps": 2}),
    ("DPS (100 steps), flow prior", "flow", "@dps", {"num_steps": 100}),
    ("DAPS (50 levels × 2 ODE steps), flow prior", "flow", "@daps", {"num_steps": 50, "ode_steps": 2}),
    ("DPS (100 steps)", "edm", "@dps", {"num_steps": 100}),
    ("DAPS (50 levels × 2 ODE steps)", "edm", "@daps", {"num_steps": 50, "ode_steps": 2}),
]


def task_data(task: str, images: int) -> tuple:
    """``(operator, truth, flow prior, EDM prior)`` of ``task``."""
    if task == MRI:
        return get_operator("mri-4x-brain128"), held_apart("brain-mri"), get_prior("brain-mri-flow"), get_prior("brain-mri")
    full = set12()[:images]
    c = (full.shape[-1] - 64) // 2
    truth = full[..., c:c + 64, c:c + 64].contiguous()
    return restoration_operators(64)[task], truth, get_prior("natural-gray-flow"), get_prior("natural-gray")


def run_cell(task: str, row: tuple, problem: Problem, truth: torch.Tensor, priors: dict, samples: int) -> tuple[dict, torch.Tensor]:
    label, kind, preset, overrides = row
    name = PRESETS[task][preset[1:]] if preset.startswith("@") else preset
    samples = overrides.get("_samples", samples)
    solver = get_solver(name, **{k: v for k, v in overrides.items() if not k.startswith("_")})
    with PeakMemory(torch.device("cpu")) as memory:
        out = solver.solve(problem, priors[kind], num_samples=samples, generator=0, progress=False)
    mean = out.samples.mean(1).clamp(-1, 1)
    cell = {"preset": name, "samples": samples, "psnr": psnr(mean, truth).mean().item(),
            "ssim": ssim(mean, truth).mean().item(),
            "nfe": out.nfe, "seconds": out.seconds, "peak_mib": memory.bytes / 2**20,
            "psnr_per_image": psnr(mean, truth).tolist()}
    return cell, mean[0]


def render(results: dict) -> str:
    tasks = [t for t in PRESETS if t in results]
    lines = [f"{results['_note']}\n", "Runs (later ones replace their cells):\n"]
    lines += [f"- `{r['command']}` ({r['minutes']:.1f} min, {r['machine']}, {r['date']})" for r in results["_runs"]]
    lines += ["", "PSNR (dB) · SSIM of the posterior mean; NFE per sample; seconds and peak memory (MiB) of the row's "
              "batched solve.", ""]
    for task in tasks:
        cells = results[task]
        lines += [f"## {task}", "", "| solver | prior | PSNR | SSIM | NFE | seconds | peak MiB |", "|---|---|---|---|---|---|---|"]
        for label, cell in cells.items():
            if label.startswith("_"):
                continue
            if "refused" in cell:
                lines.append(f"| {label} | {cell['prior']} | refused: {cell['refused']} | | | | |")
                continue
            lines.append(f"| {label} (`{cell['preset']}`) | {cell['prior']} | {cell['psnr']:.2f} | {cell['ssim']:.3f} | "
                         f"{cell['nfe']} | {cell['seconds']:.0f} | {cell['peak_mib']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=6, help="the first Set12 images (MRI: always slices 36–40)")
    parser.add_argument("--samples", type=int, default=2, help="K draws per image averaged into the posterior mean")
    parser.add_argument("--rows", nargs="*", default=None, help="a subset of the row labels")
    parser.add_argument("--tasks", nargs="*", default=None, help="a subset of the tasks")
    parser.add_argument("--merge", action="store_true", help="update the cells of the existing results JSON")
    parser.add_argument("--render", action="store_true", help="only rewrite the .md from the results JSON")
    args = parser.parse_args(argv)
    path = RESULTS / "flow_restoration.json"
    if args.render:
        (RESULTS / "flow_restoration.md").write_text(render(json.loads(path.read_text())))
        return 0
    results = json.loads(path.read_text()) if args.merge and path.is_file() else {}
    results["_note"] = (f"`benchmarks/flow_restoration.py`: Set12 64² centres ({args.images} images) and brain slices "
                        f"36–40 (128²), σ_y = {SIGMA_Y}, {args.samples} samples per image, torch {torch.__version__}, "
                        f"{torch.get_num_threads()} threads.")
    argv = sys.argv[1:] if argv is None else argv
    run = {"command": shlex.join(["python", "benchmarks/flow_restoration.py", *argv]), "minutes": 0.0,
           "machine": f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)", "date": date.today().isoformat()}
    results.setdefault("_runs", []).append(run)
    start, figure = time.perf_counter(), {}
    for task in PRESETS:
        if args.tasks and task not in args.tasks:
            continue
        operator, truth, flow, edm = task_data(task, args.images)
        problem = Problem.simulate(operator, truth, Gaussian(SIGMA_Y), generator=torch.Generator().manual_seed(0))
        figure[task] = {"truth": truth[0]}
        cells = results.setdefault(task, {})
        # the measurement alone: the pseudo-inverse where the operator has one, else the adjoint
        op = problem.operator
        naive = (op.pinv(problem.measurement) if op.has_pinv else op.adjoint(problem.measurement)).real.clamp(-1, 1)
        cells["no prior: A⁺y (Aᵀy without pinv)"] = {"prior": "none", "preset": "pinv" if op.has_pinv else "adjoint",
                                                    "samples": 0, "psnr": psnr(naive, truth).mean().item(),
                                                    "ssim": ssim(naive, truth).mean().item(), "nfe": 0, "seconds": 0.0,
                                                    "peak_mib": 0.0, "psnr_per_image": psnr(naive, truth).tolist()}
        figure[task]["A⁺y / Aᵀy"] = naive[0]
        for row in ROWS:
            if args.rows and row[0] not in args.rows:
                continue
            prior_name = ("brain-mri" if task == MRI else "natural-gray") + ("-flow" if row[1] == "flow" else "")
            try:
                cell, image = run_cell(task, row, problem, truth, {"flow": flow, "edm": edm}, args.samples)
            except UnsupportedProblemError as err:
                cells[row[0]] = {"prior": prior_name, "refused": str(err)}
                print(f"{task} | {row[0]} | refused: {err}", flush=True)
                continue
            cells[row[0]] = {"prior": prior_name, **cell}
            figure[task][row[0].split(" (")[0] + (" (flow)" if row[1] == "flow" and "flow prior" in row[0] else "")] = image
            print(f"{task} | {row[0]} | {cell['psnr']:.2f} dB | {cell['nfe']} NFE | {cell['seconds']:.0f} s", flush=True)
            run["minutes"] = (time.perf_counter() - start) / 60
            RESULTS.mkdir(exist_ok=True)
            path.write_text(json.dumps(results, indent=2))
    path.write_text(json.dumps(results, indent=2))
    (RESULTS / "flow_restoration.md").write_text(render(results))
    if figure and not args.merge:
        image_grid(figure, RESULTS / "flow_restoration.png")
    print(render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
