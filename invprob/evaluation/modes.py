"""Posterior modes of a density known up to a constant: census, Laplace masses, mode recovery.

For a multimodal posterior whose unnormalised log density ``log p̃(x | y)`` can be evaluated
and differentiated (a Gaussian-mixture prior with any differentiable likelihood, e.g.
:func:`invprob.evaluation.testbed.phase_retrieval_problem`), a sampler is judged by whether it
puts its samples in the posterior's modes in the right proportions, not by its distance to the
truth (which need not sit in the heaviest mode):

1. :func:`mode_census` finds the modes: gradient ascent (:func:`ascend`) from many starts, the
   trivial images of every maximum ascended too, maxima merged into orbits of the trivial
   ambiguities, each weighted by its Laplace mass (:func:`laplace_log_mass`);
2. :func:`assign_to_modes` puts each sample in the orbit whose basin of attraction it lies in;
3. :func:`orbit_frequencies` and :func:`mode_tv` compare the samples' orbit frequencies with
   the orbits' weights (total variation), and :func:`mode_tv_floor` gives the distance an
   exact sampler with as many samples would have.

Every function takes ``log_post``: a callable ``(N, *x_shape) -> (N,)``, differentiable by
autograd. ``images`` is the map to the trivial ambiguities, ``x (N, *x_shape) -> (K, N,
*x_shape)`` with ``x`` itself first (default: phase retrieval's
:func:`~invprob.operators.phase_retrieval.trivial_images`; pass the operator's own
``trivial_images`` for other conventions).
"""

from __future__ import annotations

import math
from typing import Callable, TypedDict

import torch
from torch import Tensor

from ..operators.phase_retrieval import trivial_images

__all__ = ["ModeCensus", "aligned_rmse", "ascend", "laplace_log_mass", "distinct_rows", "mode_census",
           "assign_to_modes", "assign_reached", "orbit_frequencies", "mode_tv", "mode_tv_floor"]

LogDensity = Callable[[Tensor], Tensor]
TrivialImages = Callable[[Tensor], Tensor]


class ModeCensus(TypedDict):
    """What :func:`mode_census` returns (``J`` orbits, heaviest first).

    Attributes:
        modes: one representative maximum per orbit ``(J, *x_shape)``.
        log_mass: log of each orbit's Laplace mass ``(J,)``, including the unknown constant of
            ``log_post`` (only differences are meaningful).
        weights: normalised orbit masses ``(J,)``, summing to 1.
        num_maxima: distinct local maxima found (an orbit holds one or more).
        reached: the maximum each start ascended to ``(N, *x_shape)``, for :func:`assign_reached`.
    """

    modes: Tensor
    log_mass: Tensor
    weights: Tensor
    num_maxima: int
    reached: Tensor


def aligned_rmse(samples: Tensor, truth: Tensor, images: TrivialImages = trivial_images) -> Tensor:
    """RMSE of each sample to ``truth``, minimised over the trivial images of the sample.

    Args:
        samples: ``(N, *x_shape)``.
        truth: ``(*x_shape)`` (broadcast against every image).
        images: ``x -> (K, N, *x_shape)``, the identity first.

    Returns:
        ``(N,)``: ``min_k sqrt(mean((images(x)_k − truth)²))`` per sample.
    """
    err = (images(samples) - truth).flatten(2).pow(2).mean(-1).sqrt()
    return err.min(0).values


def ascend(log_post: LogDensity, x: Tensor, steps: int = 3000, lr: float = 0.02) -> Tensor:
    """The local maxima of ``log_post`` reached from each row of ``x``.

    Adam (Kingma & Ba 2015) on ``−Σ log_post(x)`` with a cosine-annealed step from ``lr`` to 0
    over ``steps`` iterations; rows do not interact (the objective is a sum over rows).

    Args:
        log_post: ``(N, *x_shape) -> (N,)``, differentiable.
        x: the starting points ``(N, *x_shape)``; not modified.
        steps: Adam iterations.
        lr: initial step size.

    Returns:
        ``(N, *x_shape)``, detached.
    """
    x = x.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        opt.zero_grad()
        (-log_post(x).sum()).backward()
        opt.step()
        schedule.step()
    return x.detach()


