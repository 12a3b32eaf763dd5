"""
Fourier phase retrieval: several runs, aligned over the ambiguities
===================================================================

Fourier phase retrieval measures only the magnitude ``|F(pad(x))|`` of an image's
oversampled Fourier transform. The posterior is multimodal: besides the truth, the 180°
rotation (and, for images that may change sign, the sign flip) give the same data, and
between them lie local optima. Solvers are therefore run several times, and each result is
scored against the truth *after* alignment over these trivial ambiguities
(:func:`~invprob.evaluation.aligned_rmse`).

Here, on held-apart MNIST digits with the shipped ``mnist`` prior (DAPS's convention
``|F(pad(x/2 + 1/2))|``, 2× oversampling, σ_y = 0.05), K independent runs of each:

* **DAPS** (``daps-phase-retrieval``, the official task configuration, 1000 network calls
  per run);
* **DPS** (``dps-phase-retrieval``, ζ = 1 of the official task configuration, 1000 steps).

``tempered-smc`` (likelihood tempering with resampling and Langevin moves) reaches the
multimodal posterior of the exact test bed (``docs/results``), but it needs a large population:
at the 64 particles a CPU affords here its Langevin moves do not mix on the network prior and it
returns noise, so it is not part of this example's defaults (``--smc`` adds it).
"""
import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from invprob import Problem, noise
from invprob.datasets import load_mnist
from invprob.evaluation import aligned_rmse
from invprob.operators import PhaseRetrieval
from invprob.registry import get_prior, get_solver

parser = argparse.ArgumentParser(description="phase retrieval on MNIST: DAPS and DPS (--smc: tempered SMC), several runs")
parser.add_argument("--digit", type=int, default=9503, help="MNIST test index (9500+ are held apart)")
parser.add_argument("--runs", type=int, default=8)
parser.add_argument("--smc", action="store_true", help="also run tempered SMC (64 particles)")
parser.add_argument("--quick", action="store_true", help="a few steps only (tests, docs)")
parser.add_argument("--out", default="outputs/examples")
args = parser.parse_args()

truth = load_mnist(32)[args.digit : args.digit + 1] * 2 - 1          # (1, 1, 32, 32) in [-1, 1]
operator = PhaseRetrieval((1, 32, 32), oversampling=2.0, unit_range=True)
problem = Problem.simulate(operator, truth, noise.Gaussian(0.05), generator=torch.Generator().manual_seed(0))
prior = get_prior("mnist")
runs = 2 if args.quick else args.runs

quick = {"num_steps": 5} if args.quick else {}
solvers = {"DAPS": get_solver("daps-phase-retrieval", **quick), "DPS": get_solver("dps-phase-retrieval", **quick)}
if args.smc:
    solvers["tempered SMC"] = get_solver("tempered-smc", num_particles=max(64, runs), num_steps=5 if args.quick else 20,
                                         langevin_steps=2 if args.quick else 10, prior_steps=10 if args.quick else 100)
aligned, errors = {}, {}
for name, solver in solvers.items():
    result = solver.solve(problem, prior, num_samples=runs, generator=0)
    samples = result.samples[0]                                     # (runs, 1, 32, 32)
    errors[name] = aligned_rmse(samples, truth[0], images=operator.trivial_images)
    candidates = operator.trivial_images(samples)                   # (4, runs, 1, 32, 32), the sample first
    best = (candidates - truth).flatten(2).pow(2).mean(-1).argmin(0)
    aligned[name] = candidates[best, torch.arange(runs)]
    psnrs = 20 * torch.log10(2 / errors[name])                     # data range 2 ([-1, 1])
    print(f"{name:>13}: aligned PSNR per run {[round(p, 1) for p in psnrs.tolist()]}; "
          f"median {psnrs.median():.1f} dB, best {psnrs.max():.1f} dB; {result.nfe} network calls, "
          f"{result.seconds:.0f} s")

# Figure: truth and log-magnitude data, then each solver's runs after alignment, best first.
fig, axes = plt.subplots(len(solvers), runs + 1, figsize=(1.6 * (runs + 1), 1.8 * len(solvers)), squeeze=False)
for r, name in enumerate(solvers):
    first = truth[0, 0] if r == 0 else problem.measurement[0, 0].clamp_min(1e-3).log()
    axes[r, 0].imshow(first, cmap="gray")
    axes[r, 0].set_title("truth" if r == 0 else "log |y|", fontsize=8)
    for c, k in enumerate(errors[name].argsort().tolist(), start=1):
        axes[r, c].imshow(aligned[name][k, 0].clamp(-1, 1), cmap="gray", vmin=-1, vmax=1)
        axes[r, c].set_title(f"{name}\n{20 * torch.log10(2 / errors[name][k]):.1f} dB", fontsize=7)
    for ax in axes[r]:
        ax.axis("off")
Path(args.out).mkdir(parents=True, exist_ok=True)
fig.savefig(Path(args.out) / "phase_retrieval.png", bbox_inches="tight", dpi=120)
