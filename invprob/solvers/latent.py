"""Latent posterior sampling: solvers that sample the latents ``z`` of a :class:`~invprob.priors.LatentPrior`
for an image-space problem ``y = A(D(z)) + n`` and return decoded images."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import streams
from ..errors import UnsupportedProblemError
from ..problem import Problem
from ..linalg import row_norm
from ..sampling import alphas_cumprod_from_sigma, ddim_grid, euler_step
from .base import SolveResult, Solver, State, Tunable
from .daps import DAPS

__all__ = ["LatentSolver", "LatentDAPS", "PSLD"]


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
            x = state.problem.operator.decode(z.flatten(0, 1))
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
    once per MCMC step (through the operator), once more per level (the data fit) and once at
    the end.

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


class PSLD(LatentSolver):
    r"""PSLD — Posterior Sampling with Latent Diffusion (Rout et al., NeurIPS 2023).

    Latent DDIM (η = 0) with two gradient corrections taken through the latent denoiser, per step
    at level σ_t (σ-space latents ``z``; ``ẑ0 = D_θ(z, σ_t)``, ``x̂ = D(ẑ0)`` the decoded image):

    .. math::
        e(z) = \omega \lVert y - (A\hat x + \sigma_y n) \rVert
             + \gamma \lVert E\big(A^\top y + \hat x - A^\top A \hat x\big) - \hat z_0 \rVert, \qquad
        z_s = \hat z_0 + \sigma_s \frac{z - \hat z_0}{\sigma_t}
              - \frac{\nabla_z e(z)}{\sqrt{\bar\alpha_t \bar\alpha_s}}

    — both plain norms (not squared), the measurement prediction re-noised with fresh noise of
    the data's σ_y, and the gluing term pulling ẑ0 towards the encoding of the image whose
    measured part is ``y`` and whose unmeasured part is ``x̂`` — as the official
    ``ldm/models/diffusion/psld.py``, whose gradient step on the VP variable is the
    ``1/sqrt(ᾱ_t ᾱ_s)`` factor here. Differences on purpose: the adjoint is the operator's true
    ``Aᵀ`` (the official code uses the identity for blur and nearest upsampling for
    super-resolution); the norms are per sample (the official code takes one norm over the
    batch); the σ grid is the linear-β DDPM one of the σ-space prior (SD's scaled-linear schedule
    covers a narrower σ range). The sample is ``D(z_0)``.

    NFE per sample = ``num_steps`` (each with a backpropagation through the network, the decoder
    and the encoder); two forward-operator calls per step. Needs a linear image operator with an
    adjoint, Gaussian noise and an encoder.

    Args:
        omega: ω, the measurement weight (1.0: ``--omega`` default of ``scripts/inverse.py``).
        gamma: γ, the gluing weight (0.1: ``--gamma`` default; box inpainting with SD uses γ = 0.01,
            ω = 0.1; the LDM-VQ-f4 FFHQ scripts ω = 0.1, super-resolution ω = 0.9 — presets ``psld-*``).
        num_steps: DDIM steps (1000: ``--ddim_steps``).
        noisy_prediction: re-noise ``A x̂`` before comparing it with ``y`` (official: yes).
        num_timesteps, beta_start, beta_end: the linear β schedule of the σ grid (1000, 1e-4, 0.02).

    References:
        | Solving Linear Inverse Problems Provably via Posterior Sampling with Latent Diffusion Models
        | (Rout, Raoof, Daras, Caramanis, Dimakis & Shakkottai, NeurIPS 2023) https://arxiv.org/abs/2307.00619
        | Official code: https://github.com/LituRout/PSLD
    """

    requires = ("differentiable", "gaussian_noise")
    tunables = {"omega": Tunable(factor=10.0), "gamma": Tunable(factor=10.0)}

    def __init__(self, omega: float = 1.0, gamma: float = 0.1, num_steps: int = 1000, noisy_prediction: bool = True,
                 num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> None:
        if not omega >= 0 or not gamma >= 0:
            raise ValueError(f"`omega` and `gamma` must be >= 0, got {omega} and {gamma}.")
        self.omega, self.gamma, self.noisy_prediction = float(omega), float(gamma), bool(noisy_prediction)
        self.num_steps, self.sigmas = ddim_grid(num_steps, num_timesteps, beta_start, beta_end)

    @property
    def nfe_per_sample(self) -> int:
        return self.num_steps

    def check(self, problem: Problem, prior) -> None:
        super().check(problem, prior)
        op = self._latent(problem, prior).operator
        if not op.image_operator.linear:
            raise UnsupportedProblemError("PSLD's gluing term needs a linear operator with an adjoint; "
                                          f"{type(op.image_operator).__name__} is not linear: use latent-daps.")
        if not op.has_encoder:
            raise UnsupportedProblemError("PSLD needs the latent prior's encoder; build the LatentOperator with "
                                          "`encode=` (LatentPrior.latent_problem does).")

    def start(self, context) -> State:
        return self.start_from_vp_noise(context, State, self.sigmas[0])

    def step(self, state: State, i: int) -> State:
        sigma, sigma_next, B = self.sigmas[i], self.sigmas[i + 1], state.x.shape[0]
        op, y = state.problem.operator, state.measurement
        A = op.image_operator
        z = state.x.detach().requires_grad_(True)
        with torch.enable_grad():
            z0 = state.prior.denoise(z, z.new_full((B,), sigma))
            image = op.decode(z0)
            predicted = A(image)
            if self.noisy_prediction:  # fresh noise of the data's σ_y (real and imaginary parts for complex y)
                real = predicted.real.dtype
                noise = streams.randn(state.seeds, i, predicted.shape[1:], stream=2, dtype=real, device=predicted.device)
                if predicted.is_complex():
                    noise = torch.complex(noise, streams.randn(state.seeds, i, predicted.shape[1:], stream=3, dtype=real,
                                                               device=predicted.device))
                predicted = predicted + state.problem.noise.sigma * noise
            measurement_error = row_norm(y - predicted)
            glued = A.adjoint(y) + image - A.adjoint(A(image))
            gluing_error = row_norm(op.encode(glued) - z0)
            error = self.omega * measurement_error + self.gamma * gluing_error
            (grad,) = torch.autograd.grad(error.sum(), z)
        z0 = z0.detach()
        abar, abar_next = alphas_cumprod_from_sigma(sigma), alphas_cumprod_from_sigma(sigma_next)
        z_next = euler_step(state.x, z0, sigma, sigma_next) - grad / (abar * abar_next) ** 0.5
        return state.replace(x=z_next.detach(), x0_hat=z0, sigma=z_next.new_full((B,), sigma_next))
