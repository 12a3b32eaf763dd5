"""Mode recovery on Fourier phase retrieval with the GMM test-bed prior.

What it measures: whether a solver puts its samples in the posterior's modes in the right
proportions, on ``y = |F(pad(x))| + σ_y n`` with the exact Gaussian-mixture prior of the test
bed (:func:`invprob.evaluation.phase_retrieval_problem`: seed 7, 1×8×8 images, σ_y = 0.05,
100 samples per solver). The posterior has no closed form but its unnormalised density
``log p(x) + log p(y | x)`` is exact, and it is multimodal: ``|F(pad(x))|`` cannot tell ``x``
from ``−x``, its 180° rotation or ``−``rotation (the trivial ambiguities; ``--unit-range``: DAPS's
convention ``|F(pad(x/2 + 1/2))|``, whose sign flip is ``−x − 2``), and it has non-trivial
ambiguities too, so the truth need not sit in the heaviest mode.

How, per solver row (``rows`` of the JSON):

* ``aligned_rmse_median``, ``fraction_within_0.1``: RMSE to the truth after alignment over the
  trivial ambiguities (:func:`invprob.evaluation.aligned_rmse`); ``residual_median``: the
  relative measurement residual ``‖|F x̂| − y‖ / ‖y‖`` beside the truth's own
  (``truth_residual``); ``log_posterior_median`` and ``fraction_log_posterior_above_truth``:
  the exact unnormalised log posterior of the samples against the truth's;
* ``--census N``: the posterior's orbits (modes up to the trivial ambiguities) by gradient
  ascent on the exact log posterior from N prior samples, the truth, the reference samples and
  every solver sample, with Laplace masses (:func:`invprob.evaluation.mode_census`); each sample
  is assigned to the orbit whose basin it lies in (:func:`invprob.evaluation.assign_reached`).
  Reported: ``orbit_frequencies``, ``top_orbit_frequency``, ``truth_orbit_frequency``,
  ``truth_orbit_in_best_of_4`` (how often one of 4 samples is in the truth's orbit: the papers'
  best-of-4-runs protocol in mode terms), ``unassigned``, and ``mode_tv``: the total-variation
  distance between the orbit frequencies and the Laplace weights;
* ``--reference N``: two runs of the exact-density reference sampler with N particles each
  (:func:`invprob.evaluation.reference_sampler`: tempered SMC with MALA moves), 1000 of each
  run's particles assigned to the census orbits; their mean frequencies are the reference
  weights. Reported: ``mode_tv_reference`` per row (the score to read: TV to the reference
  weights), the reference's run-to-run distance ``reference_tv_between_runs``, and the floor
  ``mode_tv_floor_reference`` (:func:`invprob.evaluation.mode_tv_floor`: the mean distance of an
  exact sampler with as many samples). Laplace masses are wrong for non-Gaussian modes, so the
  ``weights`` / ``mode_tv`` / ``mode_tv_floor`` fields are kept for comparison only;
* ``--exact-conditional``: beside each DAPS preset, :class:`invprob.evaluation.ExactConditionalDAPS`
  (DAPS with the mixture's exact ``p(x0 | x_t)``); ``--reference-power P``: the reference samples
  ``p(x) p(y | x)^P`` instead (P = 2 σ_y² / τ² is the target DAPS's data term implies).

Commands of the committed results (``benchmarks/results/``; CPU), each followed by
``--json benchmarks/results/<file>``; seed 7, 100 samples, σ_y = 0.05 and oversampling 2 are the
defaults, and the default presets are ``daps-phase-retrieval daps-sigma-y dps-phase-retrieval``.
Files without an ``oversampling`` field hold fewer fields than the script writes now:

* ``phase_retrieval_gmm_seed7.json``: ``python benchmarks/phase_retrieval_gmm.py``
* ``phase_retrieval_gmm_seed7_sigma0.01.json``: ``… --sigma-y 0.01 --presets daps-phase-retrieval dps-phase-retrieval``
* ``phase_retrieval_gmm_seed7_census.json``: ``… --census 100 --presets daps-phase-retrieval dps-phase-retrieval``
* ``phase_retrieval_gmm_seed7_os4_census.json``:
  ``… --oversampling 4 --census 50 --presets daps-phase-retrieval dps-phase-retrieval``
* ``phase_retrieval_gmm_seed7_os4_census_daps400.json``:
  ``… --oversampling 4 --census 50 --presets daps-phase-retrieval --num-steps 400``
* ``phase_retrieval_gmm_seed7_os2_reference.json``: ``… --census 100 --reference 4000``
* ``phase_retrieval_gmm_seed7_os2_reference_smc.json``: ``… --census 100 --reference 4000 --presets tempered-smc``
* ``phase_retrieval_gmm_seed7_os4_reference.json``: ``… --oversampling 4 --census 50 --reference 4000``
* ``phase_retrieval_gmm_seed7_os4_reference_smc.json``:
  ``… --oversampling 4 --census 50 --reference 4000 --presets tempered-smc``
* ``phase_retrieval_gmm_seed7_os4_reference_orbits.json`` and ``phase_retrieval_gmm_seed7_os4_orbits.png``:
  ``… --oversampling 4 --census 50 --reference 4000 --presets daps-phase-retrieval tempered-smc
  --plot benchmarks/results/phase_retrieval_gmm_seed7_os4_orbits.png``
* ``phase_retrieval_gmm_seed7_os4_reference_daps400.json``:
  ``… --oversampling 4 --census 50 --reference 4000 --presets daps-phase-retrieval --num-steps 400``
* ``phase_retrieval_gmm_seed7_os4_reference_exact_conditional.json``:
  ``… --oversampling 4 --census 50 --reference 4000 --presets daps-phase-retrieval daps-sigma-y --exact-conditional``
* ``phase_retrieval_gmm_seed7_os4_reference_power50.json``:
  ``… --oversampling 4 --census 50 --reference 4000 --presets daps-phase-retrieval --reference-power 50``
* ``phase_retrieval_gmm_seed7_os4_reference_hmc.json``:
  ``… --oversampling 4 --census 50 --reference 4000 --presets daps-phase-retrieval daps-hmc-phase-retrieval``
* ``phase_retrieval_gmm_seed7_os8_reference_smc.json``:
  ``… --oversampling 8 --census 50 --reference 4000 --presets daps-phase-retrieval tempered-smc``
* ``phase_retrieval_gmm_seed7_os2_unit_range_reference_smc.json`` / ``…_os4_unit_range_reference_smc.json``:
  ``… --unit-range [--oversampling 4] --census 50 --reference 4000 --presets daps-phase-retrieval tempered-smc``
* ``phase_retrieval_gmm_seed7_os2_unit_range_reference_hmc.json``:
  ``… --unit-range --census 50 --reference 4000 --presets daps-phase-retrieval daps-hmc-phase-retrieval``
* ``phase_retrieval_gmm_seed7_os2_unit_range_reference_daps400.json``:
  ``… --unit-range --census 50 --reference 4000 --presets daps-phase-retrieval --num-steps 400``
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Callable, Sequence

import torch
from torch import Tensor

from invprob.evaluation import (SIGMA_Y, ExactConditionalDAPS, aligned_rmse, assign_reached, assign_to_modes,
                                mode_census, mode_tv, mode_tv_floor, orbit_frequencies, phase_retrieval_problem,
                                reference_sampler)
from invprob.operators.phase_retrieval import trivial_images
from invprob.registry import get_solver
from invprob.solvers import DAPS

DEFAULT_PRESETS = ["daps-phase-retrieval", "daps-sigma-y", "dps-phase-retrieval"]


def run(seed: int, num_samples: int, presets: list[str], num_steps: int | None = None,
        sigma_y: float = SIGMA_Y, oversampling: float = 2.0, census_starts: int = 0,
        reference_particles: int = 0, reference_subsample: int = 1000, exact_conditional: bool = False,
        reference_power: float = 1.0, unit_range: bool = False) -> dict:
    """The benchmark's report (the JSON's content) for one problem and a list of solver presets;
    the arguments are the command-line options of :func:`main`."""
    test = phase_retrieval_problem(seed, oversampling, sigma_y, unit_range)
    prior, problem, truth, g = test.prior, test.problem, test.truth, test.generator
    log_post = test.log_posterior
    op, y = problem.operator, problem.measurement
    images = op.trivial_images

    def residual(x: Tensor) -> Tensor:
        return ((op(x) - y).flatten(1).norm(dim=1) / y.flatten(1).norm(dim=1))

    report = {"sigma_y": sigma_y, "oversampling": oversampling, "unit_range": unit_range, "y_shape": list(op.y_shape),
              "seed": seed, "num_samples": num_samples, "truth_residual": residual(truth).item(),
              "truth_log_posterior": log_post(truth).item(), "rows": {}}
    prior_samples = prior.sample(num_samples, g)
    all_samples = {}
    report["rows"]["prior (no data)"] = {"aligned_rmse_median": aligned_rmse(prior_samples, truth[0], images).median().item(),
                                         "residual_median": residual(prior_samples).median().item(),
                                         "log_posterior_median": log_post(prior_samples).median().item()}
    solvers = {}
    for preset in presets:
        name = preset + (f" (num_steps {num_steps})" if num_steps else "")
        solvers[name] = get_solver(preset, **({"num_steps": num_steps} if num_steps else {}))
        if exact_conditional and isinstance(solvers[name], DAPS):
            solvers[name + " + exact p(x0|x_t)"] = ExactConditionalDAPS.from_daps(solvers[name], test.log_prior)
    for name, solver in solvers.items():
        result = solver.solve(problem, prior, num_samples=num_samples, generator=seed, progress=False)
        s = result.samples[0]
        a = aligned_rmse(s, truth[0], images)
        report["rows"][name] = {"aligned_rmse_median": a.median().item(),
                                "fraction_within_0.1": (a < 0.1).double().mean().item(),
                                "residual_median": residual(s).median().item(),
                                "log_posterior_median": log_post(s).median().item(),
                                "fraction_log_posterior_above_truth": (log_post(s) >= log_post(truth)).double().mean().item(),
                                "nfe": result.nfe, "seconds": result.seconds}
        all_samples[name] = s
    reference = []
    for run_seed in range(2 if reference_particles else 0):  # two independent runs: their spread is shown
        start = time.perf_counter()
        gen = torch.Generator().manual_seed(1000 + run_seed)
        particles, stats = reference_sampler(test.log_prior, lambda x: reference_power * test.log_likelihood(x),
                                             prior.sample(reference_particles, gen), gen)
        keep = torch.randperm(len(particles), generator=gen)[:reference_subsample]
        reference.append(particles[keep])
        report["reference_likelihood_power"] = reference_power
        report.setdefault("reference_runs", []).append({**stats, "particles": reference_particles, "subsample":
                                                        len(keep), "seconds": time.perf_counter() - start})
        print(f"reference run {run_seed}: {stats}", flush=True)
    if census_starts:
        _census(report, log_post, truth, prior_samples, all_samples, prior.sample(census_starts, g), reference, images)
    return report


def _census(report: dict, log_post: Callable[[Tensor], Tensor], truth: Tensor, prior_samples: Tensor,
            all_samples: dict[str, Tensor], starts: Tensor, reference: Sequence[Tensor] = (),
            images: Callable[[Tensor], Tensor] = trivial_images) -> None:
    """Adds to ``report`` the mode census (Laplace masses; reference-sampler frequencies where
    ``reference`` holds the reference runs' samples) and, per row, how the samples spread over
    its orbits."""
    start = time.perf_counter()
    print(f"mode census from {len(starts)} prior samples, the truth, the reference and every solver's samples ...",
          flush=True)
    groups = [starts, truth, *reference, *all_samples.values()]
    census = mode_census(log_post, torch.cat(groups), images=images)
    # Each group's maxima, ascended once inside the census and reused for the assignments.
    reached = dict(zip(["starts", "truth", *range(len(reference)), *all_samples],
                       census["reached"].split([len(g) for g in groups])))
    weights = census["weights"]
    num_samples = len(next(iter(all_samples.values()), prior_samples))
    truth_orbit = assign_reached(reached["truth"], census["modes"], images=images)[0].item()
    report["census"] = {"orbits": len(weights), "maxima": census["num_maxima"],
                        "weights": weights.tolist(), "truth_orbit": truth_orbit,
                        "orbits_for_90pct": int((weights.cumsum(0) < 0.9).sum().item()) + 1,
                        "mode_tv_floor": mode_tv_floor(weights, num_samples)}
    reference_weights = None
    if len(reference):
        runs = [orbit_frequencies(assign_reached(reached[i], census["modes"], images=images), len(weights), weights.dtype)
                for i in range(len(reference))]
        reference_weights = torch.stack([f for f, _ in runs]).mean(0)
        reference_weights = reference_weights / reference_weights.sum()
        report["census"].update({
            "reference_weights": reference_weights.tolist(),
            "reference_unassigned": [u for _, u in runs],
            "reference_tv_between_runs": 0.5 * (runs[0][0] - runs[1][0]).abs().sum().item(),
            "truth_orbit_reference_weight": reference_weights[truth_orbit].item() if truth_orbit >= 0 else float("nan"),
            "mode_tv_floor_reference": mode_tv_floor(reference_weights, num_samples)})
    report["census"]["seconds"] = time.perf_counter() - start
    for name, samples in {"prior (no data)": prior_samples, **all_samples}.items():
        which = (assign_reached(reached[name], census["modes"], images=images) if name in all_samples
                 else assign_to_modes(log_post, samples, census["modes"], images=images))  # the prior row: not a census start
        freq, unassigned = orbit_frequencies(which, len(weights), weights.dtype)
        report["rows"][name]["orbit_frequencies"] = freq.tolist()
        if reference_weights is not None:
            report["rows"][name]["mode_tv_reference"] = mode_tv(freq, unassigned, reference_weights)
        # The DAPS/DPS papers report the best of 4 runs per image (DAPS eval.py: max PSNR over
        # num_runs=4); in mode terms: how often at least one of 4 samples is in the truth's orbit.
        hit = (which == truth_orbit)[: len(which) // 4 * 4].reshape(-1, 4).any(1).double().mean().item()
        report["rows"][name].update({
            "mode_tv": mode_tv(freq, unassigned, weights),
            "top_orbit_frequency": freq[0].item(), "truth_orbit_frequency": freq[truth_orbit].item()
            if truth_orbit >= 0 else float("nan"), "truth_orbit_in_best_of_4": hit, "unassigned": unassigned})


def plot_orbits(report: dict, path: str, top: int = 6) -> None:
    """Bar chart: the weight of the heaviest orbits (reference, else Laplace) beside each row's
    frequency there, and the rest pooled — where each sampler puts its samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    census = report["census"]
    weights = torch.tensor(census.get("reference_weights", census["weights"]), dtype=torch.float64)
    order = weights.argsort(descending=True)[:top].tolist()
    series = {("exact-density reference" if "reference_weights" in census else "Laplace weights"): weights}
    series.update({name: torch.tensor(row["orbit_frequencies"], dtype=torch.float64) for name, row in report["rows"].items()
                   if "orbit_frequencies" in row and not name.startswith("prior")})
    labels = [("truth's orbit" if j == census["truth_orbit"] else f"orbit {j}") for j in order] + ["all others"]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    width = 0.8 / len(series)
    for k, (name, f) in enumerate(series.items()):
        values = [f[j].item() for j in order] + [1 - f[order].sum().item()]
        ax.bar([i + k * width for i in range(len(labels))], values, width, label=name)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(labels))], labels)
    ax.set_ylabel("fraction of samples / posterior mass")
    ax.set_title(f"GMM phase retrieval, seed {report['seed']}, oversampling {report['oversampling']:g}, "
                 f"σ_y = {report['sigma_y']:g}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--num-samples", type=int, default=100)
    parser.add_argument("--presets", nargs="*", default=DEFAULT_PRESETS)
    parser.add_argument("--json", default=None)
    parser.add_argument("--sigma-y", type=float, default=SIGMA_Y)
    parser.add_argument("--oversampling", type=float, default=2.0,
                        help="DPS/DAPS convention: pad oversampling/8 · H per side (2.0: 1.5x per axis)")
    parser.add_argument("--num-steps", type=int, default=None,
                        help="override every preset's num_steps (DAPS: annealing steps); the row says so")
    parser.add_argument("--census", type=int, default=0, metavar="N",
                        help="mode census from N prior samples (plus the truth and every sample); 0: off")
    parser.add_argument("--reference", type=int, default=0, metavar="N",
                        help="with --census: two runs of the exact-density reference sampler (tempered SMC + "
                             "MALA) with N particles each; their orbit frequencies are the reference weights")
    parser.add_argument("--plot", default=None, metavar="PNG", help="with --census: bar chart of the orbit weights")
    parser.add_argument("--exact-conditional", action="store_true",
                        help="diagnostic: beside each DAPS preset, the same DAPS with the exact p(x0 | x_t) of the "
                             "mixture prior in its Langevin step (ExactConditionalDAPS)")
    parser.add_argument("--reference-power", type=float, default=1.0, metavar="P",
                        help="the reference samples p(x) p(y | x)^P (P = 2 σ_y² / τ² is what DAPS's data term "
                             "targets: 50 for τ = 0.01, σ_y = 0.05)")
    parser.add_argument("--unit-range", action="store_true",
                        help="DAPS's task: measure |F(pad(x/2 + 1/2))| (operator preset phase-retrieval-daps) "
                             "instead of DPS's |F(pad(x))|")
    args = parser.parse_args(argv)
    if args.plot and not args.census:
        parser.error("--plot needs --census N")
    if args.reference and not args.census:
        parser.error("--reference needs --census N (the orbits its samples are assigned to)")
    start = time.perf_counter()
    report = run(args.seed, args.num_samples, args.presets, num_steps=args.num_steps, sigma_y=args.sigma_y, oversampling=args.oversampling,
                 census_starts=args.census, reference_particles=args.reference,
                 exact_conditional=args.exact_conditional, reference_power=args.reference_power,
                 unit_range=args.unit_range)
    report["total_seconds"] = time.perf_counter() - start
    print(f"truth's own relative residual: {report['truth_residual']:.4f}, "
          f"log posterior {report['truth_log_posterior']:.1f}")
    if "census" in report:
        census = report["census"]
        print("census:", {k: (round(v, 3) if isinstance(v, float) else v) for k, v in census.items()
                          if not isinstance(v, list)})
        for key in ("weights", "reference_weights"):
            if key in census:
                print(f"  top {key}:", [round(w, 3) for w in census[key][:10]])
    for name, row in report["rows"].items():
        print(f"{name:24s} " + "  ".join(f"{k} {v:.4g}" for k, v in row.items() if not isinstance(v, list)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    if args.plot:
        plot_orbits(report, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
