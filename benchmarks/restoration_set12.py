"""Restoration on real images: Set12 crops with the shipped ``natural-gray`` prior.

What it measures: PSNR, SSIM and, where the AlexNet weights are in the torch cache, LPIPS
(:func:`invprob.evaluation.psnr`, :func:`~invprob.evaluation.ssim`, :func:`~invprob.evaluation.lpips_metric`;
images in [-1, 1] mapped to [0, 1]) of one posterior sample per image (seed 0), or of the mean of
K samples with ``--posterior-mean K``, against the truth, per task and solver; the table reports
the means over the images and whether each solver beats the TV baseline on the inpainting tasks.
Set distances (FID/KID, :func:`~invprob.evaluation.set_distances`) are not reported: 12 images
are far too few for FID over 2048 Inception features.

How: the images are the 64×64 centres of :func:`invprob.evaluation.set12`'s 256² crops
(``--crop``, ``--images``); the measurements are simulated on the CPU with σ_y = 0.05 (DPS/DAPS)
and noise seed 0, so every device sees the same ``y``. Tasks (:func:`tasks`), the DPS/DAPS tasks
scaled to the crop: Gaussian deblurring (std 2 px, 25×25 kernel, reflect padding), 4× bicubic
super-resolution, 70 % random inpainting and a centred box of half the crop's side. Solvers
(:data:`SOLVERS`) are presets, with each task's own preset where a family has one (DPS's ζ,
DAPS's Langevin step, DAPS-HMC's configuration); the default rows use reduced step counts that
fit a 2-core CPU, and each row names its budget. The baseline, ``TV (oracle λ)``, is
:func:`invprob.evaluation.tv_baseline` (200 iterations) with λ per task chosen from a grid by
the best mean PSNR against the truth: an oracle choice that favours the baseline. Every cell and
run records the device it ran on.

Commands of the committed results (``benchmarks/results/restoration_set12.{json,md,png}``):
``python benchmarks/restoration_set12.py`` (the default rows; writes all three files), then one
``--merge`` run per added cell, the GPU cells by ``benchmarks/gpu/restoration_set12.sh`` merged
back with ``python benchmarks/restoration_set12.py --merge-from $OUT/*/restoration_set12.json``.
The exact command of every run, where it ran and its wall time are listed at the head of
``restoration_set12.md`` (the ``_runs`` of the JSON); ``--render`` rewrites the ``.md`` from the
JSON.

Usage: python benchmarks/restoration_set12.py [--images 12] [--crop 64] [--device cuda] [--merge] ...
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from invprob import Problem
from invprob.errors import UnsupportedProblemError
from invprob.evaluation import image_grid, lpips_metric, psnr, restoration_operators, set12, solve_each, ssim, tv_baseline
from invprob.noise import Gaussian
from invprob.registry import get_prior, get_solver

RESULTS = Path(__file__).resolve().parent / "results"
SIGMA_Y = 0.05


def tasks(n: int) -> dict:
    """task -> (operator, per-task presets of the solvers that have them: DPS's ζ, DAPS's lr, DAPS-HMC's config)."""
    presets = {
        "deblur (Gaussian)": {"dps": "dps-deblur", "daps": "daps", "daps-hmc": "daps-hmc-deblur", "diffpir": "diffpir"},
        "4x SR (bicubic)": {"dps": "dps-super-resolution", "daps": "daps", "daps-hmc": "daps-hmc-super-resolution",
                            "diffpir": "diffpir"},
        "inpainting 70% random": {"dps": "dps-inpainting", "daps": "daps", "daps-hmc": "daps-hmc-inpainting-random",
                                  "diffpir": "diffpir-inpainting"},
        "inpainting box": {"dps": "dps-inpainting", "daps": "daps-inpainting-box", "daps-hmc": "daps-hmc-inpainting-box",
                           "diffpir": "diffpir-inpainting"},
    }
    return {task: (operator, presets[task]) for task, operator in restoration_operators(n).items()}


# (row label, preset, overrides); a preset "@family" is the task's own preset of that family
# (DPS: the per-task ζ of its official configs; DAPS: the per-task Langevin lr; DAPS-HMC: the
# per-task `pixel_hmc` config).
SOLVERS = [
    ("DPS (250 steps)", "@dps", {"num_steps": 250}),
    ("MCG (250 steps)", "mcg", {"num_steps": 250}),
    ("RED-Diff (paper preset, 50 steps)", "reddiff", {}),
    ("DAPS (50 annealing x 2 ODE steps)", "@daps", {"num_steps": 50, "ode_steps": 2}),
    # The paper budgets, run separately (--solvers ... --merge): 4-10x the cost of the rows above.
    ("DPS (paper: 1000 steps)", "@dps", {}),
    ("MCG (paper: 1000 steps)", "mcg", {}),
    ("RED-Diff (1000 steps)", "reddiff-1000", {}),
    ("DAPS-1K (paper)", "@daps", {}),
    # The official code's damped HMC in place of Langevin, its per-task `pixel_hmc` configs.
    ("DAPS-1K, official HMC", "@daps-hmc", {}),
    # EnKG, a GPU row (benchmarks/gpu/restoration_set12.sh): γ = 2 and 2 updates per step as the
    # official FFHQ runs (devzhk/enkg-pytorch scripts/ffhq.sh: guidance_scale=2.0, num_samples=1024,
    # num_updates=2), with half their ensemble and 20 outer steps instead of 80 (126 network calls
    # per particle instead of 1588).
    ("EnKG (512 particles, 20 steps)", "enkg", {"ensemble_size": 512, "num_steps": 20}),
    ("EnKG (1024 particles, 20 steps)", "enkg", {"ensemble_size": 1024, "num_steps": 20}),
    # The released ensemble (enkg preset: 2048 particles), still 20 outer steps.
    ("EnKG (2048 particles, 20 steps)", "enkg", {"ensemble_size": 2048, "num_steps": 20}),
    # More steps instead of more particles: 30 steps are 266 network calls per particle (2.1x).
    ("EnKG (512 particles, 30 steps)", "enkg", {"ensemble_size": 512, "num_steps": 30}),
    # The peers' methods at their paper presets (solvers/*.yaml cite each default): DiffPIR with
    # its deblurring settings (λ 7, ζ 0.3, 100 steps; also on 4x SR, whose official ζ 0.25 is
    # close) and its inpainting ones (λ 1, ζ 1, 20 steps); TDS with the official image runs' 4
    # particles per measurement (one returned).
    ("DiffPIR (paper presets)", "@diffpir", {}),
    ("DDRM (paper: 20 steps)", "ddrm", {}),
    ("DDNM+ (paper: 100 steps)", "ddnm", {}),
    ("DDNM+ time travel (paper: 100 steps, travel 2 x 2)", "ddnm-time-travel", {}),
    ("ΠGDM (paper: 100 steps)", "pigdm", {}),
    ("MMPS (paper: 64 steps)", "mmps", {}),
    ("TDS (paper: 4 particles, 100 steps)", "tds", {"num_particles": 4}),
    # deepinv 0.5's own samplers on the same natural-gray denoiser (run_deepinv): DPS at its
    # default weight with the NFE of the "DPS (250 steps)" row; DiffPIR at our task presets' λ, ζ
    # and steps; DDRM (inpainting only: its DecomposablePhysics) on our ddrm preset's 20 σ-levels.
    ("deepinv DPS (weight 1, 250 steps)", "deepinv:dps", {"num_steps": 250}),
    ("deepinv DiffPIR (paper presets)", "deepinv:diffpir", {}),
    ("deepinv DDRM (20 steps)", "deepinv:ddrm", {}),
]
DEFAULT_SOLVERS = [label for label, _, _ in SOLVERS[:4]]
# Why a diffusion solver does not beat the TV baseline on an inpainting task (shown in the table).
REMARKS: dict[str, str] = {
    "DiffPIR (paper presets)": "its inpainting settings are 20 network calls (λ 1, ζ 1); 0.6 dB below on 70 % random, "
                               "0.46 dB above on box",
    "DDRM (paper: 20 steps)": "20 network calls; on the GMM test bed the same rules at 1000 steps are 3.6× closer (inpainting) to "
                              "the posterior than at 20 (posterior_gmm_seed7.md); not run at 1000 steps here",
    "DDNM+ (paper: 100 steps)": "0.29 dB below on 70 % random, 0.39 dB above on box",
    "deepinv DiffPIR (paper presets)": "deepinv's DiffPIR at our presets' λ, ζ and steps; within 0.15 dB of ours on "
                                       "inpainting",
    "deepinv DDRM (20 steps)": "deepinv's DDRM on our ddrm preset's 20 levels; within 0.3 dB of ours",
    "deepinv DPS (weight 1, 250 steps)": "deepinv 0.5's DPS at its default weight 1: it adds weight × ∇‖y − A D(x_t)‖ "
                                         "to the score of its VP SDE, where its own documentation says the weight must "
                                         "absorb a factor ‖y − A D‖/σ_y², typically in the hundreds; at 1 the data "
                                         "barely pull (our DPS at the same 250 steps: 22.98 and 22.32)",
    "DPS (250 steps)": "a quarter of the paper's steps with the ζ tuned for 1000 (the paper's 1000 steps beat TV on both)",
    "MCG (250 steps)": "a quarter of the paper's 1000 steps, sized for a 2-core CPU",
    "RED-Diff (paper preset, 50 steps)": "isolated missing pixels keep outlier values after 50 Adam steps from pinv(y) "
                                         "(white dots in restoration_set12.png)",
    "DAPS (50 annealing x 2 ODE steps)": "a tenth of DAPS-1K's network calls; one sample keeps the σ_y noise on the "
                                         "observed pixels (τ = 0.01 trusts the data 5× more than σ_y = 0.05)",
    "MCG (paper: 1000 steps)": "0.16 dB below. Its last projection sets the 75 % observed pixels to the noisy y: "
                               "that noise alone (σ_y = 0.025 on the PSNR's [0, 1] scale) is 0.75·0.025² = 4.7e-4 of "
                               "the ≈ 6.0e-3 MSE its PSNR implies (≈ 0.35 dB); the same "
                               "gradient without the projection (DPS-1000) reaches 24.11. The DPS paper (Chung et al. "
                               "2023) drops this strict projection precisely for noisy data",
    "EnKG (512 particles, 20 steps)": "a quarter of the released ensemble (2048) and of its 80 steps. "
                                      "Each update moves a particle only within the span of the ensemble's deviations "
                                      "(at most N − 1 directions for 4096 pixels), so the ensemble size bounds the data "
                                      "fit: doubling it gains 0.38 dB, doubling again 0.19 dB on 70 % random (next rows)",
    "EnKG (1024 particles, 20 steps)": "0.20 dB below on 70 % random (4 of 12 images above TV); box 1.68 ± 0.61 dB "
                                       "below (paired s.e. over the 12 images; 2 above TV), 0.73 dB above 512 particles",
    "EnKG (2048 particles, 20 steps)": "a tie on 70 % random: 0.005 dB below, paired difference −0.00 ± 0.31 dB "
                                       "(s.e. over the 12 images), 6 of 12 images above TV, SSIM 0.741 vs 0.769; the "
                                       "gain per doubling halved (0.38 → 0.19 dB). Box not run at 2048 particles",
    "EnKG (512 particles, 30 steps)": "more steps instead of more particles: 2.1× the 20-step row's network calls "
                                      "moved box PSNR by −0.34 ± 0.33 dB (paired s.e.; 4 of 12 images better), SSIM "
                                      "0.653 → 0.695; doubling the particles instead gave +0.73 ± 0.35 dB (8 of 12)",
}


def crop_note(crop: int) -> str:
    """Where the ``crop``² images come from (``set12(256)`` crops the 512² images 08–12 at their
    top-right quadrant)."""
    lo, hi = (256 - crop) // 2, (256 - crop) // 2 + crop - 1
    return (f"the centre {crop}² of each `set12()` 256² crop, i.e. rows and columns {lo}–{hi} of the 256² images "
            f"01–07, and rows {lo}–{hi}, columns {256 + lo}–{256 + hi} of the 512² images 08–12, whose 256² crop is "
            f"the top-right quadrant")


# Solvers left out of the table, and why.
NOT_RUN = {
    "EnKG at its released budget (enkg preset)": "2048 particles × 1588 network calls each (80 steps) is "
        "12 × 2048 × 1588 ≈ 39 M denoiser calls per task: ≈ 64 min per task at the 10 200 images/s this denoiser "
        "ran at on an H200 (fp32, batch 6144). On a 2-core CPU even "
        "64 particles × 20 steps took ≈ 80 min per task",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--solvers", nargs="*", default=DEFAULT_SOLVERS)
    parser.add_argument("--tasks", nargs="*", default=None, help="a subset of the tasks (default: all)")
    parser.add_argument("--merge", action="store_true", help="update the cells of the existing results JSON")
    parser.add_argument("--seed-per-image", action="store_true",
                        help="solve image i alone with seed i (rows labelled so): one solve of all images gives "
                             "image i's sample the same noise as every other image's, which couples the images")
    parser.add_argument("--render", action="store_true",
                        help="only rewrite the .md table from the results JSON (e.g. after editing REMARKS)")
    parser.add_argument("--device", default="cpu", help="where the prior and the solvers run (e.g. cuda); the "
                        "measurements are simulated on the CPU, so every device sees the same y")
    parser.add_argument("--posterior-mean", type=int, default=None, metavar="K",
                        help="score the mean of K posterior samples per image instead of one sample (rows "
                             "labelled '…, mean of K')")
    parser.add_argument("--max-batch", type=int, default=None,
                        help="at most this many images per network call (Prior.max_batch; e.g. EnKG with 2048 "
                             "particles × 12 images on one GPU)")
    parser.add_argument("--results", type=Path, default=None,
                        help=f"folder of restoration_set12.{{json,md,png}} (default {RESULTS})")
    parser.add_argument("--merge-from", type=Path, nargs="*", default=None, metavar="JSON",
                        help="copy the cells and runs measured elsewhere (those that name their device, e.g. "
                             "a GPU run's --results) into the results JSON, then rewrite the table")
    args = parser.parse_args(argv)
    folder = args.results or RESULTS
    path = folder / "restoration_set12.json"
    if args.render or args.merge_from:
        results = json.loads(path.read_text())
        for other in args.merge_from or []:
            _merge_device_cells(results, json.loads(other.read_text()))
        if args.merge_from:
            path.write_text(json.dumps(results, indent=2))
        _write_table(results, args, folder)
        return 0
    torch.manual_seed(0)
    n = args.crop
    full = set12()[: args.images]
    c = (full.shape[-1] - n) // 2
    truth = full[..., c : c + n, c : c + n].contiguous()
    prior = get_prior("natural-gray").to(args.device)
    prior.max_batch = args.max_batch
    figure = {}
    # --merge: start from the stored cells and overwrite those this run measures; the JSON is
    # rewritten after every cell, so an interrupted run keeps what it finished.
    results = json.loads(path.read_text()) if args.merge and path.is_file() else {}
    previous = {task: dict(row) for task, row in results.items() if not task.startswith("_")}
    command = "python benchmarks/restoration_set12.py " + " ".join(
        f'"{a}"' if " " in a else a for a in (sys.argv[1:] if argv is None else argv))
    run_entry = {"command": command.strip(), "device": _device_name(args.device), "minutes": 0.0}
    results.setdefault("_runs", []).append(run_entry)
    seconds_before = results.get("_seconds", 0.0)
    t_all = time.perf_counter()
    lpips = lpips_metric()  # None (one notice) without torchvision's AlexNet weights in the torch cache

    def save() -> None:
        run_entry["minutes"] = (time.perf_counter() - t_all) / 60
        results["_seconds"] = seconds_before + time.perf_counter() - t_all
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2))

    for task, (operator, task_presets) in tasks(n).items():
        if args.tasks is not None and task not in args.tasks:
            continue
        operator = operator.to(prior.dtype)  # the blur's kernel is built in float64
        problem = Problem.simulate(operator, truth, Gaussian(SIGMA_Y), generator=torch.Generator().manual_seed(0))
        figure[task] = {"truth": truth[0], "pinv": _pinv_or_adjoint(operator, problem.measurement)[0]}
        row = results.setdefault(task, {})
        if "psnr_per_image" in previous.get(task, {}).get("TV (oracle λ)", {}):
            # --merge: the TV baseline is deterministic and already in the results; reuse it (a
            # cell from before per-image PSNRs were recorded is recomputed)
            row["TV (oracle λ)"] = previous[task]["TV (oracle λ)"]
            print(f"{task} | TV reused from the results JSON", flush=True)
        else:
            row["TV (oracle λ)"], figure[task]["TV (oracle λ)"] = _tv_row(operator, problem.measurement, truth, lpips)
            print(f"{task} | TV λ={row['TV (oracle λ)']['lambda']} | {row['TV (oracle λ)']['psnr']:.2f}", flush=True)
        problem = problem.to(args.device)  # the TV baseline above runs on the CPU
        for label, preset, overrides in SOLVERS:
            if label not in args.solvers:
                continue
            if args.posterior_mean:
                label = f"{label}, mean of {args.posterior_mean}"
            if args.seed_per_image and not preset.startswith("deepinv:"):
                label = f"{label}, seed per image"
            try:
                if preset.startswith("deepinv:"):
                    out = run_deepinv(preset.split(":")[1], problem, prior, task_presets, **overrides)
                else:
                    solver = get_solver(task_presets[preset[1:]] if preset.startswith("@") else preset, **overrides)
                    if args.seed_per_image:
                        out = solve_each(solver, problem, prior, num_samples=args.posterior_mean or 1)
                    else:
                        out = solver.solve(problem, prior, num_samples=args.posterior_mean or 1, generator=0,
                                           progress=False)
            except UnsupportedProblemError as err:
                row[label] = {"refused": str(err), "device": run_entry["device"]}
                print(f"{task} | {label} | refused: {err}", flush=True)
                save()
                continue
            x = (out.samples.mean(1) if args.posterior_mean else out.samples[:, 0]).clamp(-1, 1).cpu()
            per_image = psnr(x, truth)
            row[label] = {"psnr": per_image.mean().item(), "ssim": ssim(x, truth).mean().item(),
                          "nfe": out.nfe, "seconds": out.seconds, "psnr_per_image": per_image.tolist(),
                          "device": run_entry["device"]}
            if lpips is not None:
                row[label]["lpips"] = lpips(x, truth).mean().item()
            figure[task][label] = x[0]
            print(f"{task} | {label} | {row[label]['psnr']:.2f} dB | {out.seconds:.0f} s", flush=True)
            save()
        save()
    _write_table(results, args, folder)
    if not args.merge:
        _plot(figure, folder)
    return 0


