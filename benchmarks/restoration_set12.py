"""Restoration on real images: Set12 crops with the shipped ``natural-gray`` prior.

Tasks (images in [-1, 1], σ_y = 0.05 as in DPS/DAPS): Gaussian deblurring, 4× bicubic
super-resolution, 70 % random inpainting and box inpainting, on the centre 64×64 crops of the
12 Set12 images (CPU budget: a 64² crop costs 1/16 of a 256² image). The operators follow the
DPS/DAPS tasks, scaled to the crop: blur std 2 px with a 25×25 kernel and reflect padding (DPS:
3 px, 61×61 on 256² images), a centred 32×32 box (DAPS: 128×128 on 256²).

Solvers run with reduced step counts so that the whole table fits a 2-core CPU; each row
names its NFE. The classical baseline is TV-regularised least squares (deepinv's PGD with
``TVPrior``, 200 iterations) with λ chosen per task by the best mean PSNR over a grid — an
oracle choice that favours the baseline. One posterior sample per image, seed 0; the table
reports mean PSNR / SSIM over the 12 crops.

Usage: python benchmarks/restoration_set12.py [--images 12] [--crop 64]
Writes benchmarks/results/restoration_set12.{md,json,png}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from invprob import Problem
from invprob.errors import UnsupportedProblemError
from invprob.metrics import psnr, ssim
from invprob.noise import Gaussian
from invprob.operators import GaussianBlur, Inpainting, SuperResolution
from invprob.registry import get_prior, get_solver

sys.path.insert(0, str(Path(__file__).resolve().parent))
from priors import _set12_held_apart  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SIGMA_Y = 0.05


def tasks(n: int) -> dict:
    """task -> (operator, per-task presets of the solvers that have them: DPS's ζ, DAPS's lr)."""
    shape = (1, n, n)
    return {
        "deblur (Gaussian)": (GaussianBlur(kernel_size=25, std=2.0, padding="reflect", x_shape=shape),
                              {"dps": "dps-deblur", "daps": "daps"}),
        "4x SR (bicubic)": (SuperResolution(factor=4, x_shape=shape, kind="bicubic"),
                            {"dps": "dps-super-resolution", "daps": "daps"}),
        "inpainting 70% random": (Inpainting(shape, kind="random", missing=0.7, seed=0),
                                  {"dps": "dps-inpainting", "daps": "daps"}),
        "inpainting box": (Inpainting(shape, kind="box", box_size=(n // 2, n // 2)),
                           {"dps": "dps-inpainting", "daps": "daps-inpainting-box"}),
    }


# (row label, preset, overrides); a preset "@family" is the task's own preset of that family
# (DPS: the per-task ζ of its official configs; DAPS: the per-task Langevin lr).
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
    # EnKG at a reduced budget: 64 particles (the paper's 2048 is ~1000x the cost of any row here)
    # and 20 outer steps (126 network calls per particle instead of 1588); γ as released.
    # About 80 CPU-min per task on 2 cores (not in the committed table): a GPU row.
    ("EnKG (64 particles, 20 steps)", "enkg", {"ensemble_size": 64, "num_steps": 20}),
]
DEFAULT_SOLVERS = [label for label, _, _ in SOLVERS[:4]]
# Why a diffusion solver does not beat the TV baseline on an inpainting task (shown in the table).
REMARKS: dict[str, str] = {
    "DPS (250 steps)": "a quarter of the paper's steps with the ζ tuned for 1000 (the paper's 1000 steps beat TV on both)",
    "MCG (250 steps)": "a quarter of the paper's 1000 steps (CPU budget)",
    "RED-Diff (paper preset, 50 steps)": "isolated missing pixels keep outlier values after 50 Adam steps from pinv(y) "
                                         "(white dots in restoration_set12.png)",
    "DAPS (50 annealing x 2 ODE steps)": "a tenth of DAPS-1K's network calls; one sample keeps the σ_y noise on the "
                                         "observed pixels (τ = 0.01 trusts the data 5× more than σ_y = 0.05)",
    "MCG (paper: 1000 steps)": "0.16 dB below. Its last projection sets the 75 % observed pixels to the noisy y: "
                               "that noise alone (σ_y = 0.025 on the PSNR's [0, 1] scale) is 0.75·0.025² = 4.7e-4 of "
                               "the ≈ 6.0e-3 MSE its PSNR implies (≈ 0.35 dB); the same "
                               "gradient without the projection (DPS-1000) reaches 24.11. The DPS paper (Chung et al. "
                               "2023) drops this strict projection precisely for noisy data",
}
# Solvers left out of the table, and why.
NOT_RUN = {
    "EnKG (enkg preset, or 64 particles x 20 steps)": "derivative-free with an ensemble of 2048 particles × 1588 network calls each (no "
                          "backward): about 3.3 M forward passes per image against ~3000 forward-equivalents for a "
                          "DPS-1000 sample, i.e. ~1000× the table's most expensive row — beyond a 2-core CPU. Even the "
                          "CPU-budget row \"EnKG (64 particles, 20 steps)\" (126 network calls per particle, 768 "
                          "particles per batch for 12 images) took about 4 min per outer step, ≈ 80 min per task, and "
                          "was stopped after 2 of 20 steps. EnKG is measured on the GMM test bed; the image rows "
                          "need a GPU.",
}


def tv_baseline(operator, y: torch.Tensor, lam: float, iters: int = 200) -> torch.Tensor:
    """argmin ½‖Ax − y‖² + λ TV(x) by deepinv's proximal gradient descent (step 1/‖A‖² = 1)."""
    from deepinv.optim import optim_builder
    from deepinv.optim.data_fidelity import L2
    from deepinv.optim.prior import TVPrior

    from invprob.operators import to_deepinv

    physics = to_deepinv(operator)
    model = optim_builder("PGD", prior=TVPrior(n_it_max=50), data_fidelity=L2(), max_iter=iters,
                          params_algo={"stepsize": 1.0, "lambda": lam}, early_stop=False)
    with torch.no_grad():
        return model(y, physics).clamp(-1, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--solvers", nargs="*", default=DEFAULT_SOLVERS)
    parser.add_argument("--tasks", nargs="*", default=None, help="a subset of the tasks (default: all)")
    parser.add_argument("--merge", action="store_true", help="update the cells of the existing results JSON")
    parser.add_argument("--render", action="store_true",
                        help="only rewrite the .md table from the results JSON (e.g. after editing REMARKS)")
    args = parser.parse_args(argv)
    if args.render:
        results = json.loads((RESULTS / "restoration_set12.json").read_text())
        _write_table(results, args, results.get("_seconds", 0.0))
        return 0
    torch.manual_seed(0)
    n = args.crop
    full = _set12_held_apart()[: args.images]
    c = (full.shape[-1] - n) // 2
    truth = full[..., c : c + n, c : c + n].contiguous()
    prior = get_prior("natural-gray")
    results, figure = {}, {}
    previous = (json.loads((RESULTS / "restoration_set12.json").read_text())
                if args.merge and (RESULTS / "restoration_set12.json").is_file() else {})
    t_all = time.perf_counter()
    for task, (operator, task_presets) in tasks(n).items():
        if args.tasks is not None and task not in args.tasks:
            continue
        problem = Problem.simulate(operator, truth, Gaussian(SIGMA_Y), generator=torch.Generator().manual_seed(0))
        row, figure[task] = {}, {"truth": truth[0], "pinv": _pinv_or_adjoint(operator, problem.measurement)[0]}
        if "TV (oracle λ)" in previous.get(task, {}):
            # --merge: the TV baseline is deterministic and already in the results; reuse it
            row["TV (oracle λ)"] = previous[task]["TV (oracle λ)"]
            print(f"{task} | TV reused from the results JSON", flush=True)
        else:
            row["TV (oracle λ)"], figure[task]["TV (oracle λ)"] = _tv_row(operator, problem.measurement, truth)
            print(f"{task} | TV λ={row['TV (oracle λ)']['lambda']} | {row['TV (oracle λ)']['psnr']:.2f}", flush=True)
        for label, preset, overrides in SOLVERS:
            if label not in args.solvers:
                continue
            solver = get_solver(task_presets[preset[1:]] if preset.startswith("@") else preset, **overrides)
            try:
                out = solver.solve(problem, prior, num_samples=1, generator=0, progress=False)
            except UnsupportedProblemError as err:
                row[label] = {"refused": str(err)}
                print(f"{task} | {label} | refused: {err}", flush=True)
                continue
            x = out.samples[:, 0].clamp(-1, 1)
            per_image = psnr(x, truth)
            row[label] = {"psnr": per_image.mean().item(), "ssim": ssim(x, truth).mean().item(),
                          "nfe": out.nfe, "seconds": out.seconds, "psnr_per_image": per_image.tolist()}
            figure[task][label] = x[0]
            print(f"{task} | {label} | {row[label]['psnr']:.2f} dB | {out.seconds:.0f} s", flush=True)
        results[task] = row
    seconds = time.perf_counter() - t_all
    RESULTS.mkdir(exist_ok=True)
    if args.merge and (RESULTS / "restoration_set12.json").is_file():
        old = json.loads((RESULTS / "restoration_set12.json").read_text())
        for task, row in results.items():
            old.setdefault(task, {}).update(row)
        results, seconds = old, seconds + old.get("_seconds", 0.0)
    results["_seconds"] = seconds
    command = "python benchmarks/restoration_set12.py " + " ".join(
        f'"{a}"' if " " in a else a for a in (sys.argv[1:] if argv is None else argv))
    results.setdefault("_runs", []).append({"command": command.strip(), "minutes": (time.perf_counter() - t_all) / 60})
    (RESULTS / "restoration_set12.json").write_text(json.dumps(results, indent=2))
    _write_table(results, args, seconds)
    if not args.merge:
        _plot(figure)
    return 0


def _tv_row(operator, y, truth):
    """TV with the oracle λ: the best mean PSNR over the grid; ``(row, first image)``."""
    best = None
    for lam in (0.001, 0.003, 0.01, 0.03, 0.1):
        x = tv_baseline(operator, y, lam)
        score = psnr(x, truth).mean().item()
        if best is None or score > best[0]:
            best = (score, lam, x)
    row = {"psnr": best[0], "ssim": ssim(best[2], truth).mean().item(), "lambda": best[1], "nfe": 0}
    return row, best[2][0]


def _pinv_or_adjoint(operator, y):
    return operator.pinv(y) if operator.has_pinv else operator.adjoint(y)


def _write_table(results: dict, args, seconds: float) -> None:
    runs = results.get("_runs", [])
    results = {k: v for k, v in results.items() if not k.startswith("_")}
    methods = list(dict.fromkeys(m for row in results.values() for m in row))
    lines = ["| method | " + " | ".join(results) + " | vs TV on inpainting |", "|---|" + "---|" * (len(results) + 1)]
    for m in methods:
        cells, below = [], []
        for task in results:
            r = results[task].get(m, {})
            cells.append(f"refused (needs {r['refused'].split(';')[0].split(' needs ')[-1]})" if "refused" in r else
                         f"{r['psnr']:.2f} / {r['ssim']:.3f}" if r else "—")
            tv = results[task].get("TV (oracle λ)")
            if "inpainting" in task and "psnr" in r and tv and r["psnr"] <= tv["psnr"]:
                below.append(task.replace("inpainting ", ""))
        ran = [t for t in results if "inpainting" in t and "psnr" in results[t].get(m, {})]
        verdict = ("" if m.startswith("TV") or not ran else
                   f"below on {', '.join(below)}: {REMARKS.get(m, 'see README')}" if below else "beats TV")
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {verdict} |")
    text = (f"Set12 centre {args.crop}² crops ({args.images} images), prior `natural-gray`, σ_y = {SIGMA_Y}, "
            "one posterior sample per image (seed 0); mean PSNR (dB) / SSIM. TV: deepinv PGD + `TVPrior`, "
            "200 iterations, λ per task from {0.001, 0.003, 0.01, 0.03, 0.1} by the best mean PSNR against the "
            "truth (an oracle choice that favours the baseline). Produced on a 2-core CPU by:\n\n"
            + "\n".join(f"- `{r['command']}`" + (f" ({r['minutes']:.0f} min)" if r.get("minutes") else "") for r in runs)
            + "\n\nFigure: `restoration_set12.png` (first image, rows of the first run).\n\n"
            + "\n".join(lines) + "\n\nNot run: " + " ".join(f"{k}: {v}" for k, v in NOT_RUN.items()) + "\n")
    (RESULTS / "restoration_set12.md").write_text(text)
    print(text)


def _plot(figure: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = max(len(v) for v in figure.values())
    fig, axes = plt.subplots(len(figure), cols, figsize=(1.8 * cols, 1.9 * len(figure)), squeeze=False)
    for r, (task, images) in enumerate(figure.items()):
        for c in range(cols):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(images):
                label, img = list(images.items())[c]
                ax.imshow(img[0].numpy(), cmap="gray", vmin=-1, vmax=1)
                ax.set_title(label if r == 0 or c > 1 else label, fontsize=6)
        axes[r][0].text(-0.1, 0.5, task, fontsize=7, rotation=90, va="center", ha="right",
                        transform=axes[r][0].transAxes)
    fig.tight_layout()
    fig.savefig(RESULTS / "restoration_set12.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
