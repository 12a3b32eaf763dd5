"""Evaluation: test problems with exact answers, metrics, reference samplers and data sets.

What the benchmarks (``benchmarks/*.py``) are built from, public so that any solver can be
measured the same way:

* :mod:`~invprob.evaluation.testbed`: the Gaussian-mixture test bed, linear problems with a
  closed-form posterior and phase retrieval with an exact posterior density;
* :mod:`~invprob.evaluation.metrics`: sample-based distances to an exact posterior (sliced
  Wasserstein and its noise floor, coverage, posterior-mean error), the correlation of a std map
  with the error of the mean, and PSNR / SSIM;
* :mod:`~invprob.evaluation.modes`: mode census and mode-weight recovery for multimodal
  posteriors with an exact density;
* :mod:`~invprob.evaluation.reference`: an exact-density reference sampler (tempered SMC with
  MALA moves) and the exact-conditional DAPS diagnostic;
* :mod:`~invprob.evaluation.baselines`: classical reconstructions (TV);
* :mod:`~invprob.evaluation.datasets`: the Set12 crops and each shipped prior's held-apart
  images (from the data sets of :mod:`invprob.datasets`).
"""

from .baselines import tv_baseline
from .datasets import HELD_APART, held_apart, set12
from .metrics import (coverage, lpips_metric, posterior_mean_error, psnr, set_distances, sliced_wasserstein,
                      sliced_wasserstein_floor, ssim, std_error_correlation)
from .modes import (ModeCensus, aligned_rmse, ascend, assign_reached, assign_to_modes, distinct_rows,
                    laplace_log_mass, mode_census, mode_tv, mode_tv_floor, orbit_frequencies)
from .reference import ExactConditionalDAPS, ReferenceStats, reference_sampler
from .runs import PeakMemory, image_grid, restoration_operators, solve_each
from .testbed import (FAMILIES, LATENT_SHAPE, PROBLEMS, SIGMA_Y, X_SHAPE, LatentTestProblem, LinearAutoencoder,
                      PhaseRetrievalTestProblem, gaussian_matrix_operator, gmm_prior, inpainting_operator,
                      exact_flow_prior, latent_problem, make_problem, phase_retrieval_problem)

__all__ = ["solve_each", "PeakMemory", "image_grid", "restoration_operators",
    # testbed
    "gmm_prior", "inpainting_operator", "gaussian_matrix_operator", "make_problem", "PROBLEMS", "FAMILIES", "X_SHAPE", "SIGMA_Y",
    "PhaseRetrievalTestProblem", "phase_retrieval_problem", "LATENT_SHAPE", "LinearAutoencoder", "LatentTestProblem",
    "latent_problem", "exact_flow_prior",
    # metrics
    "sliced_wasserstein", "sliced_wasserstein_floor", "coverage", "posterior_mean_error", "psnr", "ssim",
    "lpips_metric", "set_distances", "std_error_correlation",
    # modes
    "ModeCensus", "aligned_rmse", "ascend", "laplace_log_mass", "distinct_rows", "mode_census", "assign_to_modes",
    "assign_reached", "orbit_frequencies", "mode_tv", "mode_tv_floor",
    # reference
    "ReferenceStats", "reference_sampler", "ExactConditionalDAPS",
    # baselines
    "tv_baseline",
    # datasets
    "set12", "HELD_APART", "held_apart",
]