def run_deepinv(kind: str, problem, prior, task_presets: dict, num_steps: int = 250):
    """deepinv 0.5's ``DPS``, ``DiffPIR`` or ``DDRM`` on our prior, each in the units it expects
    (``to_deepinv_denoiser``): a :class:`SolveResult`-like object with one sample per image."""
    import types

    import deepinv

    from invprob.operators import Inpainting, to_deepinv
    from invprob.priors.deepinv_bridge import to_deepinv_denoiser
    from invprob.sampling import ddim_sigmas

    y, op = problem.measurement, problem.operator
    physics = to_deepinv(op)
    torch.manual_seed(0)  # DiffPIR and DDRM draw from the global generator
    start = time.perf_counter()
    if kind == "dps":  # [-1, 1] throughout (minus_one_one=False), clip of x̂0 to [-1, 1]
        sampler = deepinv.sampling.DPS(to_deepinv_denoiser(prior), num_steps=num_steps, dtype=torch.float32,
                                       device=y.device, rng=torch.Generator(y.device).manual_seed(0),
                                       minus_one_one=False)
        x, nfe = sampler(y, physics, x_init=(len(y), *op.x_shape), seed=0), num_steps
    elif kind == "diffpir":  # [0, 1] images: u = (x + 1)/2, y_u = (y + A 1)/2, σ_u = σ_y/2, λ_deepinv = λ / 2
        # (its prox of γ/2‖Au − y‖², γ = 1/(2ρ), weighs ‖u − x̂0‖² by 2ρ where ours weighs it by ρ)
        config = registry_preset(task_presets["diffpir"])
        physics.noise_model = deepinv.physics.GaussianNoise(SIGMA_Y / 2)
        sampler = deepinv.sampling.DiffPIR(to_deepinv_denoiser(prior, unit_range=True),
                                           deepinv.optim.data_fidelity.L2(), sigma=SIGMA_Y / 2,
                                           max_iter=config["num_steps"], lambda_=config["lambda_"] / 2,
                                           zeta=config["zeta"], device=y.device)
        ones = torch.ones((1, *op.x_shape), dtype=y.dtype, device=y.device)
        x, nfe = 2 * sampler((y + op(ones)) / 2, physics) - 1, config["num_steps"]
    else:  # DDRM as written, [-1, 1], on deepinv's Inpainting (a DecomposablePhysics)
        if not isinstance(op, Inpainting):
            raise UnsupportedProblemError("deepinv's DDRM needs a DecomposablePhysics; only inpainting is one here")
        inpainting = deepinv.physics.Inpainting(img_size=op.x_shape, mask=op.mask.to(y.dtype),
                                                noise_model=deepinv.physics.GaussianNoise(SIGMA_Y), device=y.device)
        sampler = deepinv.sampling.DDRM(to_deepinv_denoiser(prior), sigmas=ddim_sigmas(20)[:-1])
        x, nfe = sampler(y, inpainting), 20
    seconds = time.perf_counter() - start
    return types.SimpleNamespace(samples=x.detach()[:, None], nfe=nfe, seconds=seconds)


