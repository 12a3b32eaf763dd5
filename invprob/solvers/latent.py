"""Latent posterior sampling: solvers that sample the latents ``z`` of a :class:`~invprob.priors.LatentPrior`
for an image-space problem ``y = A(D(z)) + n`` and return decoded images."""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import UnsupportedProblemError
from ..problem import Problem
from .base import SolveResult, Solver, State
from .daps import DAPS

__all__ = ["LatentSolver", "LatentDAPS"]


class LatentSolver(Solver):
    """Mixin of the latent solvers: the user's image-space problem and a latent prior in, decoded
    images out.

    ``init`` / ``solve`` measure through :meth:`LatentPrior.latent_problem` (``z ↦ A(D(z))``,
    :class:`~invprob.operators.LatentOperator`); the state holds latents; ``result`` decodes them,
    so samples are ``(M, K, *image_shape)``. A pixel prior is refused with the fix.
    """

    def _latent(self, problem: Problem, prior) -> Problem:
        if not callable(getattr(prior, "latent_problem", None)):
            raise UnsupportedProblemError(f"{type(self).__name__} samples the latents of a latent prior "
                                          f"(invprob.priors.LatentPrior); for a pixel prior use its pixel "
                                          f"counterpart (e.g. daps).")
        return prior.latent_problem(problem)

    def check(self, problem: Problem, prior) -> None:
        super().check(self._latent(problem, prior), prior)

    def init(self, problem: Problem, prior, num_samples: int = 1,
             generator: int | torch.Generator | None = None) -> State:
        return super().init(self._latent(problem, prior), prior, num_samples, generator)

    def solve(self, problem: Problem, prior, num_samples: int = 1, generator=None, callback=None,
              progress: bool = True) -> SolveResult:
        return super().solve(self._latent(problem, prior), prior, num_samples, generator, callback, progress)

    def result(self, state: State) -> Tensor:
        z = super().result(state)
        with torch.no_grad():
            x = state.prior.decode(z.flatten(0, 1))
        return x.reshape(*z.shape[:2], *x.shape[1:])


class LatentDAPS(LatentSolver, DAPS):
    r"""Latent DAPS (Zhang et al. 2024): DAPS's annealing on the latents, its MCMC through the decoder.

    Each of the ``num_steps`` annealing levels σ_i (EDM poly-7 from ``sigma_max`` to ``sigma_min``,
    the last level 0): ``ẑ0`` by ``ode_steps`` Euler steps of the latent probability-flow ODE to
    ``ode_sigma_min``; then MCMC on ``p(z0 | z_t, y) ∝ exp(−‖A(D(z0)) − y‖² / τ²) N(z0; ẑ0, σ_i²)``
    with the data gradient taken through the decoder and clamped to ``[−grad_clamp, grad_clamp]``
    entrywise before the division by τ² (the official ``LatentWrapper.gradient``); then
    ``z = z0 + σ_{i+1} ε``. The sample is ``D(z0)`` of the last level (decoded, not clamped). Same
    update rules as :class:`~invprob.solvers.DAPS` (whose docstring states them); the official
    latent configs use its damped HMC (``mc_algo='hmc'``).

    Defaults (``configs/sampler/latent_edm_daps.yaml`` and the ``ldm`` group of
    ``configs/task/*.yaml``, official code zhangbingliang2019/DAPS): 50 annealing levels, σ from 10
    to 0.1, 2 ODE steps to 0.001, τ = 0.01, HMC; per task its steps, lr, lr_min_ratio and momentum
    (presets ``latent-daps-*``; ``latent-daps`` is 4× super-resolution: 24 steps, lr 1.35e-4,
    ratio 0.023, momentum 0.86). The network is called ``num_steps × ode_steps`` times; the decoder
    once per MCMC step (through the operator) and once at the end.

    References:
        | Improving Diffusion Inverse Problem Solving with Decoupled Noise Annealing
        | (Zhang, Chu, Berner, Meng, Anandkumar & Song, CVPR 2025) https://arxiv.org/abs/2407.01521
    """

    def __init__(self, num_steps: int = 50, sigma_max: float = 10.0, sigma_min: float = 0.1, ode_steps: int = 2,
                 ode_sigma_min: float = 0.001, langevin_steps: int = 24, lr: float = 1.35e-4, tau: float = 0.01,
                 lr_min_ratio: float = 0.023, rho: float = 7.0, mc_algo: str = "hmc", momentum: float = 0.86,
                 grad_clamp: float | None = 1.0) -> None:
        super().__init__(num_steps=num_steps, sigma_max=sigma_max, sigma_min=sigma_min, ode_steps=ode_steps,
                         ode_sigma_min=ode_sigma_min, langevin_steps=langevin_steps, lr=lr, tau=tau,
                         lr_min_ratio=lr_min_ratio, rho=rho, mc_algo=mc_algo, momentum=momentum)
        if grad_clamp is not None and not grad_clamp > 0:
            raise ValueError(f"`grad_clamp` must be > 0 or None, got {grad_clamp}.")
        self.grad_clamp = grad_clamp

    def _data_gradient(self, state: State, x0: Tensor) -> Tensor:
        grad = DAPS._data_gradient(state, x0)
        return grad if self.grad_clamp is None else grad.clamp(-self.grad_clamp, self.grad_clamp)
