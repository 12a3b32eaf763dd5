"""The measured sweep behind ``invprob demo``: 4× single-coil brain MRI with the shipped prior.

What it measures, on the brain slices the ``brain-mri`` prior was not trained on (36–40 of the 40
slices, 128², ``mri-4x-brain128``: random Cartesian lines, 8 % fully sampled centre):

* **selection** (slices 38–40): every candidate solver setting at ``--sigma`` with ``--samples``
  posterior samples per slice, each slice solved alone with its own seed
  (:func:`invprob.evaluation.solve_each`). For ``K`` = 1, 2, 4, … samples (the first ``K`` of the
  run: per-sample streams make them those of a ``K``-sample run) it records the PSNR / SSIM of the
  posterior mean, the background error, and the correlation between the posterior std and the
  absolute error of the mean; and the seconds per sample. The rule (:func:`chosen`): the setting
  and ``K`` with the best PSNR whose ``K`` samples take at most :data:`SOLVE_BUDGET` seconds.
* **report** (slices 36–37; 36 is the demo's): the chosen setting and the DAPS preset beside the
  zero-filled image and TV, at every noise level of ``--sigmas``.

Baseline: TV-regularised least squares (:func:`invprob.evaluation.baselines.tv_baseline`, deepinv's
proximal gradient, 200 iterations) with λ chosen per noise level on slices 31–35 (slices no
reported number uses) from a log grid.

Noise, in physical terms: complex Gaussian noise of std σ_y per real and imaginary part on the
sampled k-space (orthonormal FFT). The fully sampled image then carries noise of std σ_y per pixel,
so with intensities ``(x + 1) / 2`` in [0, 1] its SNR, the mean tissue intensity over the noise
std (the usual MR definition), is ``mean_tissue / (σ_y / 2)``; the table prints it per level.

Metrics: PSNR / SSIM of the posterior mean on [-1, 1]; *background RMS*: root-mean-square error
of the mean, in intensity units of [0, 1], over the pixels darker than 0.02 in the truth (the air
around the head and the darkest pixels inside it); *std–error correlation*: Pearson correlation between the posterior std map and the absolute
error of the mean, over pixels and over 8 × 8 blocks (block means).

Usage:
    python benchmarks/demo_sweep.py select [--sigma 0.02] [--samples 8] [--candidates NAME ...]
    python benchmarks/demo_sweep.py report --chosen NAME [--sigmas 0.01 0.02 0.05] [--samples 8]
    python benchmarks/demo_sweep.py demo      # times `invprob demo` itself and records its metrics
    python benchmarks/demo_sweep.py --render

Writes ``benchmarks/results/demo_sweep.{json,md,png}`` (the plot: PSNR against samples on the
selection slices, and against the SNR on the report slices).
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from invprob import Problem
from invprob.datasets import load_images
from invprob.evaluation import psnr, solve_each, ssim, std_error_correlation
from invprob.evaluation.baselines import tv_baseline
from invprob.noise import Gaussian
from invprob.registry import get_operator, get_prior, get_solver

RESULTS = Path(__file__).resolve().parent / "results"
JSON = RESULTS / "demo_sweep.json"
SELECT, REPORT, TV_TUNE = (2, 3, 4), (0, 1), (30, 31, 32, 33, 34)  # indices: held-apart 36–40; training 31–35
AIR = 0.02  # background: truth intensity below this, on [0, 1]
TV_LAMBDAS = [0.001 * 2 ** (k / 2) for k in range(12)]  # 1e-3 … 4.5e-2
#: name -> (preset, overrides). DAPS's lr 1.7e-5 is what `invprob calibrate` chose from slices 1–35
#: at σ_y = 0.05 (benchmarks/results/calibration_restoration.md); DPS's ζ spans its calibrated 10.
CANDIDATES = {
    "DAPS 50×2 (daps-mri-demo)": ("daps-mri-demo", {}),
    "DAPS 50×2, lr 1.7e-5": ("daps-mri-demo", {"lr": 1.7e-5}),
    "DPS 100 steps, ζ 3": ("dps", {"num_steps": 100, "scale": 3.0}),
    "DPS 100 steps, ζ 10": ("dps", {"num_steps": 100, "scale": 10.0}),
    "DPS 100 steps, ζ 30": ("dps", {"num_steps": 100, "scale": 30.0}),
    "DPS 50 steps, ζ 10": ("dps", {"num_steps": 50, "scale": 10.0}),
    # solvers whose data step uses the operator's linear algebra (conjugate gradients) rather than a bare gradient
    "MMPS 64 steps (mmps)": ("mmps", {}),
    "MMPS 32 steps": ("mmps", {"num_steps": 32}),
    "ΠGDM 100 steps (pigdm)": ("pigdm", {}),
    "DiffPIR 100 steps (diffpir)": ("diffpir", {}),
    "DiffPIR 100 steps, λ 1, ζ 1": ("diffpir", {"lambda_": 1.0, "zeta": 1.0}),
}
#: seconds of solving the demo affords: its 3 minutes on 2 CPU cores less about 30 s to load, run TV and write
SOLVE_BUDGET = 150.0


def slices() -> tuple[torch.Tensor, torch.Tensor]:
    """``(training slices 1–35, held-apart slices 36–40)``, ``(N, 1, 128, 128)`` in [-1, 1]."""
    return load_images("brain-mri", 128, holdout=5, resize=128, progress=False)


def simulate(operator, truth: torch.Tensor, sigma: float, seed: int = 0) -> Problem:
    return Problem.simulate(operator, truth, Gaussian(sigma), generator=torch.Generator().manual_seed(seed))


def snr(truth: torch.Tensor, sigma: float) -> float:
    """Mean tissue intensity (truth intensity above 0.1 on [0, 1]) over the image noise std σ_y / 2."""
    intensity = (truth + 1) / 2
    return float(intensity[intensity > 0.1].mean() / (sigma / 2))


def quality(mean: torch.Tensor, truth: torch.Tensor, std: torch.Tensor | None = None) -> dict:
    """Per-image-averaged PSNR, SSIM, background RMS and (with ``std``) the std–error correlations."""
    out = {"psnr": float(psnr(mean, truth).mean()), "ssim": float(ssim(mean, truth).mean())}
    air = (truth + 1) / 2 < AIR
    err = (mean.clamp(-1, 1) - truth) / 2  # intensity units
    out["background_rms"] = float(torch.stack([e[a].pow(2).mean().sqrt() for e, a in zip(err, air)]).mean())
    if std is not None:
        out["std_err_corr_pixel"] = float(std_error_correlation(std, err).mean())
        out["std_err_corr_block8"] = float(std_error_correlation(std, err, block=8).mean())
    return out


def tv_lambda(operator, train: torch.Tensor, sigma: float) -> float:
    """λ with the best mean PSNR on training slices 31–35 at this noise level."""
    truth = train[list(TV_TUNE)]
    problem = simulate(operator, truth, sigma, seed=1)
    scores = {lam: float(psnr(tv_baseline(operator, problem.measurement, lam), truth).mean()) for lam in TV_LAMBDAS}
    return max(scores, key=scores.get)


def run_setting(name: str, problem: Problem, truth: torch.Tensor, prior, samples: int) -> dict:
    preset, overrides = CANDIDATES[name]
    out = solve_each(get_solver(preset, **overrides), problem, prior, num_samples=samples)
    by_k = {}
    k = 1
    while k <= samples:
        s = out.samples[:, :k]
        by_k[str(k)] = quality(s.mean(1), truth, s.std(1) if k > 1 else None)
        k *= 2
    return {"preset": preset, "overrides": overrides, "nfe": out.nfe, "samples": samples,
            "seconds_per_sample": out.seconds / (len(truth) * samples), "by_samples": by_k}


def baselines(operator, problem: Problem, truth: torch.Tensor, lam: float) -> dict:
    zero_filled = operator.adjoint(problem.measurement)
    return {"zero-filled": quality(zero_filled, truth),
            "TV": {**quality(tv_baseline(operator, problem.measurement, lam), truth), "lambda": lam}}


def select(args, data: dict) -> None:
    train, held = slices()
    operator, prior = get_operator("mri-4x-brain128"), get_prior("brain-mri")
    truth = held[list(SELECT)]
    problem = simulate(operator, truth, args.sigma)
    key = f"{args.sigma:g}"
    cell = data["select"].setdefault(key, {"snr": snr(truth, args.sigma), "settings": {}})
    if "baselines" not in cell:
        cell["baselines"] = baselines(operator, problem, truth, tv_lambda(operator, train, args.sigma))
    for name in args.candidates:
        if name in cell["settings"]:
            continue
        cell["settings"][name] = run_setting(name, problem, truth, prior, args.samples)
        best = cell["settings"][name]["by_samples"][str(args.samples)]
        print(f"select σ {key}  {name:28s} PSNR {best['psnr']:.2f}  SSIM {best['ssim']:.3f}  "
              f"{cell['settings'][name]['seconds_per_sample']:.1f} s/sample", flush=True)
        save(args, data)


def report(args, data: dict) -> None:
    train, held = slices()
    operator, prior = get_operator("mri-4x-brain128"), get_prior("brain-mri")
    truth = held[list(REPORT)]
    for sigma in args.sigmas:
        key = f"{sigma:g}"
        problem = simulate(operator, truth, sigma)
        cell = data["report"].setdefault(key, {"snr": snr(truth, sigma), "settings": {}})
        if "baselines" not in cell:
            cell["baselines"] = baselines(operator, problem, truth, tv_lambda(operator, train, sigma))
        for name in args.chosen:
            if name not in cell["settings"]:
                cell["settings"][name] = run_setting(name, problem, truth, prior, args.samples)
                q = cell["settings"][name]["by_samples"][str(args.samples)]
                print(f"report σ {key}  {name:28s} PSNR {q['psnr']:.2f}  (TV {cell['baselines']['TV']['psnr']:.2f})",
                      flush=True)
                save(args, data)
        save(args, data)


def time_demo(args, data: dict) -> None:
    """Run ``invprob demo`` as a user would (a fresh process, into a temporary folder) and record
    its wall time and the metrics it wrote."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        clock = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "invprob.app.cli", "demo", "quiet=true",
                               f"hydra.run.dir={folder}/demo"], capture_output=True, text=True, cwd=folder)
        wall = time.perf_counter() - clock
        if proc.returncode:
            raise SystemExit(f"invprob demo failed: {(proc.stderr.strip().splitlines() or [''])[-1]}")
        metrics = json.loads((Path(folder) / "demo" / "metrics.json").read_text())
    keys = ("solver", "num_samples", "noise_sigma", "tv_lambda", "nfe_per_sample", "seconds", "psnr_mean",
            "ssim_mean", "psnr_tv", "ssim_tv", "psnr_adjoint", "std_error_correlation")
    data["demo"] = {"wall_seconds": wall, **{k: metrics[k] for k in keys}}
    print(f"invprob demo: {wall:.0f} s wall, PSNR {metrics['psnr_mean'][0]:.2f} (TV {metrics['psnr_tv'][0]:.2f})")


