"""Latent against pixel posterior sampling on real images: held-apart brain MR slices.

What it measures: for each task and solver, PSNR and SSIM (:func:`invprob.evaluation.psnr`,
:func:`~invprob.evaluation.ssim`; images in [-1, 1] mapped to [0, 1]) of the posterior mean of
``K`` samples against the truth, averaged over the images; network calls (NFE) per sample,
decoder calls per sample (latent solvers; means over the images), seconds, and the peak memory:
on a GPU the peak of torch's allocations, on the CPU the peak resident memory of the process that
ran the cell (each cell runs in a fresh process, so it is that cell's peak: the Python
interpreter, torch and both priors included).

How: the images are the held-apart brain slices 36–40 (128², never trained on by either prior;
``--images`` takes the first ones); σ_y = 0.05 and noise seed 0. Tasks: 4× Cartesian single-coil
MRI (``mri-4x-brain128``), a centred 64² box, 70 % random inpainting and Gaussian deblurring
(std 2 px, 25×25 kernel). The latent solvers — PSLD, ReSample, Latent DAPS, STSL at their paper
presets (the task's own preset where the official code has one; ReSample also with its
optimisations stopped at the noise level, ``resample-noise-stop``) — run on ``brain-mri-latent``;
pixel DPS and DAPS run on ``brain-mri``, the pixel prior trained on the same slices; each row
names its budget. Image ``i`` is solved alone with seed ``i`` (one solve of all images would give
image ``i``'s sample ``k`` the same noise as every other image's).

Command of the committed results (``benchmarks/results/latent_restoration.{json,md}``): the one at
the head of ``latent_restoration.md`` (resumable: finished cells are kept; ``--render`` rewrites
the ``.md`` from the JSON).

Usage: python benchmarks/latent_restoration.py [--images 5] [--samples 2] [--tasks ...] [--solvers ...]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import shlex
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SIGMA_Y = 0.05
TASKS = ("4x MRI", "inpainting box", "inpainting 70% random", "deblur (Gaussian)")
# (row label, prior, the tasks' own presets, the preset of the other tasks, overrides)
SOLVERS = [
    ("PSLD (1000 steps)", "brain-mri-latent", {"inpainting box": "psld-inpainting-box"}, "psld", {}),
    ("ReSample (500 steps)", "brain-mri-latent", {}, "resample", {}),
    ("ReSample, stops at the noise (500 steps)", "brain-mri-latent", {}, "resample-noise-stop", {}),
    ("Latent DAPS (50 levels)", "brain-mri-latent",
     {"inpainting box": "latent-daps-inpainting-box", "inpainting 70% random": "latent-daps-inpainting-random",
      "deblur (Gaussian)": "latent-daps-deblur"}, "latent-daps", {}),
    ("STSL (50 steps)", "brain-mri-latent", {}, "stsl", {}),
    ("DPS (250 steps)", "brain-mri", {"inpainting box": "dps-inpainting", "inpainting 70% random": "dps-inpainting",
                                      "deblur (Gaussian)": "dps-deblur"}, "dps", {"num_steps": 250}),
    ("DAPS (50 levels × 2 ODE steps)", "brain-mri", {}, "daps-mri-demo", {}),
]


def operator(task: str):
    from invprob.operators import GaussianBlur, Inpainting
    from invprob.registry import get_operator

    shape = (1, 128, 128)
    if task == "4x MRI":
        return get_operator("mri-4x-brain128")
    if task == "inpainting box":
        return Inpainting(shape, kind="box", box_size=(64, 64))
    if task == "inpainting 70% random":
        return Inpainting(shape, kind="random", missing=0.7, seed=0)
    return GaussianBlur(kernel_size=25, std=2.0, padding="reflect", x_shape=shape)


def cell(task: str, label: str, num_images: int, num_samples: int, device: str = "cpu") -> dict:
    """One (task, solver) cell, run in this process: its metrics."""
    import resource

    import torch

    from invprob import Problem
    from invprob.evaluation import held_apart, psnr, solve_each, ssim
    from invprob.noise import Gaussian
    from invprob.registry import get_prior, get_solver

    _, prior_name, per_task, default, overrides = next(row for row in SOLVERS if row[0] == label)
    preset = per_task.get(task, default)
    prior = get_prior(prior_name).to(device)
    truth = held_apart("brain-mri")[:num_images].to(torch.float32)
    op = operator(task).to(torch.float32)
    # simulated on the CPU (the same y on every device), then moved
    problem = Problem.simulate(op, truth, Gaussian(SIGMA_Y), generator=torch.Generator().manual_seed(0)).to(device)
    solver = get_solver(preset, **overrides)
    # image i with seed i: a sample's seed does not depend on its measurement
    result = solve_each(solver, problem, prior, num_samples=num_samples)
    mean = result.samples.mean(1).clamp(-1, 1)
    return {"preset": preset, "psnr": psnr(mean, truth).mean().item(), "ssim": ssim(mean, truth).mean().item(),
            "nfe": result.nfe, "decoder_calls": result.decoder_calls, "seconds": result.seconds,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "peak_device_bytes": torch.cuda.max_memory_allocated() if device.startswith("cuda") else None,
            "device": torch.cuda.get_device_name() if device.startswith("cuda") else "CPU",
            "threads": torch.get_num_threads()}


def _child(queue, *args) -> None:
    try:
        queue.put(cell(*args))
    except Exception as err:  # reported in the parent, which would otherwise wait for ever
        queue.put({"error": f"{type(err).__name__}: {err}"})


def render(results: dict) -> str:
    n = results["num_images"]
    slices = "slice 36" if n == 1 else f"slices 36–{35 + n}"
    lines = [f"Posterior mean of {results['num_samples']} samples per image, mean over held-apart brain {slices} "
             "(128²), σ_y = 0.05. Produced by:", ""]
    lines += [f"- `{r['command']}` ({r['machine']}, {r['date']}, {round(r['seconds'] / 60)} min"
              + (f"; {r['note']}" if r.get("note") else "") + ")" for r in results["runs"]]
    lines += ["", "PSNR (dB) / SSIM of the posterior mean; NFE and decoder calls per sample; seconds; peak "
                  "memory (GiB: of the cell's process on the CPU, of torch's allocations on a GPU).", ""]
    lines += ["| solver | prior | " + " | ".join(TASKS) + " | NFE | decoder calls |", "|---" * (len(TASKS) + 4) + "|"]
    for label, prior, _, _, _ in SOLVERS:
        cells = [results["cells"].get(f"{task} | {label}") for task in TASKS]
        if not any(cells):
            continue
        text = [f"{c['psnr']:.2f} / {c['ssim']:.3f} ({c['seconds']:.0f} s, " + (
                    f"{c['peak_device_bytes'] / 2**30:.2f} GiB on the GPU)" if c.get("peak_device_bytes") else
                    f"{c['peak_rss_bytes'] / 2**30:.1f} GiB)") if c else "not run" for c in cells]
        done = next(c for c in cells if c)
        lines.append(f"| {label} | `{prior}` | " + " | ".join(text) + f" | {done['nfe']:.0f} | "
                     + " / ".join(f"{c['decoder_calls']:.0f}" for c in cells if c) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--tasks", nargs="*", default=list(TASKS))
    parser.add_argument("--solvers", nargs="*", default=[row[0] for row in SOLVERS])
    parser.add_argument("--note", default="", help="what else ran on the machine meanwhile (recorded)")
    parser.add_argument("--render", action="store_true")
    parser.add_argument("--device", default="cpu", help="where the priors and solvers run (e.g. cuda)")
    parser.add_argument("--json", default=str(RESULTS / "latent_restoration.json"))
    args = parser.parse_args(argv)
    path = Path(args.json)
    results = json.loads(path.read_text()) if path.is_file() else {
        "num_images": args.images, "num_samples": args.samples, "cells": {}, "runs": []}
    if (results["num_images"], results["num_samples"]) != (args.images, args.samples) and not args.render:
        raise SystemExit(f"{path} holds cells of --images {results['num_images']} --samples "
                         f"{results['num_samples']}; use those or another --json.")
    if not args.render:
        start = time.perf_counter()
        context = multiprocessing.get_context("spawn")
        for task in args.tasks:
            for label in args.solvers:
                key = f"{task} | {label}"
                if key in results["cells"]:
                    continue  # resumable
                queue = context.Queue()
                child = context.Process(target=_child, args=(queue, task, label, args.images, args.samples,
                                                              args.device))
                child.start()
                result = queue.get()
                child.join()
                print(key, result, flush=True)
                if "error" in result:
                    raise SystemExit(f"{key}: {result['error']}")
                results["cells"][key] = result
                path.write_text(json.dumps(results, indent=2))
        results["runs"].append({"command": shlex.join(["python", "benchmarks/latent_restoration.py",
                                                       *(sys.argv[1:] if argv is None else argv)]),
                                "machine": platform.processor() or platform.machine(),
                                "date": time.strftime("%Y-%m-%d"), "seconds": time.perf_counter() - start,
                                "note": args.note})
        path.write_text(json.dumps(results, indent=2))
    text = render(results)
    path.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
