"""How often DAPS variants land in the truth's orbit on the GMM phase-retrieval problem.

What it measures: for each DAPS variant (a preset with overrides, :data:`VARIANTS`), the
fraction of 100 samples that lie in the truth's orbit, on the problem of
``phase_retrieval_gmm.py`` (:func:`invprob.evaluation.phase_retrieval_problem`: seed 7,
σ_y = 0.05, the oversampling given on the command line). How: gradient ascent on the exact log
posterior from the truth gives the truth's maximum; a sample is in the truth's orbit when the
ascent from it ends within RMSE 0.05 of that maximum after alignment over the trivial
ambiguities (:func:`invprob.evaluation.assign_to_modes`). Also printed: the median exact log
posterior and the median aligned RMSE to the truth. Cheaper than a census (no Hessians, one
ascent per variant); what share of the posterior the truth's orbit holds comes from
``phase_retrieval_gmm.py --census N --reference N`` (e.g.
``benchmarks/results/phase_retrieval_gmm_seed7_os4_reference.json``, ``truth_orbit_reference_weight``).

Committed result: ``benchmarks/results/phase_retrieval_daps_sweep_os4.txt``, the printed output
of ``python benchmarks/phase_retrieval_daps_sweep.py 4 [VARIANT ...]``; its header lists the
invocations it was assembled from and the variants it does not hold.

Usage: python benchmarks/phase_retrieval_daps_sweep.py OVERSAMPLING [VARIANT ...]   (default: all)
"""

from __future__ import annotations

import argparse
import time

from invprob.evaluation import aligned_rmse, ascend, assign_to_modes, phase_retrieval_problem
from invprob.registry import get_solver

SEED = 7
SIGMA_Y = 0.05
NUM_SAMPLES = 100

# label: (preset, overrides). Only "paper" is a paper setting (daps-phase-retrieval = DAPS-1K).
VARIANTS = {
    "paper": ("daps-phase-retrieval", {}),
    "sigma-y": ("daps-sigma-y", {}),
    "tau=sqrt2 sy, lr 2.5e-3": ("daps-phase-retrieval", {"tau": None, "lr": 2.5e-3}),
    "paper, 400 annealing": ("daps-phase-retrieval", {"num_steps": 400}),
    "paper, lr 2e-4": ("daps-phase-retrieval", {"lr": 2e-4}),
    "paper, sigma_max 10": ("daps-phase-retrieval", {"sigma_max": 10.0}),
    "paper, 1000 annealing": ("daps-phase-retrieval", {"num_steps": 1000}),
    "1000 annealing x 20 Langevin": ("daps-phase-retrieval", {"num_steps": 1000, "langevin_steps": 20}),
    "1000 annealing x 20 Langevin, 1 ODE": ("daps-phase-retrieval", {"num_steps": 1000, "langevin_steps": 20,
                                                                     "ode_steps": 1}),
    "200 annealing x 300 Langevin": ("daps-phase-retrieval", {"langevin_steps": 300}),
    "400 annealing x 300 Langevin": ("daps-phase-retrieval", {"num_steps": 400, "langevin_steps": 300}),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("oversampling", type=float, help="the DPS/DAPS padding convention (2.0: 1.5x per axis)")
    parser.add_argument("variants", nargs="*", metavar="VARIANT",
                        help=f"a subset of the variants (default: all): {', '.join(map(repr, VARIANTS))}")
    args = parser.parse_args(argv)
    unknown = [name for name in args.variants if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {sorted(VARIANTS)}")
    test = phase_retrieval_problem(SEED, args.oversampling, SIGMA_Y)  # phase_retrieval_gmm.py's problem
    log_post, truth = test.log_posterior, test.truth
    mode = ascend(log_post, truth)
    print("truth mode logpost", log_post(mode).item(), "truth", log_post(truth).item(), flush=True)
    for name in args.variants or VARIANTS:
        preset, overrides = VARIANTS[name]
        start = time.time()
        try:
            s = get_solver(preset, **overrides).solve(test.problem, test.prior, num_samples=NUM_SAMPLES, generator=SEED,
                                                      progress=False).samples[0]
        except FloatingPointError as err:  # a diverged run is a result too
            print(f"{name:28s} diverged: {err}", flush=True)
            continue
        hit = (assign_to_modes(log_post, s, mode) == 0).double().mean().item()  # the truth's maximum is "mode" 0
        lp = log_post(s)
        print(f"{name:28s} truth-orbit {hit:.2f}  logpost median {lp.median():.1f}  "
              f"aligned rmse {aligned_rmse(s, truth[0]).median():.3f}  {time.time() - start:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