def save(args, data: dict) -> None:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=1))
    args.json.with_suffix(".md").write_text(render(data))
    plot(data, args.json.with_suffix(".png"))


def plot(data: dict, path: Path) -> None:
    """Left: PSNR against the number of samples on the selection slices, TV as a line; right:
    PSNR against the fully sampled image SNR on the report slices."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for key, cell in data["select"].items():
        ax = axes[0]
        for name, setting in cell["settings"].items():
            ks = [int(k) for k in setting["by_samples"]]
            ax.plot(ks, [q["psnr"] for q in setting["by_samples"].values()], "o-", label=name)
        ax.axhline(cell["baselines"]["TV"]["psnr"], color="k", ls="--", label="TV (λ on slices 31–35)")
        ax.set(xscale="log", xticks=[1, 2, 4, 8], xticklabels=["1", "2", "4", "8"], xlabel="posterior samples",
               ylabel="PSNR of the mean (dB)", title=f"selection: slices 38–40, σ_y = {key}")
        ax.minorticks_off()
        ax.legend(fontsize=7)
    report = sorted(data["report"].items(), key=lambda kv: -float(kv[0]))
    if report:
        ax, snrs = axes[1], [cell["snr"] for _, cell in report]
        for name, colour in (("zero-filled", "0.6"), ("TV", "k")):
            ax.plot(snrs, [cell["baselines"][name]["psnr"] for _, cell in report], "s--", color=colour, label=name)
        for colour, name in enumerate(dict.fromkeys(n for _, cell in report for n in cell["settings"])):
            for k, style in (("4", "o:"), ("8", "o-")):
                points = [(cell["snr"], cell["settings"][name]["by_samples"][k]["psnr"]) for _, cell in report
                          if k in cell["settings"].get(name, {}).get("by_samples", {})]
                ax.plot([p[0] for p in points], [p[1] for p in points], style, color=f"C{colour}",
                        label=f"{name}, {k} samples")
        ax.set(xscale="log", xlabel="SNR of the fully sampled image (mean tissue / noise std)",
               ylabel="PSNR of the mean (dB)", title="report: slices 36–37 (settings chosen at σ_y = 0.02)")
        ax.minorticks_off()
        ax.set_xticks(snrs, [f"{v:.0f}" for v in snrs])
        ax.legend(fontsize=7, loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def chosen(cell: dict) -> tuple[str, int] | None:
    """The selection rule: ``(setting, K)`` with the best PSNR whose ``K`` samples take at most
    :data:`SOLVE_BUDGET` seconds (seconds per sample × K), or ``None``."""
    fits = [(q["psnr"], name, int(k)) for name, s in cell["settings"].items() for k, q in s["by_samples"].items()
            if s["seconds_per_sample"] * int(k) <= SOLVE_BUDGET]
    return max(fits)[1:] if fits else None


def _row(name: str, q: dict, extra: str = "") -> str:
    corr = (f"{q['std_err_corr_pixel']:.2f} / {q['std_err_corr_block8']:.2f}" if "std_err_corr_pixel" in q else "—")
    return f"| {name}{extra} | {q['psnr']:.2f} / {q['ssim']:.3f} | {q['background_rms']:.4f} | {corr} |"


def render(data: dict) -> str:
    lines = ["# The demo's measured sweep: 4× single-coil brain MRI, shipped `brain-mri` prior", "",
             "Produced by:", ""]
    lines += [f"- `{r['command']}` ({r['device']}, torch {r['torch']}, {r['date']}, {r['seconds'] / 60:.0f} min)"
              for r in data["runs"]]
    lines += ["", "Posterior mean quality; background RMS: error of the mean in intensity units of [0, 1] over the "
              "pixels darker than 0.02 in the truth; std–error correlation: Pearson, per pixel / over 8×8 block means. "
              "TV's λ is chosen per noise level on slices 31–35. Method in `benchmarks/demo_sweep.py`. The rule: the "
              f"setting and number of samples K with the best selection PSNR whose K samples take at most "
              f"{SOLVE_BUDGET:.0f} s of solving (seconds per sample × K), the demo's 3 minutes on 2 CPU cores less "
              "loading, TV and writing.", ""]
    for stage, title, images in (("select", "Selection", "slices 38–40"), ("report", "Report", "slices 36–37")):
        for key, cell in sorted(data[stage].items(), key=lambda kv: float(kv[0])):
            lines += [f"## {title}: σ_y = {key} (fully sampled image SNR {cell['snr']:.0f}), {images}", ""]
            pick = chosen(cell) if stage == "select" else None
            if pick:
                lines += [f"Chosen by the rule ({SOLVE_BUDGET:.0f} s of solving): {pick[0]}, {pick[1]} samples.", ""]
            lines += ["| setting | PSNR / SSIM | background RMS | std–error corr. | NFE | s / sample |",
                      "|---|---|---|---|---|---|"]
            for name in ("zero-filled", "TV"):
                q = cell["baselines"][name]
                lam = f" (λ {q['lambda']:.3g})" if name == "TV" else ""
                lines.append(_row(name, q, lam) + " — | — |")
            for name, s in cell["settings"].items():
                for k, q in s["by_samples"].items():
                    lines.append(_row(name, q, f", {k} sample{'s' if k != '1' else ''}") +
                                 f" {s['nfe']:.0f} | {s['seconds_per_sample']:.1f} |")
            lines.append("")
    if "demo" in data:
        d = data["demo"]
        lines += ["## `invprob demo` itself (slice 36)", "",
                  f"{d['solver']}, {d['num_samples']} samples, σ_y = {d['noise_sigma']:g}, TV λ {d['tv_lambda']:g}: "
                  f"{d['wall_seconds']:.0f} s wall in all ({d['seconds']:.0f} s solving). PSNR / SSIM: posterior mean "
                  f"{d['psnr_mean'][0]:.2f} / {d['ssim_mean'][0]:.3f}, TV {d['psnr_tv'][0]:.2f} / {d['ssim_tv'][0]:.3f}, "
                  f"zero-filled {d['psnr_adjoint'][0]:.2f}; std–error correlation {d['std_error_correlation'][0]:.2f}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", nargs="?", choices=("select", "report", "demo"))
    parser.add_argument("--sigma", type=float, default=0.02)
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.01, 0.02, 0.05])
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES)[:5], choices=list(CANDIDATES),
                        help="settings to run (default: the first five, the DAPS and DPS settings of the first "
                             "recorded command; name any other, e.g. DPS 50 steps, MMPS, PiGDM, DiffPIR, to run it)")
    parser.add_argument("--chosen", nargs="+", default=[], choices=list(CANDIDATES))
    parser.add_argument("--json", type=Path, default=JSON)
    parser.add_argument("--render", action="store_true")
    args = parser.parse_args(argv)
    data = json.loads(args.json.read_text()) if args.json.is_file() else {"runs": [], "select": {}, "report": {}}
    if args.render or args.stage is None:
        args.json.with_suffix(".md").write_text(render(data))
        plot(data, args.json.with_suffix(".png"))
        return 0
    if args.stage == "report" and not args.chosen:
        parser.error("`report` needs --chosen NAME [NAME ...] (settings from the selection stage)")
    run = {"command": "python benchmarks/demo_sweep.py " + shlex.join(sys.argv[1:] if argv is None else argv),
           "device": platform.machine() + f", {torch.get_num_threads()} threads", "torch": torch.__version__,
           "date": time.strftime("%Y-%m-%d"), "seconds": 0.0}
    data["runs"].append(run)
    start = time.perf_counter()
    {"select": select, "report": report, "demo": time_demo}[args.stage](args, data)
    run["seconds"] = time.perf_counter() - start
    save(args, data)
    print(args.json.with_suffix(".md"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