def laplace_log_mass(log_post: LogDensity, modes: Tensor, chunk: int = 64) -> Tensor:
    """Laplace estimate of the (unnormalised) posterior mass around each mode.

    ``log p̃(m) + d/2 log 2π − ½ log det(−H(m))`` with ``H`` the exact Hessian of ``log_post``
    at ``m`` (``torch.func.hessian``, vectorised over modes with ``vmap``), symmetrised. Exact
    for Gaussian modes; for non-Gaussian ones only an approximation.

    Args:
        log_post: ``(N, *x_shape) -> (N,)``, twice differentiable.
        modes: ``(J, *x_shape)``, local maxima of ``log_post``.
        chunk: modes per vectorised Hessian evaluation (memory: ``chunk · d²``).

    Returns:
        ``(J,)``; NaN where ``−H`` is not positive definite (a saddle, or an unconverged ascent).
    """
    from torch.func import hessian, vmap

    shape, d = modes.shape[1:], modes[0].numel()
    hess_fn = vmap(hessian(lambda v: log_post(v.reshape(1, *shape))[0]))
    out = []
    for part in modes.flatten(1).split(chunk):
        hess = hess_fn(part)
        eig = torch.linalg.eigvalsh(-(hess + hess.transpose(1, 2)) / 2)
        with torch.no_grad():
            lm = (log_post(part.reshape(-1, *shape)) + 0.5 * d * math.log(2 * math.pi)
                  - 0.5 * eig.clamp_min(1e-300).log().sum(1))
        out.append(torch.where(eig.min(1).values > 0, lm, torch.full_like(lm, float("nan"))))
    return torch.cat(out)


def distinct_rows(x: Tensor, tol: float) -> list[int]:
    """Greedy de-duplication: indices of the rows of ``x (N, ...)`` whose RMSE to every earlier
    kept row is at least ``tol``, in order (so earlier rows win)."""
    keep: list[int] = []
    for i in range(len(x)):
        if not keep or (x[keep] - x[i]).flatten(1).pow(2).mean(1).sqrt().min() >= tol:
            keep.append(i)
    return keep


def mode_census(log_post: LogDensity, starts: Tensor, tol: float = 0.05,
                images: TrivialImages = trivial_images) -> ModeCensus:
    """The posterior's modes up to the trivial ambiguities, with Laplace masses.

    Every start is ascended to its local maximum (:func:`ascend`); each distinct maximum's
    trivial images are ascended too (a prior that is not symmetric makes them separate modes of
    different mass). Maxima whose Hessian is not negative definite are dropped; maxima closer
    than ``tol`` (RMSE) are merged, the heaviest estimate kept; maxima within aligned RMSE
    ``tol`` (:func:`aligned_rmse`) of an orbit's representative join that orbit, whose mass is
    the sum of its maxima's Laplace masses (:func:`laplace_log_mass`). The census only knows
    the modes its starts reach: start from many prior samples and from the samples to assess.

    Args:
        log_post: ``(N, *x_shape) -> (N,)``, twice differentiable.
        starts: ``(N, *x_shape)``.
        tol: RMSE under which two maxima are the same.
        images: ``x -> (K, N, *x_shape)``, the identity first.

    Returns:
        A :class:`ModeCensus`, orbits sorted by mass, heaviest first.
    """
    reached = ascend(log_post, starts)
    found = reached[distinct_rows(reached, tol)]
    maxima = torch.cat([found, ascend(log_post, images(found)[1:].flatten(0, 1))])
    log_mass = laplace_log_mass(log_post, maxima)
    keep = ~log_mass.isnan()
    maxima, log_mass = maxima[keep], log_mass[keep]
    order = log_mass.argsort(descending=True)
    maxima, log_mass = maxima[order], log_mass[order]
    kept = distinct_rows(maxima, tol)  # heaviest first, so each duplicate keeps the best estimate
    distinct, distinct_mass = maxima[kept], log_mass[kept]
    reps: list[Tensor] = []
    members: list[list[Tensor]] = []
    for m, lm in zip(distinct, distinct_mass):
        j = next((j for j, r in enumerate(reps) if aligned_rmse(m[None], r, images)[0] < tol), None)
        if j is None:
            reps.append(m)
            members.append([lm])
        else:
            members[j].append(lm)
    orbit_mass = torch.stack([torch.logsumexp(torch.stack(ms), 0) for ms in members])
    order = orbit_mass.argsort(descending=True)
    modes = torch.stack(reps)[order]
    orbit_mass = orbit_mass[order]
    return ModeCensus(modes=modes, log_mass=orbit_mass, weights=(orbit_mass - orbit_mass.logsumexp(0)).exp(),
                      num_maxima=len(distinct), reached=reached)


