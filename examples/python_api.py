"""
From your own script
====================

The whole Python API in one screen: an operator, a shipped prior, a solver, ``solve``, and
the posterior mean and standard deviation of a held-apart MNIST digit seen through 70 %
random inpainting.
"""
import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from invprob import Problem, noise
from invprob.datasets import load_mnist
from invprob.operators import Inpainting
from invprob.registry import get_prior, get_solver

parser = argparse.ArgumentParser(description="the Python API: MNIST inpainting with DAPS")
parser.add_argument("--quick", action="store_true", help="a few steps only (tests, docs)")
parser.add_argument("--out", default="outputs/examples", help="folder of the figure")
args = parser.parse_args()

x = load_mnist(32)[9503:9504] * 2 - 1                 # a test digit the prior never saw, in [-1, 1]
prior = get_prior("mnist")                            # shipped EDM prior, 1x32x32
operator = Inpainting((1, 32, 32), kind="random", missing=0.7, seed=0)
problem = Problem.simulate(operator, x, noise.Gaussian(0.05), generator=torch.Generator().manual_seed(0))
solver = get_solver("daps", num_steps=10 if args.quick else 200)   # DAPS-1K, fewer levels in --quick
result = solver.solve(problem, prior, num_samples=8, generator=0)  # samples: (M, K, 1, 32, 32)

mean, std = result.samples.mean(1)[0, 0], result.samples.std(1)[0, 0]
print(f"{result.nfe} network calls per sample, {result.seconds:.1f} s")
panels = {"truth": x[0, 0], "measurement": problem.measurement[0, 0], "posterior mean": mean, "posterior std": std}
fig, axes = plt.subplots(1, 4, figsize=(10, 2.8))
for ax, (title, image) in zip(axes, panels.items()):
    ax.imshow(image, cmap="gray" if title != "posterior std" else "magma")
    ax.set_title(title)
    ax.axis("off")
Path(args.out).mkdir(parents=True, exist_ok=True)
fig.savefig(Path(args.out) / "python_api.png", bbox_inches="tight")