def registry_preset(name: str) -> dict:
    """The keyword arguments of solver preset ``name``."""
    from invprob.registry import load_preset

    return {k: v for k, v in load_preset("solvers", name).items() if not k.startswith("_")}


def _merge_device_cells(results: dict, other: dict) -> None:
    """Copy into ``results`` the cells of ``other`` that name their device and the runs it adds.
    Every cell measured by this script records its device; cells from before that (the
    first CPU runs) do not, so the copies of them that a ``--merge`` run starts from stay out."""
    for task, row in other.items():
        if task.startswith("_"):
            continue
        for label, cell in row.items():
            if "device" in cell:
                results.setdefault(task, {})[label] = cell
    known = {_run_key(r) for r in results.get("_runs", [])}
    for run in other.get("_runs", []):
        if "device" in run and _run_key(run) not in known:
            known.add(_run_key(run))
            results.setdefault("_runs", []).append(run)


def _run_key(run: dict) -> tuple:
    """What identifies a run when merging: its command without the ``--results`` folder (a
    device's output folder, rewritten in the committed JSON) and its device."""
    words = shlex.split(run["command"])
    kept = [w for k, w in enumerate(words) if w != "--results" and (k == 0 or words[k - 1] != "--results")]
    return tuple(kept), run.get("device")


