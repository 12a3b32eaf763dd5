"""How often DAPS variants land in the truth's orbit on the GMM phase-retrieval problem.

At ``oversampling 4`` the census of ``phase_retrieval_gmm.py`` finds that the truth's orbit
holds ≈ 97 % of the posterior mass (seed 7, σ_y = 0.05), so the fraction of samples in that orbit
is the whole story of mode recovery there (an exact sampler: ≈ 0.97). Each variant draws 100
samples; a sample is "in the truth's orbit" when gradient ascent on the exact log posterior from
it ends within RMSE 0.05 (after the trivial alignments) of the maximum reached from the truth.
Cheaper than a census: no Hessians, one ascent per variant.

Usage: python benchmarks/phase_retrieval_daps_sweep.py OVERSAMPLING [VARIANT ...]   (default: all)
"""

import sys
import time


from phase_retrieval_gmm import aligned_rmse, ascend, assign_to_modes, setup

from invprob.registry import get_solver

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


def main(argv: list[str]) -> int:
    unknown = [name for name in argv[1:] if name not in VARIANTS]
    if not argv or unknown:
        raise SystemExit(f"usage: phase_retrieval_daps_sweep.py OVERSAMPLING [VARIANT ...]; "
                         f"unknown variants {unknown}; known: {sorted(VARIANTS)}")
    seed = 7
    prior, problem, truth, log_post, _ = setup(seed, float(argv[0]), 0.05)  # phase_retrieval_gmm.py's problem
    mode = ascend(log_post, truth)
    print("truth mode logpost", log_post(mode).item(), "truth", log_post(truth).item(), flush=True)
    for name in argv[1:] or VARIANTS:
        preset, overrides = VARIANTS[name]
        start = time.time()
        try:
            s = get_solver(preset, **overrides).solve(problem, prior, num_samples=100, generator=seed,
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
    raise SystemExit(main(sys.argv[1:]))
