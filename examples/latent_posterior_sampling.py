"""
Posterior sampling in a latent space
====================================

A latent diffusion prior models ``z = E(x)``, the code of an autoencoder, instead of the image:
the shipped ``brain-mri-latent`` is an ``AutoencoderKL`` (4× down-sampling, 2 latent channels)
with an EDM UNet on its 2×32×32 latents of 128² brain slices. The measurement stays in image
space, ``y = A(D(z)) + n``: a latent solver takes the same :class:`~invprob.Problem` as a pixel
solver and the latent prior in place of the pixel one.

Here, 70 % random inpainting of a held-apart slice (36) with noise σ = 0.05, solved by three
latent solvers at their paper presets: PSLD (``psld``, 1000 steps, with its gluing term), STSL
(``stsl``, 50 steps, second-order Tweedie) and Latent DAPS (``latent-daps-inpainting-random``,
the official config for this task). Each reports the PSNR of its posterior mean, its network
calls (NFE) and its decoder calls per sample. The autoencoder's round trip ``D(E(x))`` of the
truth is shown beside them as a reference, not a bound: the mean of several decoded samples is
not itself a decoded image and can come closer to the truth.

From the command line: ``invprob solve prior=brain-mri-latent operator=inpainting-random
solver=stsl``. The same comparison on four tasks, with pixel DPS and DAPS:
``benchmarks/results/latent_restoration_cpu.md``.
"""
import argparse
from importlib.resources import files
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from invprob import Problem, noise
from invprob.evaluation import psnr, ssim
from invprob.operators import Inpainting
from invprob.registry import get_prior, get_solver

parser = argparse.ArgumentParser(description="latent posterior sampling: PSLD, STSL and Latent DAPS")
parser.add_argument("--num-samples", type=int, default=2)
parser.add_argument("--quick", action="store_true", help="a few steps only (tests, docs)")
parser.add_argument("--out", default="outputs/examples", help="folder of the figure")
args = parser.parse_args()

# 1. A held-apart brain slice (128², [-1, 1]) seen through 70 % random inpainting.
truth = torch.from_numpy(np.load(str(files("invprob.examples_data") / "brain_slice36_128.npy"))).float()
operator = Inpainting((1, 128, 128), kind="random", missing=0.7, seed=0)
problem = Problem.simulate(operator, truth, noise.Gaussian(0.05), generator=torch.Generator().manual_seed(0))

# 2. The latent prior, and what its autoencoder alone makes of the truth.
prior = get_prior("brain-mri-latent")
with torch.no_grad():
    reconstruction = prior.decode(prior.encode(truth))

# 3. Three latent solvers on the same problem: K samples each, their mean and std.
presets = {"PSLD": "psld", "STSL": "stsl", "Latent DAPS": "latent-daps-inpainting-random"}
rows = {}
for name, preset in presets.items():
    solver = get_solver(preset, **({"num_steps": 5} if args.quick else {}))
    result = solver.solve(problem, prior, num_samples=args.num_samples, generator=0)
    samples = result.samples[0]                           # (K, 1, 128, 128), decoded images
    rows[name] = samples.mean(0, keepdim=True).clamp(-1, 1), samples.std(0, keepdim=True)
    print(f"{name:>12}: PSNR {psnr(rows[name][0], truth).item():5.2f} dB, SSIM {ssim(rows[name][0], truth).item():.3f}; "
          f"{result.nfe} NFE and {result.decoder_calls} decoder calls per sample; {result.seconds:.0f} s for "
          f"{args.num_samples} samples")
print(f"{'D(E(truth))':>12}: PSNR {psnr(reconstruction, truth).item():5.2f} dB (the autoencoder's round trip)")

# 4. Figure: the truth, the measurement, the autoencoder's round trip, each solver's mean and std.
panels = {"truth": truth, "measurement (30 % of pixels)": problem.measurement,
          f"D(E(truth))\n{psnr(reconstruction, truth).item():.2f} dB": reconstruction}
for name, (mean, std) in rows.items():
    panels[f"{name} mean\n{psnr(mean, truth).item():.2f} dB"] = mean
    panels[f"{name} std"] = std
fig, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels), 2.8))
for ax, (title, image) in zip(axes, panels.items()):
    heat = title.endswith("std")
    ax.imshow(image[0, 0], cmap="magma" if heat else "gray", vmin=None if heat else -1, vmax=None if heat else 1)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
Path(args.out).mkdir(parents=True, exist_ok=True)
fig.savefig(Path(args.out) / "latent_posterior_sampling.png", bbox_inches="tight", dpi=120)