def assign_to_modes(log_post: LogDensity, samples: Tensor, modes: Tensor, tol: float = 0.05,
                    images: TrivialImages = trivial_images) -> Tensor:
    """Index of the orbit whose basin each sample lies in.

    Each sample is ascended to its local maximum (:func:`ascend`), then matched by
    :func:`assign_reached`.

    Args:
        log_post: ``(N, *x_shape) -> (N,)``, differentiable.
        samples: ``(N, *x_shape)``.
        modes: the orbits' representatives ``(J, *x_shape)`` (:func:`mode_census`).
        tol: aligned RMSE under which a maximum belongs to an orbit.
        images: ``x -> (K, N, *x_shape)``, the identity first.

    Returns:
        ``(N,)`` int64 in ``[0, J)``, −1 where no orbit matches.
    """
    return assign_reached(ascend(log_post, samples), modes, tol, images)


def assign_reached(reached: Tensor, modes: Tensor, tol: float = 0.05,
                   images: TrivialImages = trivial_images) -> Tensor:
    """:func:`assign_to_modes` for samples already ascended to their maxima ``reached (N, *x_shape)``:
    the nearest orbit in aligned RMSE if nearer than ``tol``, else −1; ``(N,)`` int64."""
    dist = torch.stack([aligned_rmse(reached, m, images) for m in modes], 1)  # (N, J)
    best = dist.min(1)
    return torch.where(best.values < tol, best.indices, torch.full_like(best.indices, -1))


def orbit_frequencies(which: Tensor, num_orbits: int, dtype: torch.dtype) -> tuple[Tensor, float]:
    """Orbit frequencies of an assignment.

    Args:
        which: orbit index per sample ``(N,)``, −1 for none (:func:`assign_to_modes`).
        num_orbits: ``J``.
        dtype: dtype of the frequencies (that of the weights they are compared with).

    Returns:
        ``(frequencies (J,), unassigned)``: the fraction of samples in each orbit and the
        fraction in none; together they sum to 1.
    """
    freq = torch.bincount(which[which >= 0], minlength=num_orbits).to(dtype) / len(which)
    return freq, (which < 0).double().mean().item()


def mode_tv(frequencies: Tensor, unassigned: float, weights: Tensor) -> float:
    """Total-variation distance between orbit frequencies and orbit weights.

    ``½ (Σ_j |f_j − w_j| + u)``: the unassigned fraction ``u`` counts as mass on no orbit
    (disjoint from the weights). 0: every orbit found in the right proportion; 1: disjoint.

    Args:
        frequencies: ``(J,)`` (:func:`orbit_frequencies`).
        unassigned: the fraction of samples in no orbit.
        weights: ``(J,)``, summing to 1.
    """
    return 0.5 * ((frequencies - weights).abs().sum().item() + unassigned)


def mode_tv_floor(weights: Tensor, num_samples: int, draws: int = 2000, seed: int = 0) -> float:
    """The mean :func:`mode_tv` of an exact sampler with ``num_samples`` samples.

    The finite-sample floor: the TV distance between the frequencies of ``num_samples``
    multinomial draws from ``weights`` and ``weights`` themselves, averaged over ``draws``
    repetitions (generator seeded with ``seed``).

    Args:
        weights: ``(J,)``, summing to 1.
        num_samples: samples per repetition.
        draws: repetitions.
        seed: seeds the generator of the draws.
    """
    g = torch.Generator().manual_seed(seed)
    counts = torch.stack([torch.bincount(torch.multinomial(weights, num_samples, True, generator=g),
                                         minlength=len(weights)) for _ in range(draws)])
    return 0.5 * (counts.to(weights.dtype) / num_samples - weights).abs().sum(1).mean().item()
