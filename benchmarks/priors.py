"""Denoising quality of every shipped prior on held-apart images, and sample grids.

For σ ∈ {0.05, 0.1, 0.2, 0.5, 1.0} (images in [-1, 1]): mean PSNR of the noisy input and of
the prior's MMSE denoiser output on the held-apart images; plus an unconditional sample
grid (EDM Euler ODE, 32 steps). Writes ``benchmarks/results/priors.md`` and
``benchmarks/results/prior_<name>_samples.png``.

Usage: python benchmarks/priors.py [--priors mnist] [--num-images 64]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from invprob.io import save_image
from invprob.metrics import psnr
from invprob.registry import get_prior
from invprob.training import load_images, sample_unconditional

SIGMAS = (0.05, 0.1, 0.2, 0.5, 1.0)
def _mnist_held_apart():
    return load_images("mnist", 32, holdout=500)[1]  # MNIST test images 9500-9999


HELD_APART = {"mnist": _mnist_held_apart}
RESULTS = Path(__file__).resolve().parent / "results"


@torch.no_grad()
def evaluate(name: str, num_images: int, seed: int = 0) -> dict:
    prior = get_prior(name)
    clean = HELD_APART[name]()[:num_images]
    g = torch.Generator().manual_seed(seed)
    rows = {}
    for sigma in SIGMAS:
        noisy = clean + sigma * torch.randn(clean.shape, generator=g)
        denoised = prior.denoise(noisy, sigma)
        rows[sigma] = (psnr(noisy, clean).mean().item(), psnr(denoised, clean).mean().item())
    samples = sample_unconditional(prior, 16, seed=seed)
    C, H, W = prior.x_shape
    grid = samples.reshape(4, 4, C, H, W).permute(2, 0, 3, 1, 4).reshape(C, 4 * H, 4 * W)
    save_image(grid, RESULTS / f"prior_{name}_samples.png")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--priors", nargs="*", default=list(HELD_APART))
    parser.add_argument("--num-images", type=int, default=64)
    args = parser.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    lines = ["| prior | held-apart images | " + " | ".join(f"σ={s}: noisy → denoised (dB)" for s in SIGMAS) + " |",
             "|---|---|" + "---|" * len(SIGMAS)]
    start = time.perf_counter()
    for name in args.priors:
        rows = evaluate(name, args.num_images)
        cells = " | ".join(f"{rows[s][0]:.2f} → {rows[s][1]:.2f}" for s in SIGMAS)
        lines.append(f"| `{name}` | {args.num_images} | {cells} |")
        print(lines[-1], flush=True)
    text = (f"`python benchmarks/priors.py --num-images {args.num_images}` ({time.perf_counter() - start:.0f} s, CPU). "
            f"PSNR on images in [-1, 1] mapped to [0, 1]; mean over the held-apart images.\n\n" + "\n".join(lines) + "\n")
    (RESULTS / "priors.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
