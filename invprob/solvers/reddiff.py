"""RED-Diff — variational posterior sampling by regularisation with the denoising diffusion
process (Mardani et al., ICLR 2024), Algorithm 1."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .. import sampling
from ..checks import check_int
from .base import SolveContext, Solver, State, Tunable

__all__ = ["REDDiff"]


@dataclass(kw_only=True)
class REDDiffState(State):
    """RED-Diff state: ``x`` is the variational mean μ; Adam moments live here too."""

    adam_m: Tensor
    adam_v: Tensor


class REDDiff(Solver):
    r"""Fit a point mass ``q = δ_μ`` by Adam on a data term plus a score-matching regulariser.

    At each timestep ``t`` (descending), with ``ε ~ N(0, I)`` and ``x_t = sqrt(ᾱ_t) μ + sqrt(1−ᾱ_t) ε``:

    .. math::
        \ell(\mu) = \tfrac12\,\mathrm{mean}\lvert y - A\mu\rvert^2
          + \lambda\,\frac{\sqrt{1-\bar\alpha_t}}{\sqrt{\bar\alpha_t}}\,
            \mathrm{mean}\big(\mathrm{sg}[\hat\epsilon(x_t) - \epsilon]\cdot\mu\big),

    one Adam step (β = (0.9, 0.99)) on μ; no backpropagation through the network.
    μ starts at ``pinv(y)`` (zeros if the operator has none). As in the official code the
    data term is a plain mean of squares (``obs_weight = 1``; σ_y does not enter) and the
    means run over the entries of each sample — per sample here, over the whole batch in
    the official code (Adam's scale invariance makes the two agree, and ours keeps samples
    independent).

    NFE per sample = ``num_steps``; one operator call (with gradient) per step.

    A point estimate with injected noise: its samples are under-dispersed. Measured against the
    exact posterior of the GMM test bed (presets ``reddiff`` and ``reddiff-1000``):
    ``benchmarks/results/posterior_gmm_seed7.md``.

    Args:
        num_steps: timesteps ``t = T − T/num_steps, …, 0`` (50: ``_configs/exp/default.yaml``).
        lr: Adam learning rate (0.1: ``_configs/algo/reddiff.yaml``).
        grad_term_weight: λ (0.25: same file), weighted by 1/SNR (``denoise_term_weight: linear``).
        obs_weight: weight of the data term (1.0: same file).
        num_timesteps, beta_start, beta_end: the linear β schedule (1000, 1e-4, 0.02).

    References:
        | A Variational Perspective on Solving Inverse Problems with Diffusion Models
        | (Mardani, Song, Kautz & Vahdat, 2024) https://arxiv.org/abs/2305.04391
    """

    requires = ("differentiable",)
    tunables = {"grad_term_weight": Tunable(factor=100.0), "lr": Tunable(factor=10.0)}
    betas = (0.9, 0.99)  # reddiff.py: torch.optim.Adam(..., betas=(0.9, 0.99))

    def __init__(self, num_steps: int = 50, lr: float = 0.1, grad_term_weight: float = 0.25,
                 obs_weight: float = 1.0, num_timesteps: int = 1000, beta_start: float = 1e-4,
                 beta_end: float = 0.02) -> None:
        if not 1 <= num_steps <= num_timesteps:
            raise ValueError(f"`num_steps` must be in [1, {num_timesteps}], got {num_steps}.")
        if not lr > 0:
            raise ValueError(f"`lr` (Adam step) must be > 0, got {lr}.")
        self.num_steps, self.lr = check_int(num_steps, "num_steps", 1), float(lr)
        self.grad_term_weight, self.obs_weight = float(grad_term_weight), float(obs_weight)
        alphas_cumprod = sampling.ddpm_alphas_cumprod(num_timesteps, beta_start, beta_end)
        timesteps = sampling.ddim_timesteps(num_timesteps, self.num_steps).flip(0)  # descending
        self.abar = [float(alphas_cumprod[t]) for t in timesteps]

    @property
    def nfe_per_sample(self) -> int:
        return self.num_steps

    def start(self, context: SolveContext) -> REDDiffState:
        op = context.problem.operator
        with torch.no_grad():
            mu = op.pinv(context.measurement).to(context.prior.dtype) if op.has_pinv else context.zeros()
        zeros = torch.zeros_like(mu)
        return context.new_state(REDDiffState, mu, self._sigma(0), adam_m=zeros, adam_v=zeros)

    def _sigma(self, i: int) -> float:
        return sampling.sigma_from_alphas_cumprod(self.abar[i])

    def step(self, state: REDDiffState, i: int) -> REDDiffState:
        abar, sigma = self.abar[i], self._sigma(i)
        mu = state.x.detach()
        B = mu.shape[0]
        noise = self.randn(state, step=i)
        x_t = abar**0.5 * mu + (1 - abar) ** 0.5 * noise
        with torch.no_grad():
            x0_hat = state.prior.denoise(x_t / abar**0.5, mu.new_full((B,), sigma))
            eps_hat = (x_t - abar**0.5 * x0_hat) / (1 - abar) ** 0.5  # ε-prediction of the same network
        mu_var = mu.requires_grad_(True)
        with torch.enable_grad():
            residual = (state.measurement - state.problem.operator(mu_var)).abs().pow(2).flatten(1).mean(1)
            loss_obs = residual / 2
            loss_noise = ((eps_hat - noise) * mu_var).flatten(1).mean(1)
            loss = self.grad_term_weight * sigma * loss_noise + self.obs_weight * loss_obs  # w_t = λ / SNR^½
            (grad,) = torch.autograd.grad(loss.sum(), mu_var)
        # Adam (Kingma & Ba 2015) with bias correction, as torch.optim.Adam, state kept in the State.
        b1, b2 = self.betas
        m = b1 * state.adam_m + (1 - b1) * grad
        v = b2 * state.adam_v + (1 - b2) * grad**2
        k = i + 1
        mu_next = mu.detach() - self.lr * (m / (1 - b1**k)) / ((v / (1 - b2**k)).sqrt() + 1e-8)
        return state.replace(x=mu_next, x0_hat=x0_hat, sigma=mu.new_full((B,), sigma), adam_m=m, adam_v=v)
