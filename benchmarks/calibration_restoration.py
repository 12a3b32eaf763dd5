"""Calibrated against paper presets on real images: Set12 deblurring and 4× SR, 4× brain MRI.

What it measures: for each task and solver, ``invprob.calibrate`` chooses the solver's step
sizes from pairs simulated from *training* images — random crops of train400 (the BSD crops
``natural-gray`` was trained on; never Set12) for the Set12 tasks, brain slices 1–35 (those
``brain-mri`` was trained on; never slices 36–40) for MRI — and the report gives the PSNR / SSIM
of the posterior mean of ``--samples`` samples on the evaluation images (Set12 64² centres as in
``benchmarks/restoration_set12.py``; brain slices 36–40), each image solved alone with its own
seed (:func:`invprob.evaluation.solve_each`), for the paper preset and the calibrated one, with
the calibration's cost (solves, images through the network, seconds).

Tasks and noise as in ``restoration_set12.py`` (σ_y = 0.05, its Gaussian deblurring and bicubic
4× SR scaled to the crop, each solver's per-task preset) and the demo's 4× MRI
(``mri-4x-brain128``, σ_y = 0.05, ``brain-mri``). Budgets: ``--budget paper`` runs the presets as
they are (DPS 1000 steps, DAPS-1K; the GPU stage ``benchmarks/gpu/calibration_restoration.sh``);
``--budget reduced`` what a 2-core CPU affords (DPS 100 steps, DAPS 50 × 2 ODE steps; MRI: DPS
100 steps and ``daps-mri-demo``), the calibration searching at that budget too. ``--images N``
evaluates on the first ``N`` Set12 centres only (the brain task always uses its 5 slices).

Usage:
    python benchmarks/calibration_restoration.py [--budget reduced|paper] [--tasks ...] [--solvers dps daps]
        [--pairs 8] [--pair-samples 4] [--samples 4] [--images 12] [--device cuda] [--json PATH] [--note TEXT]
    python benchmarks/calibration_restoration.py --render [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

import invprob
from invprob import Problem
from invprob.calibration import image_crops
from invprob.datasets import load_images
from invprob.evaluation import held_apart, psnr, set12, solve_each, ssim
from invprob.noise import Gaussian
from invprob.registry import get_operator, get_prior, get_solver
from restoration_set12 import SIGMA_Y, tasks  # benchmarks/restoration_set12.py, beside this script

RESULTS = Path(__file__).resolve().parent / "results"
CROP = 64
# solver -> {task: (preset, overrides)} per budget
REDUCED = {"dps": {"num_steps": 100}, "daps": {"num_steps": 50, "ode_steps": 2}}
TASKS = ("deblur (Gaussian)", "4x SR (bicubic)", "4x MRI (brain)")


def setup(task: str, solver: str, budget: str, images: int):
    """``(prior name, operator, preset, overrides, training images, evaluation images)``."""
    if task == "4x MRI (brain)":
        train, evaluation = load_images("brain-mri", 128, holdout=5, resize=128, progress=False)
        operator = get_operator("mri-4x-brain128")
        preset = {"dps": "dps", "daps": "daps" if budget == "paper" else "daps-mri-demo"}[solver]
        overrides = REDUCED["dps"] if (solver == "dps" and budget == "reduced") else {}
        return "brain-mri", operator, preset, overrides, train, evaluation
    operator, presets = tasks(CROP)[task]
    train = load_images("train400", 180, progress=False)[0]
    full = set12()
    top = (full.shape[-1] - CROP) // 2
    evaluation = full[:images, ..., top:top + CROP, top:top + CROP]
    return "natural-gray", operator, presets[solver], REDUCED[solver] if budget == "reduced" else {}, train, evaluation


def cell(task: str, solver: str, args) -> dict:
    prior_name, operator, preset, overrides, train, evaluation = setup(task, solver, args.budget, args.images)
    device = torch.device(args.device)
    prior, operator = get_prior(prior_name).to(device), operator.to(device)
    noise = Gaussian(SIGMA_Y)
    x_shape = tuple(evaluation.shape[1:])
    picks = train[torch.linspace(0, len(train) - 1, args.pairs).round().long()]  # spread over the set
    truths = image_crops(picks, x_shape, args.pairs, seed=0).to(device)
    cal = invprob.calibrate(preset, operator, noise, prior, overrides=overrides, truths=truths,
                            num_pairs=args.pairs, num_samples=args.pair_samples, seed=0, progress=not args.quiet)
    truth = evaluation.to(device)
    problem = Problem.simulate(operator, truth, noise, generator=torch.Generator(device).manual_seed(0))
    rows = {}
    for label, config in (("paper preset", overrides), ("calibrated", {**overrides, **cal.best})):
        out = solve_each(get_solver(preset, **config), problem, prior, num_samples=args.samples)
        mean = out.samples.mean(1)
        rows[label] = {"psnr": float(psnr(mean, truth.cpu()).mean()), "ssim": float(ssim(mean, truth.cpu()).mean()),
                       "nfe": out.nfe, "seconds": out.seconds, "config": config}
        print(f"{task:18s} {solver:5s} {label:13s} PSNR {rows[label]['psnr']:.2f}  SSIM {rows[label]['ssim']:.3f}",
              flush=True)
    return {"preset": preset, "overrides": overrides, "best": cal.best, "start": cal.start,
            "pairs": args.pairs, "pair_samples": args.pair_samples, "samples": args.samples, "images": len(truth),
            "calibration": {"solves": len(cal.candidates), "network_images": cal.network_images,
                            "seconds": cal.seconds, "psnr_pairs": cal.chosen.psnr, "coverage_pairs": cal.chosen.coverage},
            "rows": rows, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine()}


def render(data: dict) -> str:
    lines = ["PSNR / SSIM of the posterior mean on the evaluation images (Set12 64² centres; brain slices 36–40), "
             "paper preset against the preset `invprob calibrate` chose from pairs simulated from training images "
             "(train400 crops; brain slices 1–35). Produced by:", ""]
    lines += [f"- `{r['command']}` ({r['device']}, {r['date']}, {round(r['seconds'] / 60)} min"
              f"{'; ' + r['note'] if r.get('note') else ''})" for r in data["runs"]]
    lines += ["", "| task | solver (budget) | images × samples | paper preset at this budget | calibrated | chosen (preset value) | "
              "calibration: pairs × samples, cost | on the pairs: PSNR, cov90 |", "|---|---|---|---|---|---|---|---|"]
    for key, c in data["cells"].items():
        task, solver, budget = key.split("|")
        p, q = c["rows"]["paper preset"], c["rows"]["calibrated"]
        chosen = ", ".join(f"{k} {v:g} ({c['start'][k]:g})" for k, v in c["best"].items())
        cost = c["calibration"]
        lines.append(f"| {task} | {c['preset']} ({budget}, {p['nfe']:.0f} NFE) | {c['images']} × {c['samples']} | "
                     f"{p['psnr']:.2f} / {p['ssim']:.3f} | {q['psnr']:.2f} / {q['ssim']:.3f} | {chosen} | "
                     f"{c['pairs']} × {c['pair_samples']}, {cost['solves']} solves, "
                     f"{cost['network_images'] / 1e3:.1f} k images, {cost['seconds'] / 60:.0f} min | "
                     f"{cost['psnr_pairs']:.2f}, {cost['coverage_pairs']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", choices=("reduced", "paper"), default="reduced")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--solvers", nargs="+", default=["dps", "daps"], choices=["dps", "daps"])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--pair-samples", type=int, default=4)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--images", type=int, default=12, help="first N Set12 centres (Set12 tasks only)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=RESULTS / "calibration_restoration.json")
    parser.add_argument("--note", default="")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--render", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.images <= 12:
        parser.error(f"--images must be between 1 and 12 (Set12 has 12 images), got {args.images}")
    data = json.loads(args.json.read_text()) if args.json.is_file() else {"cells": {}, "runs": []}
    if not args.render:
        command = "python benchmarks/calibration_restoration.py " + shlex.join(sys.argv[1:] if argv is None else argv)
        run = {"command": command.strip(), "device": args.device, "date": time.strftime("%Y-%m-%d"), "seconds": 0.0,
               "note": args.note, "torch": torch.__version__}
        data["runs"].append(run)
        for task in args.tasks:
            for solver in args.solvers:
                key = f"{task}|{solver}|{args.budget}"
                if key in data["cells"]:
                    continue
                start = time.perf_counter()
                data["cells"][key] = cell(task, solver, args)
                run["seconds"] += time.perf_counter() - start
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(data, indent=1))
                args.json.with_suffix(".md").write_text(render(data))
    args.json.with_suffix(".md").write_text(render(data))
    print(args.json.with_suffix(".md"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
