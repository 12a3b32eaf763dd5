"""The default reconstructions (``make demo`` / ``invprob demo``).

``invprob demo`` (no arguments): 4×-accelerated single-coil MRI (random Cartesian lines, 8 %
fully sampled centre) of brain slice 36 (held apart from the ``brain-mri`` prior's training set,
shipped in ``invprob/examples_data``) with complex k-space noise of σ_y = 0.02 per real and
imaginary part (its SNR in physical terms: ``benchmarks/results/demo_sweep.md``). Solved with
MMPS at its paper preset (``mmps``: 64 steps, one conjugate-gradient iteration, 65 network calls
per sample), 4 posterior samples, beside the zero-filled image and total variation with
λ = 0.008 (TV's λ for this noise level, picked on slices 31–35). The solver, its budget and the
sample count come from the sweep ``benchmarks/demo_sweep.py`` at this noise level. It runs the
``invprob solve`` application, so every Hydra override works (``invprob demo solver=dps
num_samples=8``). Writes to ``outputs/demo-mri``.

``invprob demo mnist-gmm [--out DIR ...]``: two small demos,

1. A real network: a held-apart MNIST digit (shipped example) seen through 70 % random
   inpainting with σ_y = 0.05, reconstructed by DAPS with the shipped ``mnist`` prior
   (the DAPS-1K preset: 200 annealing levels × 5 ODE steps).
2. The exact check: an 8×8 image from 50 % of its pixels under the Gaussian-mixture
   test-bed prior, DPS's posterior mean, spread and samples beside the exact posterior.

Writes ``figure.png`` / ``metrics.json`` (GMM) and ``mnist_figure.png`` / ``mnist_metrics.json``
to ``--out`` (default ``outputs/demo``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ..evaluation import testbed
from ..evaluation.metrics import coverage, posterior_mean_error, sliced_wasserstein, sliced_wasserstein_floor
from ..registry import get_solver
from .report import atomic_write, figure


EXAMPLES = Path(__file__).resolve().parents[1] / "examples_data"
# benchmarks/demo_sweep.py: the solver setting and samples at σ_y 0.02; TV's λ picked on slices 31-35 at that noise
MRI_DEMO = ["prior=brain-mri", "operator=mri-4x-brain128", "solver=mmps", "num_samples=4",
            "noise_sigma=0.02", "tv_lambda=0.008", "seed=0", "skip_done=false", "hydra.run.dir=outputs/demo-mri"]


def main(argv: list[str] | None = None) -> int:
    argv = list(argv or [])
    if argv[:1] == ["mnist-gmm"]:
        return mnist_gmm_main(argv[1:])
    from .solve import main as solve_main

    example = EXAMPLES / "brain_slice36_128.npy"
    return solve_main(MRI_DEMO + [f"input={example}"] + argv)


def mnist_gmm_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="invprob demo mnist-gmm", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="outputs/demo")
    parser.add_argument("--solver", default="dps-gmm-tuned")
    parser.add_argument("--num-samples", type=int, default=200)
    parser.add_argument("--num-steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--gmm-only", action="store_true", help="skip the MNIST network demo")
    parser.add_argument("--mnist-steps", type=int, default=200)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.gmm_only:
        _mnist_demo(out, args)

    prior, problem, x_true = testbed.make_problem("inpainting", seed=args.seed)
    overrides = {"num_steps": args.num_steps} if args.num_steps else {}
    solver = get_solver(args.solver, **overrides)
    result = solver.solve(problem, prior, num_samples=args.num_samples, generator=args.seed,
                          progress=not args.quiet)
    samples = result.samples[0]
    post = prior.posterior(problem)
    g = torch.Generator().manual_seed(args.seed)
    exact = post.sample(args.num_samples, g)[0]
    floor = sliced_wasserstein_floor(lambda n, gen: post.sample(n, gen)[0], args.num_samples, generator=g).item()
    sw2 = sliced_wasserstein(samples, exact, generator=g).item()
    metrics = {
        "problem": "GMM test bed, 50% random inpainting, 1x8x8, sigma_y=0.05",
        "solver": args.solver, "num_samples": args.num_samples,
        "sw2": sw2, "sw2_floor": floor, "sw2_ratio": sw2 / floor,
        "posterior_mean_rmse": posterior_mean_error(samples, post.mean()[0]).item(),
        "truth_rmse_of_mean": (samples.mean(0) - x_true[0]).pow(2).mean().sqrt().item(),
        "coverage90": coverage(samples, exact, 0.9).item(),
        "nfe_per_sample": result.nfe, "operator_calls": result.operator_calls, "seconds": result.seconds,
    }
    _figure(out / "figure.png", problem, x_true[0], samples, exact, post.mean()[0])
    atomic_write(out / "metrics.json", json.dumps(metrics, indent=2).encode())
    print(f"demo: SW2/floor = {metrics['sw2_ratio']:.2f} ({args.solver}, {result.nfe} NFE, "
          f"{result.seconds:.1f}s)\nfigure:  {out / 'figure.png'}\nmetrics: {out / 'metrics.json'}")
    return 0


def _mnist_demo(out: Path, args) -> None:
    import numpy as np

    from .. import noise
    from ..evaluation.metrics import psnr, ssim
    from ..operators import Inpainting
    from ..problem import Problem
    from ..registry import get_prior

    truth = torch.from_numpy(np.load(EXAMPLES / "mnist_9503.npy"))
    prior = get_prior("mnist")
    operator = Inpainting((1, 32, 32), kind="random", missing=0.7, seed=args.seed)
    problem = Problem.simulate(operator, truth, noise.Gaussian(0.05), generator=torch.Generator().manual_seed(args.seed))
    solver = get_solver("daps", num_steps=args.mnist_steps)
    result = solver.solve(problem, prior, num_samples=4, generator=args.seed, progress=not args.quiet)
    samples = result.samples
    mean, std = samples.mean(1), samples.std(1)
    metrics = {"problem": "MNIST test image 9503 (held apart), 70% random inpainting, sigma_y=0.05",
               "prior": "mnist (shipped)", "solver": f"daps, num_steps={args.mnist_steps}",
               "psnr_mean": psnr(mean, truth).item(), "ssim_mean": ssim(mean, truth).item(),
               "psnr_zero_filled": psnr(problem.measurement, truth).item(),
               "nfe_per_sample": result.nfe, "seconds": result.seconds}
    panels = [("truth", truth[0]), ("measurement", problem.measurement[0]), ("posterior mean", mean[0]),
              ("posterior std", std[0])] + [(f"sample {k}", samples[0, k]) for k in range(min(3, samples.shape[1]))]
    figure(out / "mnist_figure.png", panels, prior.data_range)
    atomic_write(out / "mnist_metrics.json", json.dumps(metrics, indent=2).encode())
    print(f"demo (MNIST, DAPS): PSNR of the posterior mean {metrics['psnr_mean']:.2f} dB "
          f"(zero-filled {metrics['psnr_zero_filled']:.2f} dB), {result.seconds:.0f}s\n"
          f"figure:  {out / 'mnist_figure.png'}\nmetrics: {out / 'mnist_metrics.json'}")


def _figure(path: Path, problem, x_true, samples, exact, exact_mean) -> None:
    """Truth, the observed pixels (unobserved ones blue), exact and sampled mean and std, samples."""
    A = problem.operator.A
    observed = torch.full((A.shape[1],), float("nan"), dtype=A.dtype)
    observed[A.argmax(1)] = problem.measurement[0]
    panels = [("truth", x_true), ("measurement (50 %)", observed.reshape(x_true.shape)),
              ("exact mean", exact_mean), ("sampler mean", samples.mean(0)),
              ("exact std", exact.std(0)), ("sampler std", samples.std(0))]
    panels += [(f"sample {k}", samples[k]) for k in range(min(3, len(samples)))]
    figure(path, [(title, img.cpu()) for title, img in panels], (-1.2, 1.2), std_max=exact.std(0).max().item(),
           panel_width=2.0, dpi=120)


if __name__ == "__main__":
    raise SystemExit(main())
