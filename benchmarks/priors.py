"""Denoising quality of every shipped prior on held-apart images, and sample grids.

What it measures: for σ ∈ {0.05, 0.1, 0.2, 0.5, 1.0} (images in [-1, 1]), the mean PSNR of the
noisy input and of the prior's MMSE denoiser output ``prior.denoise(x + σ n, σ)`` on the
images the prior was not trained on (:func:`invprob.evaluation.held_apart`; noise from a
generator seeded 0), and an unconditional sample grid (4×4 samples, EDM Euler probability-flow
ODE, 32 steps; :func:`invprob.training.sample_unconditional`). The table also lists each prior's
objective, parameter count and training steps from its ``config.json``. ``--exported`` scores
priors exported from a training run on the same images and noise draws instead. A latent prior
(``brain-mri-latent``) is scored in its latent space: the noise is added to the encoded image
``E(x)`` (σ in latent units; the latents are scaled to standard deviation σ_data = 0.5, the
images' scale) and both PSNRs are of decoded images; its autoencoder's reconstruction PSNR
``PSNR(D(E(x)), x)`` is listed beside (what the decoder alone recovers of each image).

Commands of the committed results (``benchmarks/results/``; CPU; the shared data found through
``$INVPROB_DATA``):

* ``priors.md`` and ``prior_<name>_samples.png`` (mnist, mnist-flow, natural-gray, brain-mri):
  ``python benchmarks/priors.py --num-images 64``
* ``priors_exported.md`` and ``prior_<name>_<folder>_samples.png``: ``python benchmarks/priors.py
  --num-images 64 --exported natural-gray=<folder> brain-mri=<folder>`` with the folders of the
  CPU-recipe training runs (``benchmarks/gpu/train_priors.sh`` with ``RECIPE=cpu``; the exact
  command, with its folders, heads the file).
* ``priors_dncnn.{json,md}``: ``python benchmarks/priors.py --dncnn --storage float16 bfloat16`` (add
  ``--exported natural-gray=<folder>`` to score a trained run beside the shipped priors).

``--dncnn``: the MMSE denoiser ``prior.denoise(y, σ)`` of the natural-image priors on the 12
full-size Set12 images (seven 256², five 512²) at σ = 15, 25, 50 out of 255, scored as DnCNN's
MATLAB test scripts score (cszn/DnCNN): ``y = x + σ/255 · n`` on images in [0, 1], not clipped;
PSNR of the output clipped to [0, 1] and rounded to 8 bits (``im2uint8``) against the 8-bit truth;
the mean over the 12 images. One noise draw per image and σ (generator seeded with image index
and σ), the same for every prior. Beside: the published Set12 means of DnCNN-S (one network per
σ), DnCNN-B (one blind network for σ ∈ [0, 55]; both trained on train400) and BM3D (Zhang et al.
2017, "Beyond a Gaussian denoiser", Table III). The priors' denoisers are told σ. ``--no-shipped``
scores only the ``--exported`` runs; ``--results DIR`` writes the files there instead;
``--storage float16 bfloat16`` adds the shipped ``natural-gray`` with its weights rounded to each
type (what a half-precision export stores), with or without ``--no-shipped``.

Usage: python benchmarks/priors.py [--priors mnist ...] [--num-images 64] [--exported NAME=FOLDER ...]
       python benchmarks/priors.py --dncnn [--exported natural-gray=FOLDER ...] [--no-shipped] [--device cuda]
                                   [--results DIR] [--storage float16 bfloat16]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from invprob.evaluation import HELD_APART, held_apart, psnr
from invprob.io import save_image
from invprob.priors import Prior
from invprob.priors.shipped import WEIGHTS
from invprob.registry import get_prior
from invprob.training import sample_unconditional

SIGMAS = (0.05, 0.1, 0.2, 0.5, 1.0)
# Set12 mean PSNR (dB) at sigma = 15, 25, 50 (/255): Zhang et al. 2017 (DnCNN), Table III.
PUBLISHED_SET12 = {"DnCNN-S": {15: 32.86, 25: 30.44, 50: 27.18}, "DnCNN-B": {15: 32.68, 25: 30.36, 50: 27.21},
                   "BM3D": {15: 32.37, 25: 29.97, 50: 26.72}}
DNCNN_SIGMAS = (15, 25, 50)
SAMPLE_SHAPE = {"natural-gray": (1, 64, 64), "natural-gray-flow": (1, 64, 64)}  # fully convolutional: sample 64×64 patches
RESULTS = Path(__file__).resolve().parent / "results"


@torch.no_grad()
def evaluate(name: str, num_images: int, seed: int = 0, prior: Prior | None = None,
             samples_png: Path | None = None) -> tuple[dict[float, tuple[float, float]], int]:
    """Denoising PSNR of prior ``name`` (or of ``prior``, scored on ``name``'s held-apart images):
    ``({σ: (noisy PSNR, denoised PSNR)}, number of images)``; writes the sample grid."""
    prior = get_prior(name) if prior is None else prior
    clean = held_apart(name)[:num_images]
    g = torch.Generator().manual_seed(seed)
    latent = hasattr(prior, "image_shape")
    decode = prior.decode if latent else (lambda v: v)  # noqa: E731
    target = prior.encode(clean) if latent else clean
    rows = {}
    for sigma in SIGMAS:
        noisy = target + sigma * torch.randn(target.shape, generator=g)
        denoised = prior.denoise(noisy, sigma)
        rows[sigma] = (psnr(decode(noisy), clean).mean().item(), psnr(decode(denoised), clean).mean().item())
    if latent:
        rows["reconstruction"] = psnr(prior.decode(target), clean).mean().item()
    if prior.x_shape is None:
        prior.x_shape = SAMPLE_SHAPE[name]
    samples = decode(sample_unconditional(prior, 16, seed=seed))
    C, H, W = samples.shape[1:]
    grid = samples.reshape(4, 4, C, H, W).permute(2, 0, 3, 1, 4).reshape(C, 4 * H, 4 * W)
    save_image(grid, samples_png or RESULTS / f"prior_{name}_samples.png")
    return rows, clean.shape[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--priors", nargs="*", default=list(HELD_APART))
    parser.add_argument("--num-images", type=int, default=64)
    parser.add_argument("--exported", nargs="*", default=None, metavar="NAME=FOLDER",
                        help="score exported priors (e.g. a CPU-recipe run) on NAME's held-apart images instead; "
                             "writes results/priors_exported.md")
    parser.add_argument("--dncnn", action="store_true",
                        help="the natural-image priors' denoisers on full-size Set12 at sigma 15/25/50 (/255) beside "
                             "DnCNN's published numbers; writes results/priors_dncnn.{json,md}")
    parser.add_argument("--no-shipped", action="store_true", help="--dncnn: score only the --exported runs")
    parser.add_argument("--device", default="cpu", help="--dncnn: where the denoisers run")
    parser.add_argument("--results", type=Path, default=RESULTS, help="--dncnn: folder of priors_dncnn.{json,md}")
    parser.add_argument("--storage", nargs="*", default=[], choices=("float16", "bfloat16"),
                        help="--dncnn: also score natural-gray with its weights rounded to these types")
    args = parser.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    if args.dncnn:
        return _dncnn_table(args.exported or [], not args.no_shipped, args.device, args.results, argv, args.storage)
    if args.no_shipped or args.device != "cpu" or args.results != RESULTS or args.storage:
        parser.error("--no-shipped, --device, --results and --storage go with --dncnn")
    if args.exported:
        return _score_exported(args.exported, args.num_images)
    lines = ["| prior | held-apart images | " + " | ".join(f"σ={s}: noisy → denoised (dB)" for s in SIGMAS) + " |",
             "|---|---|" + "---|" * len(SIGMAS)]
    start = time.perf_counter()
    for name in args.priors:
        rows, n = evaluate(name, args.num_images)
        cells = " | ".join(f"{rows[s][0]:.2f} → {rows[s][1]:.2f}" for s in SIGMAS)
        recon = (f" (latent σ; autoencoder reconstruction {rows['reconstruction']:.2f} dB)"
                 if "reconstruction" in rows else "")
        lines.append(f"| `{name}` | {n} {HELD_APART[name]}{recon} | {cells} |")
        print(lines[-1], flush=True)
    lines += ["", "| prior | objective | parameters | training steps | how it was trained |", "|---|---|---|---|---|"]
    for name in args.priors:
        config = json.loads((WEIGHTS / name / "config.json").read_text())
        training = config["training"]
        n = sum(p.numel() for p in get_prior(name).parameters())
        lines.append(f"| `{name}` | {config['objective']} | {n / 1e6:.2f} M | {training.get('steps_done')} | "
                     f"{training.get('note', 'CPU, `invprob train` with the settings in its config.json')} |")
    text = (f"`python benchmarks/priors.py --num-images {args.num_images}` ({time.perf_counter() - start:.0f} s, CPU). "
            f"PSNR on images in [-1, 1] mapped to [0, 1]; mean over the held-apart images "
            f"(σ is in [-1, 1] units: σ = 0.1 is 12.75/255 on a [0, 255] scale).\n\n" + "\n".join(lines) + "\n")
    (RESULTS / "priors.md").write_text(text)
    print(text)
    return 0


def _score_exported(specs: list[str], num_images: int) -> int:
    from invprob.priors.shipped import load_shipped

    lines = ["| prior | folder | steps | " + " | ".join(f"σ={s}" for s in SIGMAS) + " |", "|---|---|---|" + "---|" * len(SIGMAS)]
    for spec in specs:
        name, _, folder = spec.partition("=")
        if name not in HELD_APART or not folder:
            raise SystemExit(f"--exported: expected NAME=FOLDER with NAME one of {sorted(HELD_APART)}, got {spec!r}")
        folder = Path(folder)
        prior = load_shipped(folder.name, folder=folder, fully_convolutional=name.startswith("natural-gray"))
        rows, _ = evaluate(name, num_images, prior=prior, samples_png=RESULTS / f"prior_{name}_{folder.name}_samples.png")
        steps = json.loads((folder / "config.json").read_text())["training"].get("steps_done")
        cells = " | ".join(f"{rows[s][0]:.2f} → {rows[s][1]:.2f}" for s in SIGMAS)
        lines.append(f"| `{name}` | {folder} | {steps} | {cells} |")
        print(lines[-1], flush=True)
    header = (f"`python benchmarks/priors.py --num-images {num_images} --exported {' '.join(specs)}`: denoising "
              "PSNR (noisy → denoised, dB) on the held-apart images and noise draws of `priors.md`.\n\n")
    (RESULTS / "priors_exported.md").write_text(header + "\n".join(lines) + "\n")
    return 0


@torch.no_grad()
def dncnn_protocol(prior: Prior, images: list[torch.Tensor], sigma255: int, device: str = "cpu") -> list[float]:
    """PSNR (dB) per image of ``prior``'s MMSE denoiser at noise σ = ``sigma255``/255 under DnCNN's
    test protocol (see the module docstring); ``images``: ``(1, 1, H, W)`` each, in [-1, 1]."""
    out = []
    for i, x in enumerate(images):
        truth = torch.floor((x.double() + 1) / 2 * 255 + 0.5) / 255  # the 8-bit image in [0, 1]
        g = torch.Generator().manual_seed(1000 * sigma255 + i)
        y = truth + sigma255 / 255 * torch.randn(truth.shape, generator=g, dtype=torch.float64)
        # [0, 1] -> the prior's [-1, 1]: the noise std doubles.
        denoised = prior.denoise((2 * y - 1).float().to(device), 2 * sigma255 / 255).double().cpu()
        estimate = torch.floor(((denoised + 1) / 2).clamp(0, 1) * 255 + 0.5) / 255  # im2uint8: halves round up
        mse = ((estimate - truth) ** 2).mean()
        out.append(float(10 * torch.log10(1 / mse)))
    return out


def _steps(folder: Path) -> str:
    """The training steps of the prior in ``folder``, with those of the export it was warm-started from."""
    config = json.loads((folder / "config.json").read_text())
    steps, init = config["training"].get("steps_done"), config.get("init_from")
    return f"{steps} after {init['steps_done']} (warm start)" if init else str(steps)


def _dncnn_table(specs: list[str], shipped: bool, device: str, results: Path, argv: list[str] | None,
                 storage: list[str] = ()) -> int:
    import platform
    import shlex
    import sys

    from invprob.datasets import image_files
    from invprob.io import load_image
    from invprob.priors.shipped import load_shipped

    images = [load_image(p) for p in image_files("set12", progress=False)]
    priors: dict[str, tuple[Prior, str]] = {}
    for name in ("natural-gray", "natural-gray-flow") if shipped else ():
        priors[f"`{name}`"] = (get_prior(name), _steps(WEIGHTS / name))
    for dtype in storage:  # the shipped natural-gray with its weights rounded to a half-precision type
        prior = get_prior("natural-gray")
        with torch.no_grad():
            for param in prior.parameters():
                param.copy_(param.to(getattr(torch, dtype)).float())
        priors[f"`natural-gray`, weights rounded to {dtype}"] = (prior, _steps(WEIGHTS / "natural-gray"))
    for spec in specs:
        name, _, folder = spec.partition("=")
        if not name.startswith("natural-gray") or not folder:
            raise SystemExit(f"--exported with --dncnn: expected natural-gray=FOLDER, got {spec!r}")
        folder = Path(folder)
        priors[f"`{folder}`"] = (load_shipped(folder.name, folder=folder, fully_convolutional=True), _steps(folder))
    if not priors:
        raise SystemExit("--dncnn --no-shipped: name the runs to score with --exported natural-gray=FOLDER")
    start = time.perf_counter()
    rows = {}
    for label, (prior, steps) in priors.items():
        prior.to(device)
        per_sigma = {s: dncnn_protocol(prior, images, s, device) for s in DNCNN_SIGMAS}
        params = sum(p.numel() for p in prior.parameters())
        rows[label] = {"parameters": params, "steps": steps, "per_image": per_sigma,
                       "mean": {s: sum(v) / len(v) for s, v in per_sigma.items()}}
        print(label, {s: round(m, 2) for s, m in rows[label]["mean"].items()}, flush=True)
    command = "python benchmarks/priors.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    meta = {"command": command, "machine": f"{platform.machine()}, {device}, torch {torch.__version__}",
            "date": time.strftime("%Y-%m-%d"), "seconds": round(time.perf_counter() - start)}
    results.mkdir(parents=True, exist_ok=True)
    (results / "priors_dncnn.json").write_text(json.dumps({"meta": meta, "rows": rows,
                                                           "published": PUBLISHED_SET12}, indent=1))
    lines = [f"`{command}` ({meta['machine']}, {meta['date']}, {meta['seconds']} s). The MMSE denoiser "
             "of each natural-image prior on the 12 full-size Set12 images under DnCNN's test protocol "
             "(noise on [0, 1] images, output clipped and rounded to 8 bits; see `benchmarks/priors.py`). "
             "Mean PSNR (dB); the priors' denoisers are told σ; the published rows are Zhang et al. 2017, "
             "Table III (DnCNN-S: one network per σ; DnCNN-B: one blind network for σ ≤ 55).", "",
             "| denoiser | parameters | training steps | σ = 15 | σ = 25 | σ = 50 |", "|---|---|---|---|---|---|"]
    for label, row in rows.items():
        lines.append(f"| {label} | {row['parameters'] / 1e6:.2f} M | {row['steps']} | "
                     + " | ".join(f"{row['mean'][s]:.2f}" for s in DNCNN_SIGMAS) + " |")
    for name, values in PUBLISHED_SET12.items():
        lines.append(f"| {name} (published) | | | " + " | ".join(f"{values[s]:.2f}" for s in DNCNN_SIGMAS) + " |")
    (results / "priors_dncnn.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
