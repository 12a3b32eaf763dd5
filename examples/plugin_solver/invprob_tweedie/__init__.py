"""DDIM with data consistency on the Tweedie estimate: an example third-party invprob solver.

At each noise level ``σ_i`` of the EDM grid: denoise (Tweedie's estimate ``x̂₀ = D(x, σ_i)``),
take ``dc_steps`` gradient steps on ``½‖y − A x̂₀‖²`` from it (the data-consistency step of
DDS, Chung et al. 2024, with gradient descent in place of CG so that any differentiable
operator works), and move to ``σ_{i+1}`` with the DDIM update in σ-space (Song et al. 2021):
``x = x̂₀ + √(σ_{i+1}² − c²) ε̂ + c z`` with ``c = η σ_{i+1} √(1 − σ_{i+1}²/σ_i²)`` and
``ε̂ = (x − x̂₀_prior) / σ_i``. One network call per step, no backpropagation through the
network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from invprob.operators.base import squared_residual
from invprob.sampling import karras_sigmas
from invprob.solvers.base import SolveContext, Solver, State

__all__ = ["TweedieDC"]


@dataclass(kw_only=True)
class TweedieState(State):
    """``x`` is the noisy iterate at ``sigma``."""


class TweedieDC(Solver):
    """DDIM sampling with gradient data consistency on Tweedie's estimate.

    Shapes: ``x (B, *x_shape)``, ``B = M × K``; one network call and ``dc_steps`` operator
    calls (with their gradient) per step.

    Args:
        num_steps: noise levels of the EDM grid (Karras et al. 2022, ρ = 7), from
            ``sigma_max`` = 80 to ``sigma_min`` = 0.002 (EDM's defaults).
        dc_steps: gradient steps of the data-consistency update (5, as DDS's CG iterations).
        lr: their step size (1.0, stable for operators with ``‖A‖ ≤ 1``; scale it by ``1/‖A‖²``
            otherwise).
        eta: DDIM's stochasticity η (0.15, DDS's default).
    """

    requires = ("differentiable",)

    def __init__(self, num_steps: int = 100, dc_steps: int = 5, lr: float = 1.0, eta: float = 0.15,
                 sigma_max: float = 80.0, sigma_min: float = 0.002) -> None:
        if not isinstance(num_steps, int) or num_steps < 1:
            raise ValueError(f"`num_steps` must be a positive int, got {num_steps!r}.")
        if not 0 <= eta <= 1:
            raise ValueError(f"`eta` must be in [0, 1], got {eta!r}.")
        self.num_steps, self.dc_steps, self.lr, self.eta = num_steps, int(dc_steps), float(lr), float(eta)
        self.sigma_max, self.sigma_min = float(sigma_max), float(sigma_min)

    @property
    def nfe_per_sample(self) -> int:
        return self.num_steps

    def sigmas(self, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        return karras_sigmas(self.num_steps, self.sigma_min, self.sigma_max, append_zero=True).to(dtype=dtype,
                                                                                                  device=device)

    def start(self, context: SolveContext) -> TweedieState:
        zeros = context.zeros()
        sigma = self.sigmas(zeros.dtype, zeros.device)[0]
        state = context.new_state(TweedieState, zeros, float(sigma))
        return state.replace(x=sigma * self.randn(state, step=-1))

    def step(self, state: TweedieState, i: int) -> TweedieState:
        sigmas = self.sigmas(state.x.dtype, state.x.device)
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        x0_prior = state.prior.denoise(state.x, sigma.expand(len(state.x)))
        x0 = x0_prior.detach()
        for _ in range(self.dc_steps):
            x0 = x0.requires_grad_(True)
            with torch.enable_grad():
                loss = 0.5 * squared_residual(state.problem.operator, x0, state.measurement).sum()
                (grad,) = torch.autograd.grad(loss, x0)
            x0 = (x0 - self.lr * grad).detach()
        eps = (state.x - x0_prior) / sigma
        noise = self.randn(state, step=i) if i < self.num_steps - 1 else torch.zeros_like(eps)
        c = self.eta * sigma_next * (1 - (sigma_next / sigma) ** 2).clamp_min(0).sqrt()
        x = x0 + (sigma_next**2 - c**2).sqrt() * eps + c * noise
        return state.replace(x=x, x0_hat=x0, sigma=sigma_next.expand(len(x)))

    def result(self, state: TweedieState) -> torch.Tensor:
        x = state.x0_hat.detach()
        return x.reshape(state.num_measurements, state.num_samples, *x.shape[1:])
