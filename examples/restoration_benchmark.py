"""
A restoration benchmark: images × tasks × solvers
=================================================

The pattern every restoration table follows: a folder of images, a few degradations, a few
solvers, one PSNR / SSIM / LPIPS table and a grid of figures. Here: centre crops of Set12
(or any folder given with ``--images``) with the shipped ``natural-gray`` prior, Gaussian
deblurring, 4× super-resolution and 70 % random inpainting with σ_y = 0.05, DiffPIR (its
official deblurring settings, and its inpainting settings for inpainting) and DDNM+, one
posterior sample per image, beside a total-variation baseline. LPIPS needs the AlexNet weights in
the torch cache (downloaded once when online); without them the column is left out with a
notice.

Copy it and change ``TASKS`` and ``--solvers``: every solver preset (``invprob list``) runs
on the same step API. The table is written as Markdown beside the figure.
"""
import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from invprob import Problem, noise
from invprob.datasets import dataset_path
from invprob.errors import UnsupportedProblemError
from invprob.evaluation import lpips_metric, psnr, ssim, tv_baseline
from invprob.io import load_image
from invprob.operators import GaussianBlur, Inpainting, SuperResolution
from invprob.registry import get_prior, get_solver

parser = argparse.ArgumentParser(description="images x tasks x solvers -> PSNR/SSIM/LPIPS table and figure grid")
parser.add_argument("--images", default=None, help="folder of images (default: Set12)")
parser.add_argument("--num-images", type=int, default=3)
parser.add_argument("--crop", type=int, default=64, help="centre crop size (divisible by 4)")
parser.add_argument("--solvers", nargs="+", default=["diffpir", "ddnm"])
parser.add_argument("--quick", action="store_true", help="a few steps only (tests, docs)")
parser.add_argument("--out", default="outputs/examples")
args = parser.parse_args()

n = args.crop
TASKS = {  # name: (operator, TV weight λ: a fixed value per task; tune it on images outside your test set)
    "deblur": (GaussianBlur(kernel_size=25, std=2.0, padding="circular", x_shape=(1, n, n)), 0.01),
    "4x SR": (SuperResolution(factor=4, x_shape=(1, n, n), kind="bicubic"), 0.01),
    "inpaint 70%": (Inpainting((1, n, n), kind="random", missing=0.7, seed=0), 0.05),
}
TASK_PRESETS = {"inpaint 70%": {"diffpir": "diffpir-inpainting"}}  # a solver's own preset for a task

# Images: grayscale, centre crops, [-1, 1].
folder = Path(args.images) if args.images else dataset_path("set12")
files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".bmp", ".tif"))
images = []
for f in files[: 1 if args.quick else args.num_images]:
    x = load_image(f)
    top, left = (x.shape[-2] - n) // 2, (x.shape[-1] - n) // 2
    images.append(x[..., top : top + n, left : left + n])
truth = torch.cat(images)                                 # (M, 1, n, n): one measurement per image

prior = get_prior("natural-gray")
lpips = lpips_metric()                                    # None without the AlexNet weights (a notice is printed)
table, grid = {}, {}
for task, (operator, lam) in TASKS.items():
    operator = operator.to(prior.dtype)                   # the blur kernel is built in float64
    problem = Problem.simulate(operator, truth, noise.Gaussian(0.05), generator=torch.Generator().manual_seed(0))
    outputs = {"TV": tv_baseline(operator, problem.measurement, lam, 20 if args.quick else 200)}
    for name in args.solvers:
        solver = get_solver(TASK_PRESETS.get(task, {}).get(name, name), **({"num_steps": 5} if args.quick else {}))
        try:  # a solver refuses, at its start, an operator it cannot handle (e.g. DDNM+ needs an SVD)
            result = solver.solve(problem, prior, num_samples=1, generator=0, progress=False)
        except UnsupportedProblemError as err:
            print(f"{task}, {name}: skipped ({err})")
            continue
        outputs[name] = result.samples[:, 0]              # one posterior sample per image
        print(f"{task:>12}, {name}: {result.nfe} NFE, {result.seconds:.0f} s")
    for name, x in outputs.items():
        row = {"PSNR": psnr(x, truth).mean().item(), "SSIM": ssim(x, truth).mean().item()}
        if lpips is not None:
            row["LPIPS"] = lpips(x, truth).mean().item()
        table[(task, name)] = row
    y = problem.measurement
    grid[task] = {"measurement": y if y.shape == truth.shape else operator.pinv(y),
                  **outputs}

# The table, in Markdown.
columns = list(next(iter(table.values())))
lines = ["| task | method | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
lines += [f"| {task} | {name} | " + " | ".join(f"{v:.3f}" if k != "PSNR" else f"{v:.2f}" for k, v in row.items()) + " |"
          for (task, name), row in table.items()]
print("\n".join(lines))
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
(out / "restoration_benchmark.md").write_text(f"{len(truth)} images, {n}x{n} crops, sigma_y = 0.05\n\n"
                                              + "\n".join(lines) + "\n")

# The figure: one row per task, the first image.
names = ["truth"] + list(next(iter(grid.values())))
fig, axes = plt.subplots(len(grid), len(names), figsize=(2 * len(names), 2.1 * len(grid)), squeeze=False)
for r, (task, outputs) in enumerate(grid.items()):
    for c, name in enumerate(names):
        image = truth if name == "truth" else outputs.get(name)
        axes[r, c].axis("off")
        if image is None:
            continue
        axes[r, c].imshow(image[0, 0].clamp(-1, 1), cmap="gray", vmin=-1, vmax=1)
        axes[r, c].set_title(f"{task}: {name}" if c == 0 else name, fontsize=8)
fig.savefig(out / "restoration_benchmark.png", bbox_inches="tight", dpi=120)
