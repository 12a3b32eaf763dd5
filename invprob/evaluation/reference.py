"""Reference samplers for posteriors whose density is known exactly (up to a constant).

:func:`reference_sampler` is the yardstick for multimodal posteriors with an exact prior
density (the Gaussian-mixture test bed): tempered SMC with Metropolis-adjusted moves, whose
mode weights come from importance weights rather than from moves between modes.
:class:`ExactConditionalDAPS` is a diagnostic: DAPS with one of its approximations removed.
"""

from __future__ import annotations

import math
from typing import Any, Callable, TypedDict

import torch
from torch import Tensor

from ..solvers import DAPS
from ..solvers.base import State
from ..solvers.smc import next_temperature, normalized_weights

__all__ = ["ReferenceStats", "reference_sampler", "ExactConditionalDAPS"]

LogDensity = Callable[[Tensor], Tensor]


class ReferenceStats(TypedDict):
    """Run statistics of :func:`reference_sampler`.

    Attributes:
        stages: tempering stages (resampling + MALA moves) until β reached 1.
        mala_steps: MALA steps per stage.
        final_step: the MALA step size at the end of the run.
        mean_acceptance: the mean acceptance rate over every MALA step.
    """

    stages: int
    mala_steps: int
    final_step: float
    mean_acceptance: float


def reference_sampler(log_prior: LogDensity, log_lik: LogDensity, init: Tensor, generator: torch.Generator,
                      mala_steps: int = 20, ess_fraction: float = 0.5, step: float = 1e-3,
                      target_accept: float = 0.57) -> tuple[Tensor, ReferenceStats]:
    """Tempered SMC with MALA moves on ``p(x) p(y | x)^β``, β: 0 → 1, for an exact density.

    The textbook sampler for multimodal posteriors whose density is known (Del Moral, Doucet &
    Jasra 2006): the ``N`` particles start as prior samples (``init``); each stage raises β as
    far as keeps the effective sample size of the incremental weights ``p(y | x)^{Δβ}`` at
    ``ess_fraction · N`` (:func:`~invprob.solvers.smc.next_temperature`, adaptive tempering as
    in Jasra et al. 2011), resamples (multinomial, from ``generator``) and moves every particle
    by ``mala_steps`` Metropolis-adjusted Langevin steps (Roberts & Tweedie 1996) that leave the
    tempered posterior invariant, the step size adapted after each step towards the acceptance
    rate ``target_accept`` (0.574 is optimal for MALA, Roberts & Rosenthal 1998). Mode weights
    come from the importance weights, so they are right without moves between modes as long as
    each mode keeps particles. Every random draw comes from ``generator``, in a fixed order.

    Args:
        log_prior: ``log p(x)``, ``(N, *x_shape) -> (N,)``, differentiable.
        log_lik: ``log p(y | x)``, ``(N, *x_shape) -> (N,)``, differentiable.
        init: prior samples ``(N, *x_shape)``; not modified.
        generator: the source of every random draw.
        mala_steps: MALA steps per stage.
        ess_fraction: the ESS kept at each stage, as a fraction of ``N``.
        step: initial MALA step size ``h`` (proposal ``x + h ∇ log π + √(2h) ε``).
        target_accept: the acceptance rate the step size is adapted towards.

    Returns:
        ``(particles (N, *x_shape), stats)``: equally weighted samples of ``p(x | y)`` and
        the run's :class:`ReferenceStats`.
    """
    x, beta, stages, accepts = init.detach().clone(), 0.0, 0, []
    N = len(x)

    def tempered(v: Tensor, b: float) -> tuple[Tensor, Tensor]:
        v = v.detach().requires_grad_(True)
        value = log_prior(v) + b * log_lik(v)
        (grad,) = torch.autograd.grad(value.sum(), v)
        return value.detach(), grad

    while beta < 1:
        with torch.no_grad():
            ll = log_lik(x)
        new_beta = next_temperature(ll, beta, ess_fraction)
        log_w = (new_beta - beta) * ll
        x = x[torch.multinomial(normalized_weights(log_w), N, replacement=True, generator=generator)]
        beta, stages = new_beta, stages + 1
        value, grad = tempered(x, beta)
        for _ in range(mala_steps):
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
            prop = x + step * grad + (2 * step) ** 0.5 * noise
            value_p, grad_p = tempered(prop, beta)
            log_q_fwd = -(prop - x - step * grad).flatten(1).pow(2).sum(1) / (4 * step)
            log_q_bwd = -(x - prop - step * grad_p).flatten(1).pow(2).sum(1) / (4 * step)
            accept = torch.rand(N, generator=generator, dtype=x.dtype).log() < value_p - value + log_q_bwd - log_q_fwd
            rate = accept.double().mean().item()
            accepts.append(rate)
            keep = accept.view(-1, *[1] * (x.dim() - 1))
            x, value, grad = torch.where(keep, prop, x), torch.where(accept, value_p, value), torch.where(keep, grad_p, grad)
            step *= math.exp(0.5 * (rate - target_accept))
    return x, ReferenceStats(stages=stages, mala_steps=mala_steps, final_step=step,
                             mean_acceptance=sum(accepts) / max(len(accepts), 1))


class ExactConditionalDAPS(DAPS):
    """Diagnostic, for priors with an exact density: DAPS with the exact ``p(x0 | x_t)``.

    DAPS's Langevin step targets ``p(x0 | x_t, y) ∝ p(y | x0) p(x0 | x_t)`` with the Gaussian
    stand-in ``N(x0; x̂0, σ_t² I)`` for ``p(x0 | x_t)``. This subclass uses the exact
    conditional ``p(x0 | x_t) ∝ p(x0) N(x_t; x0, σ_t² I)`` instead: prior score
    ``∇ log p(x0) + (x_t − x0) / σ_t²``, with ``∇ log p`` by autograd through ``log_prior``.
    Everything else is DAPS's, so comparing the two isolates that approximation.

    Args:
        log_prior: ``log p(x0)``, ``(B, *x_shape) -> (B,)``, differentiable (e.g. the
            ``log_prob`` of :class:`~invprob.priors.GaussianMixture`).
        **daps_kwargs: :class:`~invprob.solvers.DAPS`'s arguments.
    """

    def __init__(self, log_prior: LogDensity, **daps_kwargs: Any) -> None:
        super().__init__(**daps_kwargs)
        self.log_prior = log_prior

    @classmethod
    def from_daps(cls, daps: DAPS, log_prior: LogDensity) -> "ExactConditionalDAPS":
        """The diagnostic with the settings of ``daps`` (e.g. a preset from
        :func:`invprob.registry.get_solver`): every argument of ``DAPS.__init__`` read back from
        the attribute of the same name."""
        import inspect

        names = [n for n in inspect.signature(DAPS.__init__).parameters if n != "self"]
        missing = [n for n in names if not hasattr(daps, n)]
        if missing:
            raise ValueError(f"`daps` does not keep its arguments {missing} as attributes; build "
                             f"ExactConditionalDAPS(log_prior, **settings) with them instead.")
        return cls(log_prior, **{n: getattr(daps, n) for n in names})

    def prior_score(self, state: State, x0: Tensor, x0_hat: Tensor, sigma: float) -> Tensor:
        x0 = x0.detach().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(self.log_prior(x0).sum(), x0)
        return grad + (state.x - x0.detach()) / sigma**2