def _device_name(device: str) -> str:
    """'2-core CPU'-style label of where a run happened (the GPU's own name on CUDA)."""
    if str(device).startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU, {torch.get_num_threads()} threads"


def _tv_row(operator, y, truth, lpips=None):
    """TV with the oracle λ: the best mean PSNR over the grid; ``(row, first image)``."""
    best = None
    for lam in (0.001, 0.003, 0.01, 0.03, 0.1):
        x = tv_baseline(operator, y, lam)
        score = psnr(x, truth).mean().item()
        if best is None or score > best[0]:
            best = (score, lam, x)
    row = {"psnr": best[0], "ssim": ssim(best[2], truth).mean().item(), "lambda": best[1], "nfe": 0,
           "psnr_per_image": psnr(best[2], truth).tolist(), "device": _device_name("cpu")}
    if lpips is not None:
        row["lpips"] = lpips(best[2], truth).mean().item()
    return row, best[2][0]


def _pinv_or_adjoint(operator, y):
    return operator.pinv(y) if operator.has_pinv else operator.adjoint(y)


def _write_table(results: dict, args, folder: Path) -> None:
    runs = results.get("_runs", [])
    results = {k: v for k, v in results.items() if not k.startswith("_")}
    methods = list(dict.fromkeys(m for row in results.values() for m in row))
    lines = ["| method | " + " | ".join(results) + " | vs TV on inpainting |", "|---|" + "---|" * (len(results) + 1)]
    for m in methods:
        cells, below = [], []
        for task in results:
            r = results[task].get(m, {})
            cells.append(f"refused (needs {r['refused'].split(';')[0].split(' needs ')[-1]})" if "refused" in r else
                         f"{r['psnr']:.2f} / {r['ssim']:.3f}" + (f" / {r['lpips']:.3f}" if "lpips" in r else "")
                         if r else "—")
            tv = results[task].get("TV (oracle λ)")
            if "inpainting" in task and "psnr" in r and tv and r["psnr"] <= tv["psnr"]:
                below.append(task.replace("inpainting ", ""))
        ran = [t for t in results if "inpainting" in t and "psnr" in results[t].get(m, {})]
        verdict = ("" if m.startswith("TV") or not ran else
                   f"below on {', '.join(below)}: {REMARKS.get(m, 'see README')}" if below else "beats TV")
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {verdict} |")
    text = (f"Set12 {args.crop}² crops ({args.images} images: {crop_note(args.crop)}), prior `natural-gray`, σ_y = {SIGMA_Y}, "
            "one posterior sample per image (seed 0); mean PSNR (dB) / SSIM (/ LPIPS, AlexNet, where the run had "
            "torchvision's AlexNet weights). TV: deepinv PGD + `TVPrior`, "
            "200 iterations, λ per task from {0.001, 0.003, 0.01, 0.03, 0.1} by the best mean PSNR against the "
            "truth (an oracle choice that favours the baseline). Produced by (where, and wall minutes):\n\n"
            + "\n".join(f"- `{r['command']}` ({r.get('device', 'CPU, 2 threads')}"
                         + (f", via `{r['via']}`" if r.get("via") else "")
                         + (f", {r['minutes']:.0f} min" if r.get("minutes") else "")
                         + (f"; {r['note']}" if r.get("note") else "") + ")" for r in runs)
            + "\n\nFigure: `restoration_set12.png` (first image, rows of the first run).\n\n"
            + "\n".join(lines) + "\n\nNot run: " + " ".join(f"{k}: {v}" for k, v in NOT_RUN.items()) + "\n")
    (folder / "restoration_set12.md").write_text(text)
    print(text)


def _plot(figure: dict, folder: Path) -> None:
    image_grid(figure, folder / "restoration_set12.png")


if __name__ == "__main__":
    raise SystemExit(main())
