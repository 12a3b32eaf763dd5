"""
Single-coil MRI with an uncertainty map
=======================================

Accelerated single-coil MRI of a brain slice the shipped ``brain-mri`` prior never saw
(slices 36–40 are held apart from its training): Cartesian lines or radial spokes at 4× or
8×, complex Gaussian noise in k-space. Three reconstructions side by side:

* **zero-filled**: the adjoint, what the scanner gives without a model;
* **total variation**: the classical compressed-sensing baseline (deepinv's proximal
  gradient), its weight λ chosen on a *training* slice, never on the test slice;
* **diffusion posterior**: MMPS at its paper preset ``mmps``, the demo's solver (or any solver
  preset), and the ``brain-mri`` prior; the mean of K samples is the estimate, their standard deviation
  the uncertainty map. Whether that uncertainty can be trusted: the fraction of pixels whose
  truth lies in the 90 % interval ``mean ± 1.645 std`` (a Gaussian approximation, as K is
  small; ≈ 0.9 when it can), and the correlation between the std and the error of the mean
  (:func:`invprob.evaluation.std_error_correlation`).

The noise default, σ = 0.02 per real and imaginary part of the k-space, the solver and the
number of samples are those of ``invprob demo`` (``benchmarks/demo_sweep.py``); TV's λ is picked
here on slice 35 alone.

Run ``python examples/mri_reconstruction.py --mask radial --acceleration 8``.
"""
import argparse
import math
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from invprob import Problem, noise
from invprob.datasets import load_images
from invprob.evaluation import psnr, ssim, std_error_correlation, tv_baseline
from invprob.operators import MRI, mri_mask
from invprob.registry import get_prior, get_solver

parser = argparse.ArgumentParser(description="single-coil MRI: zero-filled, TV and a diffusion posterior")
parser.add_argument("--slice", type=int, default=36, help="brain slice 1-40 (36-40 are held apart from training)")
parser.add_argument("--mask", choices=["cartesian", "radial"], default="cartesian")
parser.add_argument("--acceleration", type=int, choices=[4, 8], default=4)
parser.add_argument("--solver", default="mmps", help="any solver preset (`invprob list`)")
parser.add_argument("--num-samples", type=int, default=4)
parser.add_argument("--noise", type=float, default=0.02, help="k-space noise std, image units [-1, 1]")
parser.add_argument("--quick", action="store_true", help="a few steps only (tests, docs)")
parser.add_argument("--out", default="outputs/examples")
args = parser.parse_args()
SIZE = 128  # the shipped prior's image size


def radial_mask(size: int, acceleration: int) -> torch.Tensor:
    """Spokes through the k-space centre at equal angles, as many as sample 1/acceleration of it."""
    t = torch.linspace(-size / math.sqrt(2), size / math.sqrt(2), 4 * size)
    for spokes in range(2, 4 * size):
        mask = torch.zeros(size, size)
        for angle in torch.arange(spokes) * math.pi / spokes:
            rows = (size / 2 + t * torch.sin(angle)).round().long()
            cols = (size / 2 + t * torch.cos(angle)).round().long()
            keep = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
            mask[rows[keep], cols[keep]] = 1
        if mask.mean() >= 1 / acceleration:
            return mask
    raise ValueError(f"no radial mask reaches acceleration {acceleration}")


# 1. Data: the 40 brain slices at the prior's size, [-1, 1]; the test slice and a training slice.
slices, _ = load_images("brain-mri", 0, resize=SIZE)
truth, tuning = slices[args.slice - 1 : args.slice], slices[34:35]  # slice 35 only picks TV's λ
if args.slice <= 35:
    print(f"note: slice {args.slice} is in the prior's training set (1-35); 36-40 are held apart")

# 2. The forward model: a k-space mask, the orthonormal FFT, noise of std `--noise`.
mask = (mri_mask((SIZE, SIZE), "random", args.acceleration, center_fraction=0.08) if args.mask == "cartesian"
        else radial_mask(SIZE, args.acceleration))
operator = MRI(mask, image_mode="magnitude")
gen = torch.Generator().manual_seed(0)
problem = Problem.simulate(operator, truth, noise.Gaussian(args.noise), generator=gen)
print(f"{args.mask} mask, {1 / mask.mean():.1f}x acceleration, {int(mask.sum())} of {SIZE * SIZE} k-space samples")

# 3. Baselines: zero-filled, and TV with λ picked on the training slice (same mask and noise).
zero_filled = operator.adjoint(problem.measurement).clamp(-1, 1)
iters = 20 if args.quick else 200
y_tuning = noise.Gaussian(args.noise).sample(operator(tuning), generator=gen)
lams = [0.003, 0.01, 0.03] if args.quick else [0.001, 0.003, 0.01, 0.03, 0.1]
lam = max(lams, key=lambda lam: psnr(tv_baseline(operator, y_tuning, lam, iters), tuning).item())
tv = tv_baseline(operator, problem.measurement, lam, iters)

# 4. The diffusion posterior: K samples, their mean, std and the coverage of the truth.
prior = get_prior("brain-mri")
solver = get_solver(args.solver, **({"num_steps": 5} if args.quick else {}))
result = solver.solve(problem, prior, num_samples=2 if args.quick else args.num_samples, generator=0)
samples = result.samples[0]                                  # (K, 1, 128, 128)
mean, std = samples.mean(0, keepdim=True), samples.std(0, keepdim=True)
cov90 = ((truth - mean).abs() <= 1.645 * std).float().mean().item()
corr = std_error_correlation(std, mean.clamp(-1, 1) - truth).item()  # the error PSNR scores

rows = {"zero-filled": zero_filled, f"TV (λ={lam:g})": tv, f"{args.solver} mean": mean}
for name, image in rows.items():
    print(f"{name:>22}: PSNR {psnr(image, truth).item():6.2f} dB  SSIM {ssim(image, truth).item():.3f}")
print(f"90 % interval coverage of the truth: {cov90:.2f}, std-error correlation {corr:.2f} ({samples.shape[0]} samples); "
      f"{result.nfe} network calls per sample, {result.seconds:.0f} s")

# 5. Figure: the three reconstructions, the uncertainty and the error it should track.
panels = {"truth": truth, "mask": mask[None, None] * 2 - 1, **rows,
          "posterior std": std, "|mean - truth|": (mean - truth).abs()}
fig, axes = plt.subplots(1, len(panels), figsize=(2.4 * len(panels), 2.8))
for ax, (title, image) in zip(axes, panels.items()):
    heat = title in ("posterior std", "|mean - truth|")
    ax.imshow(image[0, 0], cmap="magma" if heat else "gray", vmin=None if heat else -1, vmax=None if heat else 1)
    label = title if heat or title in ("truth", "mask") else f"{title}\n{psnr(image, truth).item():.2f} dB"
    ax.set_title(label, fontsize=9)
    ax.axis("off")
fig.suptitle(f"slice {args.slice}, {args.mask} {args.acceleration}x, 90 % coverage {cov90:.2f}, "
             f"std-error correlation {corr:.2f}", fontsize=10)
Path(args.out).mkdir(parents=True, exist_ok=True)
fig.savefig(Path(args.out) / f"mri_{args.mask}_{args.acceleration}x.png", bbox_inches="tight", dpi=120)
