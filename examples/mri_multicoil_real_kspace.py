"""
Multi-coil MRI from real k-space
================================

Real 8-coil brain k-space (the SigPy tutorial scan, Poisson-disc undersampled about 8×, no
fully sampled ground truth exists) reconstructed three ways:

* root-sum-of-squares of the zero-filled coil images;
* CG-SENSE (Pruessmann et al. 2001): least squares with coil maps estimated from the fully
  sampled k-space centre (:func:`~invprob.operators.estimate_coil_maps`);
* the posterior of the shipped ``brain-mri`` prior (DAPS): mean and standard deviation.

The prior was trained on 128² slices of other subjects, so the k-space is cropped to its
central 128 × 100 (same field of view, the prior's pixel size). The prior lives in [-1, 1]
with a black background at -1, while k-space measures an image ``m ≥ 0``; with ``m = s (x +
1) / 2`` and a linear ``A``, ``y = A m`` becomes ``2 y / s − A(1) = A x``: the example maps
the measurement to the prior's units exactly so. Without ground truth, the data-consistency
residual ``‖A x − y‖ / ‖y‖`` is reported.

Run ``python examples/mri_multicoil_real_kspace.py [path/to/kspace.npy]``: any ``(coils, H,
W)`` complex array with centred k-space.
"""
import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from invprob import Problem, noise
from invprob.datasets import dataset_path
from invprob.operators import MultiCoilMRI, estimate_coil_maps
from invprob.registry import get_prior, get_solver

parser = argparse.ArgumentParser(description="multi-coil MRI of real k-space: RSS, CG-SENSE, diffusion posterior")
parser.add_argument("kspace", nargs="?", default=None,
                    help="(coils, H, W) complex .npy, centred (default: the SigPy 8-coil brain scan)")
parser.add_argument("--crop", type=int, nargs=2, default=[128, 100], help="central k-space crop (each divisible by 4)")
parser.add_argument("--solver", default="daps-mri-demo")
parser.add_argument("--num-samples", type=int, default=4)
parser.add_argument("--quick", action="store_true", help="a few steps only (tests, docs)")
parser.add_argument("--out", default="outputs/examples")
args = parser.parse_args()

# 1. Real k-space, cropped at the centre; the mask is where samples were acquired.
path = args.kspace or dataset_path("brain-8coil-kspace", "cartesian_ksp.npy")
kspace = torch.from_numpy(np.load(path, allow_pickle=False)).to(torch.complex64)
H, W = kspace.shape[-2:]
edge = torch.cat([kspace[:, :8].flatten(), kspace[:, -8:].flatten()])  # outermost k-space rows: mostly noise
h, w = args.crop
kspace = kspace[:, (H - h) // 2 : (H - h) // 2 + h, (W - w) // 2 : (W - w) // 2 + w]
mask = (kspace.abs().sum(0) > 0).float()
print(f"{kspace.shape[0]} coils, {h}x{w} k-space, {1 / mask.mean():.1f}x undersampled in the crop")

# 2. Coil maps from the calibration region, the SENSE operator on real images x (B, 1, h, w).
maps = estimate_coil_maps(kspace, calib_size=20)
operator = MultiCoilMRI(mask, maps, image_mode="magnitude")
y_raw = kspace[None]                                        # (1, coils, h, w)
rss = torch.fft.ifftshift(torch.fft.ifft2(torch.fft.fftshift(kspace, dim=(-2, -1)), norm="ortho"),
                          dim=(-2, -1)).abs().pow(2).sum(0).sqrt()
cg, _ = operator.cg_sense(y_raw, num_iters=10 if args.quick else 30)

# 3. To the prior's units: m = s (x + 1) / 2 with s the CG-SENSE image's 99th percentile.
s = torch.quantile(cg.flatten(), 0.99).item()
y = 2 * y_raw / s - operator(torch.ones(1, 1, h, w))
sigma = max(2 * edge[edge.abs() > 0].real.std().item() / s, 0.01)    # floor: model error, not only noise
problem = Problem(operator, y, noise.Gaussian(sigma))
print(f"scale s = {s:.3g}, noise std in prior units {sigma:.3f}")

# 4. The posterior.
prior = get_prior("brain-mri", fully_convolutional=True)   # any size divisible by 4
solver = get_solver(args.solver, **({"num_steps": 5} if args.quick else {}))
result = solver.solve(problem, prior, num_samples=2 if args.quick else args.num_samples, generator=0)
samples = (result.samples[0] + 1) * s / 2                    # back to the scanner's units
mean, std = samples.mean(0)[0], samples.std(0)[0]


def residual(image: torch.Tensor) -> float:
    return ((operator(image[None, None]) - y_raw).norm() / y_raw.norm()).item()


print(f"data residual ||A x - y|| / ||y||: CG-SENSE {residual(cg[0, 0]):.3f}, posterior mean {residual(mean):.3f}; "
      f"{result.nfe} network calls per sample, {result.seconds:.0f} s")

# 5. Figure.
panels = {"RSS zero-filled": rss, "CG-SENSE": cg[0, 0], f"{args.solver} mean": mean, "posterior std": std,
          "mask": mask}
fig, axes = plt.subplots(1, len(panels), figsize=(2.3 * len(panels), 3))
for ax, (title, image) in zip(axes, panels.items()):
    ax.imshow(image.numpy(), cmap="magma" if title == "posterior std" else "gray",
              vmin=0, vmax=None if title in ("posterior std", "mask") else s)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
Path(args.out).mkdir(parents=True, exist_ok=True)
fig.savefig(Path(args.out) / "mri_multicoil_real_kspace.png", bbox_inches="tight", dpi=120)
