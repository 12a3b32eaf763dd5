"""DPS — Diffusion Posterior Sampling (Chung et al., ICLR 2023), Algorithm 1."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import Tensor

from ..checks import check_int
from ..errors import UnsupportedProblemError
from ..noise import Poisson
from ..priors.loading import block_checkpointing, has_block_checkpointing
from ..sampling import DDPMSchedule
from .base import SolveContext, Solver, State, Tunable

__all__ = ["DPS", "DPSState"]


@dataclass(kw_only=True)
class DPSState(State):
    """DPS state; ``x`` is the VP/DDPM variable ``x_t = sqrt(ᾱ_t) x0 + sqrt(1-ᾱ_t) ε``."""

    residual_norm: Tensor  # (B,) ‖y − A(x0_hat)‖ at the last step


class DPS(Solver):
    r"""Diffusion posterior sampling on the DDPM ancestral sampler.

    Each of the ``num_steps`` reverse steps at timestep ``t`` (Algorithm 1 of the paper):

    .. math::
        \hat x_0 = D(x_t / \sqrt{\bar\alpha_t}, \sigma_t), \quad
        x'_{t-1} = \mu_q(\hat x_0, x_t) + \tilde\beta_t^{1/2} z, \quad
        x_{t-1} = x'_{t-1} - \zeta \nabla_{x_t} \lVert y - A(\hat x_0) \rVert

    with the *norm* (not squared) of the residual, as in the official code
    (``guided_diffusion/condition_methods.py``, ``PosteriorSampling``). Under Poisson noise
    (:class:`~invprob.noise.Poisson`) the norm is divided by ``|y|`` entry by entry and
    averaged, as in that code's Poisson branch. Shapes: the state
    holds ``x (B, *x_shape)`` with ``B = M*K``; NFE per sample = ``num_steps`` (one denoiser
    call with backpropagation per step); one operator call per step.

    Differences from the official code, on purpose:
      * the residual norm is taken per sample; the official code takes one norm over the
        whole batch, so its samples steer each other (their gradient is scaled by the
        batch's total residual);
      * the reverse variance is DDPM's posterior variance β̃_t ("fixed small"): the
        ``learned_range`` variance of the ADM checkpoints is not part of the σ-space
        prior (contract 2 of ``docs/design.md``).

    Measured against the exact posterior of the GMM test bed (ζ = 1 and preset
    ``dps-gmm-tuned``): ``benchmarks/results/posterior_gmm_seed7.md``.

    Args:
        scale: guidance step ζ. Default 1.0 (``PosteriorSampling`` default in the official
            code); its task configs use 0.5 (inpainting), 0.3 (super-resolution, Gaussian
            and motion deblur), 1.0 (phase retrieval) — presets ``dps-*``.
        num_steps: reverse steps, respaced from ``num_timesteps`` (1000 in the paper's
            ``diffusion_config.yaml``).
        num_timesteps, beta_start, beta_end: the linear β schedule of the DDPM/ADM models
            (1000, 1e-4, 0.02).
        clip_denoised: clamp ``x0_hat`` to the prior's ``data_range`` before the update and
            the gradient (``clip_denoised: True`` in ``diffusion_config.yaml``).
        gradient_checkpointing: keep each network block's input only and recompute its
            activations during backpropagation (less memory, about one more forward pass per
            step; :func:`~invprob.priors.block_checkpointing`: diffusers networks and deepinv's
            ``DiffUNet``; other networks are refused). Measured: ``benchmarks/results/speed_memory.md``.

    References:
        | Diffusion Posterior Sampling for General Noisy Inverse Problems (Chung et al., 2023)
        | https://arxiv.org/abs/2209.14687
    """

    requires = ("differentiable",)
    tunables = {"scale": Tunable(factor=100.0)}  # ζ: 0.01–100 around the paper's 1.0

    def __init__(self, scale: float = 1.0, num_steps: int = 1000, num_timesteps: int = 1000,
                 beta_start: float = 1e-4, beta_end: float = 0.02, clip_denoised: bool = True,
                 gradient_checkpointing: bool = False) -> None:
        if not scale >= 0:
            raise ValueError(f"`scale` (ζ) must be >= 0, got {scale}.")
        self.scale = float(scale)
        self.num_steps = check_int(num_steps, "num_steps", 1)
        self.clip_denoised = bool(clip_denoised)
        self.gradient_checkpointing = bool(gradient_checkpointing)
        self.schedule = DDPMSchedule(self.num_steps, num_timesteps, beta_start, beta_end)

    @property
    def nfe_per_sample(self) -> int:
        return self.num_steps

    def check(self, problem, prior) -> None:
        super().check(problem, prior)
        if self.gradient_checkpointing and not has_block_checkpointing(prior):
            raise UnsupportedProblemError(
                f"gradient_checkpointing=True needs a network with checkpointable blocks (a diffusers model, or "
                f"deepinv's DiffUNet); {type(prior).__name__} has none: set gradient_checkpointing=false.")

    def start(self, context: SolveContext) -> DPSState:
        zeros = context.zeros()
        state = context.new_state(DPSState, zeros, self.schedule.sigma(0), residual_norm=zeros.new_zeros(len(zeros)))
        return state.replace(x=self.randn(state, step=-1))  # x_T ~ N(0, I)

    def guided_step(self, state: DPSState, i: int) -> tuple[Tensor, Tensor, Tensor]:
        """One DDPM ancestral step with the DPS correction; returns ``(x_{t−1}, x0_hat, ‖y − A(x0_hat)‖)``."""
        x_t = state.x.detach().requires_grad_(True)
        with torch.enable_grad():
            with block_checkpointing(state.prior) if self.gradient_checkpointing else contextlib.nullcontext():
                x0_hat = self.schedule.denoise(state.prior, x_t, i)
            if self.clip_denoised and state.prior.data_range is not None:
                x0_hat = x0_hat.clamp(*state.prior.data_range)
            residual = state.measurement - state.problem.operator(x0_hat)
            norm = residual.flatten(1).abs().pow(2).sum(1).sqrt()  # per sample
            if isinstance(state.problem.noise, Poisson):
                # the official code's Poisson branch (``grad_and_value``): ‖y − A x̂₀‖ / |y| averaged
                # over the entries of y (the floor only keeps an exact 0 in y finite)
                norm = norm * state.measurement.flatten(1).abs().clamp_min(1e-12).reciprocal().mean(1)
            (grad,) = torch.autograd.grad(norm.sum(), x_t)
        x0_hat = x0_hat.detach()
        x_prev = self.schedule.posterior_mean(x0_hat, x_t.detach(), i)
        if i < self.num_steps - 1:
            x_prev = x_prev + self.schedule.posterior_std(i) * self.randn(state, step=i)
        return x_prev - self.scale * grad, x0_hat, norm.detach()  # ζ ∇‖y − A(x0_hat)‖

    def step(self, state: DPSState, i: int) -> DPSState:
        x_prev, x0_hat, norm = self.guided_step(state, i)
        sigma = x_prev.new_full((x_prev.shape[0],), self.schedule.sigma_prev(i))
        return state.replace(x=x_prev, x0_hat=x0_hat, sigma=sigma, residual_norm=norm)
