"""Solving a benchmark's measurements one at a time, each with its own seed."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from ..problem import Problem

__all__ = ["solve_each"]


def solve_each(solver, problem: Problem, prior, num_samples: int = 1, progress: bool = False) -> SimpleNamespace:
    """Solve measurement ``i`` of ``problem`` alone with seed ``i``.

    One solve of ``M`` measurements gives sample ``k`` of every measurement the same noise (a
    sample's seed does not depend on its measurement, so that a measurement solved alone
    reproduces its batch result); a mean over the measurements is then closer to one draw than
    to an average of ``M``. Returns ``samples (M, K, *x_shape)`` (on the CPU), ``nfe`` and
    ``decoder_calls`` (means over the measurements) and ``seconds`` (their sum)."""
    results = [solver.solve(Problem(problem.operator, problem.measurement[i:i + 1], problem.noise), prior,
                            num_samples=num_samples, generator=i, progress=progress)
               for i in range(problem.num_measurements)]
    return SimpleNamespace(samples=torch.cat([r.samples.detach().cpu() for r in results]),
                           nfe=sum(r.nfe for r in results) / len(results),
                           decoder_calls=sum(r.decoder_calls for r in results) / len(results),
                           seconds=sum(r.seconds for r in results))
