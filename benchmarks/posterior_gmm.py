"""Exact-posterior accuracy of every solver on the Gaussian-mixture test bed.

What it measures: how close each solver's samples are to the exact posterior, on the linear
problems of the test bed (:func:`invprob.evaluation.make_problem`: a 1×8×8 Gaussian-mixture
prior, random 50 % inpainting and a random Gaussian matrix with 16 rows, σ_y = 0.05), whose
posterior is a Gaussian mixture in closed form. How: each solver draws N samples for the
problem of ``--seed``; per row the report gives the sliced Wasserstein distance SW2 to N exact
posterior samples (:func:`invprob.evaluation.sliced_wasserstein`), the noise floor (SW2 between
two exact sets of N, :func:`~invprob.evaluation.sliced_wasserstein_floor`) and their ratio, the
RMSE of the sample mean against the exact posterior mean, the fraction of exact samples inside
the samples' 90 % per-pixel credible intervals (:func:`~invprob.evaluation.coverage`), NFE per
sample and seconds. The prior itself (no data) is the baseline to beat; deepinv's DPS and
DiffPIR samplers run with their defaults on the same exact denoiser.

Commands of the committed results (``benchmarks/results/``): ``posterior_gmm_seed7.json`` and
``posterior_gmm_seed7.md`` come from ``python benchmarks/posterior_gmm.py --seed 7 --matched
--json benchmarks/results/posterior_gmm_seed7.json`` (every row; a later run with ``--solvers
LABEL ...`` replaces or adds its rows, and the ``.md`` lists every command in order, the ``runs``
of the JSON). ``posterior_gmm_seed7.txt`` is the printed output of that command. ``posterior_gmm_flow_seed7.{json,md}``: ``python
benchmarks/posterior_gmm.py --seed 7 --flow --json benchmarks/results/posterior_gmm_flow_seed7.json``
(the flow-native solvers on the prior's exact velocity, :func:`invprob.evaluation.exact_flow_prior`).

Usage:
    python benchmarks/posterior_gmm.py --seed 7 --json out.json [--num-samples 500] [--matched | --latent | --flow]
        [--solvers LABEL ...] [--scales S ...]
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

from invprob.errors import UnsupportedProblemError
from invprob.evaluation import (PROBLEMS, coverage, exact_flow_prior, latent_problem, make_problem,
                                posterior_mean_error, sliced_wasserstein, sliced_wasserstein_floor)
from invprob.registry import get_solver

# label -> (preset, overrides). The paper presets at their default NFE, and the presets tuned
# on test-bed seed 1 (never on the report seed); see each YAML in solvers/ for its source.
SOLVERS = {
    "dps": ("dps", {}),
    "dps-gmm-tuned": ("dps-gmm-tuned", {}),
    "mcg": ("mcg", {}),
    "mcg-gmm-tuned": ("mcg-gmm-tuned", {}),
    "reddiff": ("reddiff", {}),
    "daps": ("daps", {}),
    "daps-sigma-y": ("daps-sigma-y", {}),
    # DAPS-1K with the official configs' other Langevin step (5e-5: box inpainting, motion blur,
    # phase retrieval), the one that is stable for ‖A‖ up to √2 at τ = 0.01.
    "daps (lr 5e-5)": ("daps", {"lr": 5e-5}),
    # DAPS with the official code's damped HMC, two of its per-task `pixel_hmc` configs: random
    # inpainting (11 steps, momentum 0.8) and phase retrieval (62 steps, momentum 0.73).
    "daps-hmc-inpainting-random": ("daps-hmc-inpainting-random", {}),
    "daps-hmc-phase-retrieval": ("daps-hmc-phase-retrieval", {}),
    "enkg": ("enkg", {}),
    "enkg-gmm-tuned": ("enkg-gmm-tuned", {}),
    # DiffPIR with the official deblurring and inpainting settings (solvers/diffpir*.yaml).
    "diffpir": ("diffpir", {}),
    "diffpir-inpainting": ("diffpir-inpainting", {}),
    # DDNM+ as the official code runs it (solvers/ddnm.yaml).
    "ddnm": ("ddnm", {}),
    "ddnm-time-travel": ("ddnm-time-travel", {}),
    "ddrm": ("ddrm", {}),
    # Not a paper solver: tempered SMC with diffusion-prior Langevin moves, its step chosen on the
    # seed-7 GMM *phase-retrieval* problem (solvers/tempered-smc.yaml), not on these two problems.
    "tempered-smc": ("tempered-smc", {}),
    # ΠGDM, MMPS and TDS at their paper presets (solvers/pigdm.yaml, mmps.yaml, tds.yaml).
    "pigdm": ("pigdm", {}),
    "mmps": ("mmps", {}),
    "tds": ("tds", {}),
    # DDRM at 1000 steps: how much of the 20-step preset's distance is discretisation.
    "ddrm-1000": ("ddrm", {"num_steps": 1000}),
}
# deepinv's samplers on the same exact denoiser, each in the units it expects (run_deepinv):
# DPS with its default weight 1.0 and 1000 steps; DiffPIR at our diffpir preset's λ, ζ and 100
# iterations; DDRM with its defaults on our ddrm preset's 20 σ-levels (its noise draws are scaled
# by 1/√2, deepinv 0.5's own choice, kept).
DEEPINV = {"deepinv DPS (weight 1, 1000 steps)": "dps", "deepinv DiffPIR (λ 7, ζ 0.3, 100 steps)": "diffpir",
           "deepinv DDRM (20 steps)": "ddrm"}
# Latent solvers on the exact latent test bed (--latent: invprob.evaluation.latent_problem), each
# preset at its official per-task settings (solvers/latent-daps*.yaml, solvers/psld*.yaml).
LATENT = {name: (name, {}) for name in ("latent-daps", "latent-daps-inpainting-random", "latent-daps-inpainting-box",
                                        "latent-daps-deblur", "latent-daps-motion-deblur", "psld",
                                        "psld-inpainting-box", "psld-ldm", "psld-ldm-super-resolution",
                                        "resample", "resample-noise-stop", "stsl", "latent-daps-gmm-tuned")}
# Flow-native solvers on the exact velocity (--flow: invprob.evaluation.exact_flow_prior, the test-bed
# prior as a FlowPrior), each preset at its reference settings (solvers/flowchef*.yaml, pnp-flow*.yaml,
# ot-ode*.yaml, d-flow*.yaml), and DPS / DAPS / ΠGDM run on the same flow prior through its σ-space view.
FLOW = {name: (name, {}) for name in (
    "flowchef", "flowchef-fixed-scale", "flowchef-gmm-tuned",
    "pnp-flow", "pnp-flow-deblur", "pnp-flow-super-resolution", "pnp-flow-inpainting-box", "pnp-flow-inpainting-random",
    "ot-ode", "ot-ode-deblur", "ot-ode-super-resolution", "ot-ode-inpainting-box", "ot-ode-inpainting-random",
    "d-flow", "d-flow-deblur", "d-flow-super-resolution", "d-flow-inpainting-box", "d-flow-inpainting-random",
    "dps", "daps", "pigdm")}
# Matched budget of 1000 NFE per sample where the default differs (DPS, MCG, DAPS: already 1000).
MATCHED = {"reddiff-1000": ("reddiff-1000", {})}


def decomposable_physics(problem):
    """deepinv ``DecomposablePhysics`` of a test-bed problem's matrix ``A = U diag(s) Vᵀ`` (full
    SVD, ``s`` padded with zeros to the image size) with its Gaussian noise: what deepinv's DDRM
    needs. The coefficients are flat ``(B, d)`` vectors."""
    import deepinv

    A = problem.operator.A
    m, d = A.shape
    U, s, Vh = torch.linalg.svd(A, full_matrices=True)
    x_shape = problem.operator.x_shape
    mask = torch.zeros(1, d, dtype=A.dtype)
    mask[0, : len(s)] = s
    return deepinv.physics.DecomposablePhysics(
        U=lambda z: z[:, :m] @ U.T, U_adjoint=lambda y: torch.nn.functional.pad(y @ U, (0, d - m)),
        V=lambda z: (z @ Vh).reshape(-1, *x_shape), V_adjoint=lambda x: x.flatten(1) @ Vh.T, mask=mask,
        noise_model=deepinv.physics.GaussianNoise(problem.noise.sigma))


def run_deepinv(kind: str, problem, prior, num_samples: int, seed: int):
    """Samples ``(N, *x_shape)``, NFE and seconds of a deepinv sampler on our problem and prior."""
    import deepinv

    from invprob.operators import to_deepinv
    from invprob.priors.deepinv_bridge import to_deepinv_denoiser
    from invprob.sampling import ddim_sigmas

    physics = to_deepinv(problem.operator)
    y = problem.measurement.expand(num_samples, *problem.measurement.shape[1:]).clone()
    start = time.perf_counter()
    if kind == "dps":
        # in the images' own units (minus_one_one=False: no [0, 1] conversion of x, σ or y)
        sampler = deepinv.sampling.DPS(to_deepinv_denoiser(prior), num_steps=1000, dtype=torch.float64,
                                       rng=torch.Generator().manual_seed(seed), minus_one_one=False)
        samples, nfe = sampler(y, physics, x_init=(num_samples, *prior.x_shape), seed=seed), 1000
    elif kind == "ddrm":
        # as written, in the images' own units on our ddrm preset's σ-levels (one NFE per level)
        sampler = deepinv.sampling.DDRM(to_deepinv_denoiser(prior), sigmas=ddim_sigmas(20)[:-1])
        torch.manual_seed(seed)  # DDRM draws from the global generator
        samples, nfe = sampler(y, decomposable_physics(problem)), 20
    else:
        # DiffPIR works on [0, 1] images: u = (x + 1)/2, y_u = (y + A 1)/2 with noise σ_y/2. Its data
        # step is the prox of γ/2 ‖A u − y‖² with γ = 1/(2ρ), ρ = λ σ_u²/σ̄_t², i.e. ‖A u − y‖² + 2ρ ‖u − x̂0‖²
        # (the same in [-1, 1] units), where our diffpir solves ‖A u − y‖² + ρ ‖u − x̂0‖² with
        # ρ = λ σ_n²/σ̄_t², σ_n = σ_y/2: lambda_ = 7 / 2 and zeta = 0.3 are our `diffpir` preset.
        physics.noise_model = deepinv.physics.GaussianNoise(problem.noise.sigma / 2)
        ones = torch.ones((1, *prior.x_shape), dtype=y.dtype)
        sampler = deepinv.sampling.DiffPIR(to_deepinv_denoiser(prior, unit_range=True),
                                           deepinv.optim.data_fidelity.L2(), sigma=problem.noise.sigma / 2,
                                           max_iter=100, lambda_=3.5, zeta=0.3)
        torch.manual_seed(seed)  # DiffPIR draws from the global generator
        samples, nfe = 2 * sampler((y + problem.operator(ones)) / 2, physics) - 1, 100
    return samples.to(torch.float64), nfe, time.perf_counter() - start


class _Decoded:
    """An exact latent posterior seen in image space: its samples and mean decoded."""

    def __init__(self, posterior, decode) -> None:
        self.posterior, self.decode, self.weights = posterior, decode, posterior.weights

    def sample(self, n: int, generator):
        z = self.posterior.sample(n, generator)
        x = self.decode(z.flatten(0, 1))
        return x.reshape(*z.shape[:2], *x.shape[1:])

    def mean(self):
        return self.decode(self.posterior.mean())


def evaluate(samples: torch.Tensor, exact: torch.Tensor, post, floor: float, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    sw2 = sliced_wasserstein(samples, exact, generator=g).item()
    return {"sw2": sw2, "floor": floor, "ratio": sw2 / floor,
            "mean_rmse": posterior_mean_error(samples, post.mean()[0]).item(),
            "coverage90": coverage(samples, exact, 0.9).item()}


def run(seed: int, num_samples: int, solvers: dict, problems=PROBLEMS, progress: bool = False,
        deepinv_solvers: dict | None = None, family: str = "smooth", quiet: bool = False,
        latent: bool = False, flow: bool = False) -> dict:
    deepinv_solvers = DEEPINV if deepinv_solvers is None else deepinv_solvers
    report = {"seed": seed, "num_samples": num_samples, "torch": torch.__version__,
              "machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
              "problems": {}}
    for name in problems:
        if latent:  # samples are images D(z); the exact posterior is over z, decoded
            bed = latent_problem(name, seed=seed, family=family)
            prior, problem, decode = bed.prior, bed.problem, bed.prior.decode
            post = _Decoded(bed.posterior, decode)
            prior_samples = lambda n, gen: decode(bed.prior.latent.sample(n, gen))  # noqa: E731
        else:
            prior, problem, _ = make_problem(name, seed=seed, family=family)
            post = prior.posterior(problem)
            prior_samples = prior.sample
            if flow:  # the same prior seen as its exact velocity field
                prior = exact_flow_prior(prior)
        g = torch.Generator().manual_seed(seed + 100)
        exact = post.sample(num_samples, g)[0]
        floor = sliced_wasserstein_floor(lambda n, gen: post.sample(n, gen)[0], num_samples, generator=g).item()
        rows = {}
        start = time.perf_counter()
        rows["prior (no data)"] = {**evaluate(prior_samples(num_samples, g), exact, post, floor, seed),
                                   "nfe": 0, "seconds": time.perf_counter() - start}
        for label, kind in deepinv_solvers.items():
            samples, nfe, seconds = run_deepinv(kind, problem, prior, num_samples, seed)
            rows[label] = {**evaluate(samples, exact, post, floor, seed), "nfe": nfe, "seconds": seconds}
            if not quiet:
                print(f"{name:16s} {label:34s} SW2/floor {rows[label]['ratio']:7.2f}  NFE {nfe}  {seconds:.1f}s", flush=True)
        for label, (preset, overrides) in solvers.items():
            solver = get_solver(preset, **overrides)
            try:
                result = solver.solve(problem, prior, num_samples=num_samples, generator=seed, progress=progress)
            except UnsupportedProblemError as err:  # e.g. DAPS's paper step size is unstable here
                rows[label] = {"refused": str(err), "nfe": solver.nfe_per_sample}
                print(f"{name:16s} {label:34s} refused: {err}", flush=True)
                continue
            rows[label] = {**evaluate(result.samples[0], exact, post, floor, seed),
                           "nfe": result.nfe, "seconds": result.seconds}
            if quiet:
                continue
            print(f"{name:16s} {label:34s} SW2/floor {rows[label]['ratio']:7.2f}  "
                  f"mean RMSE {rows[label]['mean_rmse']:.4f}  cov90 {rows[label]['coverage90']:.3f}  "
                  f"NFE {result.nfe}  {result.seconds:.1f}s", flush=True)
        report["problems"][name] = {"posterior_weights": post.weights[0].tolist(), "solvers": rows}
        p = rows["prior (no data)"]
        if not quiet:
            print(f"{name:16s} {'prior (no data)':34s} SW2/floor {p['ratio']:7.2f}", flush=True)
    return report


def markdown_table(report: dict) -> str:
    """One row per solver: SW2/floor, mean RMSE and 90 % coverage per problem, NFE."""
    problems = list(report["problems"])
    header = "| solver | " + " | ".join(f"{p}: SW2/floor · mean RMSE · cov90" for p in problems) + " | NFE |"
    lines = [header, "|---" * (len(problems) + 2) + "|"]
    for label in report["problems"][problems[0]]["solvers"]:
        cells = []
        for p in problems:
            r = report["problems"][p]["solvers"][label]
            if "refused" in r:
                cells.append("refused at init (unstable step)")
            else:
                cells.append(f"{r['ratio']:.2f} · {r['mean_rmse']:.3f} · {r['coverage90']:.2f}")
        nfe = report["problems"][problems[0]]["solvers"][label]["nfe"]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {nfe} |")
    return "\n".join(lines)


def markdown_report(report: dict, table: str) -> str:
    """The ``.md`` file: the commands that produced the rows (from ``report["runs"]``), then the table."""
    def line(r):
        took = f"{r['seconds']} s" if r.get("seconds") is not None else "time not recorded"
        return f"- `{r['command']}` ({took} on {r['threads']} threads" + (f"; {r['note']}" if r.get("note") else "") + ")"
    return (f"{report['num_samples']} samples per row. Produced by (rows of later commands replace earlier ones):\n\n"
            + "\n".join(line(r) for r in report["runs"]) + f"\n\n{table}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=7, help="chooses the test-bed problem")
    parser.add_argument("--json", type=str, default=None, help="write the report here")
    parser.add_argument("--num-samples", type=int, default=500)
    parser.add_argument("--matched", action="store_true", help="add the 1000-NFE variants")
    parser.add_argument("--latent", action="store_true",
                        help="the latent solvers on the exact latent test bed (images D(z) = W z) instead")
    parser.add_argument("--flow", action="store_true",
                        help="the flow-native solvers on the test-bed prior's exact velocity (a FlowPrior) instead")
    parser.add_argument("--solvers", nargs="*", default=None, help="subset of the labels to run")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--note", default="", help="what else ran on the machine meanwhile (recorded)")
    parser.add_argument("--scales", type=float, nargs="*", default=None,
                        help="instead of the presets, sweep DPS's scale over these values")
    args = parser.parse_args(argv)
    solvers = LATENT if args.latent else FLOW if args.flow else dict(SOLVERS, **(MATCHED if args.matched else {}))
    deepinv_solvers = {} if args.latent or args.flow else DEEPINV
    if args.solvers:
        solvers = {k: v for k, v in solvers.items() if k in args.solvers}
        deepinv_solvers = {k: v for k, v in DEEPINV.items() if k in args.solvers}
    if args.scales:
        solvers = {f"dps scale {s}": ("dps", {"scale": s}) for s in args.scales}
        deepinv_solvers = {}
    start = time.perf_counter()
    report = run(args.seed, args.num_samples, solvers, progress=args.progress, deepinv_solvers=deepinv_solvers,
                 latent=args.latent, flow=args.flow)
    report["total_seconds"] = time.perf_counter() - start
    this_run = {"command": shlex.join(["python", "benchmarks/posterior_gmm.py", *(sys.argv[1:] if argv is None else argv)]),
                "seconds": round(report["total_seconds"]), "threads": report["threads"]}
    if args.note:
        this_run["note"] = args.note
    report["runs"] = [this_run]
    print(f"total {report['total_seconds']:.0f}s")
    if args.json and args.solvers and Path(args.json).is_file():
        # Re-running a subset: merge the new rows into the existing report and log the command.
        old = json.loads(Path(args.json).read_text())
        for name, entry in report["problems"].items():
            old["problems"][name]["solvers"].update(entry["solvers"])
        old.setdefault("runs", [{"command": old.get("command"), "seconds": round(old["total_seconds"]),
                                 "threads": old["threads"]}]).append(this_run)
        report = old
    table = markdown_table(report)
    print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
        with open(args.json.rsplit(".", 1)[0] + ".md", "w") as f:
            f.write(markdown_report(report, table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
