"""ReSample — latent diffusion with hard data consistency (Song et al., ICLR 2024)."""

from __future__ import annotations

from collections import deque

import torch
from torch import Tensor

from ..checks import check_int
from ..errors import UnsupportedProblemError
from ..problem import Problem
from ..linalg import row_norm
from ..sampling import alphas_cumprod_from_sigma, ddim_grid, euler_step
from .base import State, Tunable
from .latent import LatentSolver

__all__ = ["ReSample", "stochastic_resample"]


def _adamw_fit(start: Tensor, loss_fn, lr: float, max_iters: int, eps: float, weight_decay: float,
               plateau: int | None = None) -> Tensor:
    """``argmin_v loss_fn(v)`` per row by AdamW from ``start``, as the official optimisations:
    each iteration takes the step, then stops a row whose loss (before the step) is below
    ``eps²`` or, with ``plateau``, whose loss ``plateau`` iterations ago is lower than it (from
    iteration ``plateau`` on); the row's result is its iterate after that step. Rows are
    independent (AdamW acts entrywise and ``loss_fn`` returns one loss per row), so a row's result
    does not depend on the batch it is in. Returns the detached per-row results."""
    v = start.detach().clone().requires_grad_(True)
    opt = torch.optim.AdamW([v], lr=lr, weight_decay=weight_decay)
    out, done = start.detach().clone(), torch.zeros(len(start), dtype=torch.bool, device=start.device)
    history: deque[Tensor] = deque(maxlen=(plateau or 0) + 1)
    for k in range(max_iters):
        opt.zero_grad(set_to_none=True)
        with torch.enable_grad():
            loss = loss_fn(v)
            loss.sum().backward()
        opt.step()
        loss = loss.detach()
        stop = loss < eps**2
        if plateau is not None:
            history.append(loss)
            if k >= plateau:
                stop = stop | (history[0] < loss)
        newly = stop & ~done
        out[newly] = v.detach()[newly]  # the iterate at which the official loop breaks
        done |= stop
        if bool(done.all()):
            return out
    out[~done] = v.detach()[~done]
    return out


def stochastic_resample(z0_y: Tensor, z: Tensor, sigma: float, sigma_next: float, gamma: float,
                        noise: Tensor) -> Tensor:
    """ReSample's stochastic resampling (the official ``stochastic_resample``, VP variable), in
    σ-space: from the data-consistent ``z0_y`` and the unconditional DDIM latent ``z`` at level
    ``sigma_next`` (the step ``sigma → sigma_next``), a draw of ``z`` at ``sigma_next`` with VP mean
    ``(v √ᾱ_s z0_y + (1−ᾱ_s) x'_s)/(v + 1−ᾱ_s)`` and variance ``v (1−ᾱ_s)/(v + 1−ᾱ_s)``,
    ``v = γ (1−ᾱ_s)/(1−ᾱ_t) (1 − ᾱ_t/ᾱ_s)`` (both divided by ``√ᾱ_s`` here). Shapes of ``z``."""
    abar, abar_next = alphas_cumprod_from_sigma(sigma), alphas_cumprod_from_sigma(sigma_next)
    v = gamma * (1 - abar_next) / (1 - abar) * (1 - abar / abar_next)
    mean = (v * z0_y + (1 - abar_next) * z) / (v + 1 - abar_next)
    return mean + (v * (1 - abar_next) / (v + 1 - abar_next)) ** 0.5 / abar_next**0.5 * noise


class ReSample(LatentSolver):
    r"""ReSample (Song et al., ICLR 2024): latent DPS on DDIM, with hard data consistency and
    stochastic resampling at a third of the steps.

    Every step ``t → s`` of a ``num_steps`` DDIM (η = 0) grid on the latents (σ-space ``z``,
    ``ᾱ = 1/(1 + σ²)``): ``ẑ0 = D_θ(z, σ_t)``; the DDIM move ``z'_s = ẑ0 + σ_s (z − ẑ0)/σ_t``;
    then the latent DPS step ``z'_s −= scale · ᾱ_t ∇_{x_t} ‖y − A(D(x̃0))‖`` (plain norm, the VP
    variable ``x_t``; here ``scale · sqrt(ᾱ_t / ᾱ_s) ∇_z``), where ``x̃0`` is the official code's
    "Tweedie" estimate ``(x_t − (1 − ᾱ_t) ε̂)/√ᾱ_t`` (``x0_estimate='official'``; ``'tweedie'``
    uses ``ẑ0``). At every ``consistency_every``-th step index in the last two thirds (index
    ``N−1−i ≤ N − ⌊N/3⌋``, > 0):

    1. ``travel_steps`` further plain DDIM steps from ``z'_s`` give ``ẑ0`` (their last ``x̃0``);
    2. hard data consistency: while the index is ≥ ``⌊N/3⌋``, in pixel space —
       ``x* = argmin_x mean|y − A x|²`` from ``D(ẑ0)`` by AdamW (``pixel_lr``, up to
       ``pixel_iters``), ``ẑ0(y) = E(x*)``; later, in latent space —
       ``ẑ0(y) = argmin_z mean|y − A(D(z))|²`` from ``ẑ0`` (``latent_lr``, up to ``latent_iters``,
       with the official plateau rule over ``plateau`` iterations); both stop a row at loss < eps²
       (``stop_at_noise=True``: at loss < max(eps, σ_y)², the discrepancy principle — not in the
       official code, whose fixed eps fits y to below its noise at σ_y > 1e-3: preset
       ``resample-noise-stop``);
    3. stochastic resampling back to level s (in the VP variable, the paper's eq. with γ):
       ``z_s ~ N((v √ᾱ_s ẑ0(y) + (1−ᾱ_s) x'_s)/(v + 1−ᾱ_s), v (1−ᾱ_s)/(v + 1−ᾱ_s))`` with
       ``v = γ (1−ᾱ_s)/(1−ᾱ_t) (1 − ᾱ_t/ᾱ_s)``.

    After the last step the latents get one more latent-space optimisation; the sample is their
    decoding. Shapes: latents ``(B, *latent_shape)``; images as the problem's operator.

    Defaults (official code soominkwon/resample, ``ldm/models/diffusion/ddim.py`` at
    ``3e332b2``): 500 DDIM steps, η 0 (``sample_condition.py:33-34``); the DPS step
    ``scale=a_t*.5`` (l. 260; the configs' ``scale`` is not used); consistency at
    ``index % 10 == 0`` within the last two thirds, pixel space in the first half of those
    (``splits = 3``, l. 264-273); ``inter_timesteps = 5`` (l. 206); pixel: AdamW lr 1e-2, 2000
    iterations, eps 1e-3 (l. 337-370); latent: AdamW lr 5e-3, 500 iterations, plateau window 200
    (l. 373-432); AdamW's default weight decay 0.01; γ = 40 (l. 289, 318); the LDM schedule
    ``linspace(√0.0015, √0.0195, 1000)²`` with timesteps ``1, 3, …, 999``
    (``configs/latent-diffusion/ffhq-ldm-vq-4.yaml``). Differences on purpose: the norm, the
    optimisations' losses and their stops are per sample (the official code takes one norm and
    one mean squared error over the batch); the look-ahead steps use the grid's own levels (each
    official one gives the network the next level's timestep with the current level's ᾱ, so its
    look-ahead ends one level earlier); the last level is σ = 0 (the official grid ends at ᾱ of
    t = 0).

    NFE per sample: ``num_steps`` + ``travel_steps`` per consistency step. Operator calls: one per
    step plus one per optimisation iteration. Needs a differentiable image operator; the pixel
    space branch needs the prior's encoder.

    References:
        | Solving Inverse Problems with Latent Diffusion Models via Hard Data Consistency
        | (Song, Kwon, Zhang, Hu, Qu & Shen, ICLR 2024) https://arxiv.org/abs/2307.08123
        | Official code: https://github.com/soominkwon/resample
    """

    requires = ("differentiable",)
    tunables = {"scale": Tunable(factor=10.0), "gamma": Tunable(factor=10.0)}

    def __init__(self, num_steps: int = 500, scale: float = 0.5, gamma: float = 40.0, consistency_every: int = 10,
                 travel_steps: int = 5, pixel_lr: float = 1e-2, pixel_iters: int = 2000, latent_lr: float = 5e-3,
                 latent_iters: int = 500, plateau: int = 200, eps: float = 1e-3, stop_at_noise: bool = False,
                 weight_decay: float = 0.01,
                 x0_estimate: str = "official", num_timesteps: int = 1000, beta_start: float = 0.0015,
                 beta_end: float = 0.0195, beta_schedule: str = "scaled_linear", timestep_offset: int = 1) -> None:
        for name, value in (("scale", scale), ("gamma", gamma), ("pixel_lr", pixel_lr), ("latent_lr", latent_lr),
                            ("eps", eps)):
            if not value > 0:
                raise ValueError(f"`{name}` must be > 0, got {value}.")
        if not weight_decay >= 0:
            raise ValueError(f"`weight_decay` must be >= 0, got {weight_decay}.")
        if x0_estimate not in ("official", "tweedie"):
            raise ValueError(f"`x0_estimate` must be 'official' or 'tweedie', got {x0_estimate!r}.")
        self.num_steps, self.sigmas = ddim_grid(num_steps, num_timesteps, beta_start, beta_end, beta_schedule,
                                                timestep_offset)
        self.consistency_every = check_int(consistency_every, "consistency_every", 1)
        self.travel_steps = check_int(travel_steps, "travel_steps", 1)
        self.pixel_iters = check_int(pixel_iters, "pixel_iters", 1)
        self.latent_iters = check_int(latent_iters, "latent_iters", 1)
        self.plateau = check_int(plateau, "plateau", 1)
        self.scale, self.gamma, self.eps = float(scale), float(gamma), float(eps)
        self.pixel_lr, self.latent_lr, self.weight_decay = float(pixel_lr), float(latent_lr), float(weight_decay)
        self.x0_estimate, self.stop_at_noise = x0_estimate, bool(stop_at_noise)

    # -- the schedule ------------------------------------------------------------------------
    def branch(self, i: int) -> str | None:
        """``'pixel'``, ``'latent'`` or ``None``: the hard data consistency at step ``i``."""
        index, split = self.num_steps - 1 - i, self.num_steps // 3
        if not (0 < index <= self.num_steps - split and index % self.consistency_every == 0):
            return None
        return "pixel" if index >= split else "latent"

    def _travel(self, i: int) -> int:
        return min(self.travel_steps, self.num_steps - 1 - i)

    @property
    def nfe_per_sample(self) -> int:
        return self.num_steps + sum(self._travel(i) for i in range(self.num_steps) if self.branch(i))

    def check(self, problem: Problem, prior) -> None:
        super().check(problem, prior)
        op = self._latent(problem, prior).operator
        if any(self.branch(i) == "pixel" for i in range(self.num_steps)) and not op.has_encoder:
            raise UnsupportedProblemError("ReSample's pixel-space consistency needs the latent prior's encoder; "
                                          "build the LatentOperator with `encode=` (LatentPrior.latent_problem "
                                          "does).")

    # -- the pieces --------------------------------------------------------------------------
    def _x0(self, z: Tensor, denoised: Tensor, sigma: float) -> Tensor:
        """The official ``pseudo_x0`` in σ-space: ``ẑ0 + (1 − sqrt(1 − ᾱ)) (z − ẑ0)``."""
        if self.x0_estimate == "tweedie":
            return denoised
        return denoised + (1 - (sigma**2 / (1 + sigma**2)) ** 0.5) * (z - denoised)

    def _fit(self, state: State, start: Tensor, space: str) -> Tensor:
        op, y = state.problem.operator, state.measurement
        eps = self.eps
        if self.stop_at_noise:  # the discrepancy principle: no closer to y than its noise
            sigma = float(getattr(state.problem.noise, "sigma", 0.0))
            eps = max(eps, sigma * (2**0.5 if y.is_complex() else 1.0))  # complex noise: σ per part

        def mse(v: Tensor) -> Tensor:
            predicted = op.image_operator(v) if space == "pixel" else op(v)
            return (predicted - y).abs().pow(2).flatten(1).mean(1)

        if space == "pixel":
            return _adamw_fit(start, mse, self.pixel_lr, self.pixel_iters, eps, self.weight_decay)
        return _adamw_fit(start, mse, self.latent_lr, self.latent_iters, eps, self.weight_decay, self.plateau)

    def start(self, context) -> State:
        return self.start_from_vp_noise(context, State, self.sigmas[0])

    def step(self, state: State, i: int) -> State:
        sigma, sigma_next, B = self.sigmas[i], self.sigmas[i + 1], state.x.shape[0]
        op, y, prior = state.problem.operator, state.measurement, state.prior
        z = state.x.detach().requires_grad_(True)
        with torch.enable_grad():
            denoised = prior.denoise(z, z.new_full((B,), sigma))
            norm = row_norm(y - op(self._x0(z, denoised, sigma)))  # per sample
            (grad,) = torch.autograd.grad(norm.sum(), z)
        denoised = denoised.detach()
        abar, abar_next = alphas_cumprod_from_sigma(sigma), alphas_cumprod_from_sigma(sigma_next)  # ᾱ_t, ᾱ_s
        z_next = euler_step(state.x, denoised, sigma, sigma_next) - self.scale * (abar / abar_next) ** 0.5 * grad
        branch = self.branch(i)
        if branch is not None:
            with torch.no_grad():  # ẑ0: the last x̃0 of `travel_steps` plain DDIM steps from z'_s
                ahead = z_next
                for k in range(self._travel(i)):
                    s, s_next = self.sigmas[i + 1 + k], self.sigmas[i + 2 + k]
                    d = prior.denoise(ahead, z.new_full((B,), s))
                    x0, ahead = self._x0(ahead, d, s), euler_step(ahead, d, s, s_next)
            if branch == "pixel":
                with torch.no_grad():
                    image = op.decode(x0)
                x0_y = self._fit(state, image, "pixel")
                with torch.no_grad():
                    x0_y = op.encode(x0_y)
            else:
                x0_y = self._fit(state, x0, "latent")
            z_next = stochastic_resample(x0_y, z_next, sigma, sigma_next, self.gamma,
                                         self.randn(state, step=i, stream=1))
        if i == self.num_steps - 1:  # the official final latent-space optimisation of z_0
            z_next = self._fit(state.replace(x=z_next), z_next.detach(), "latent")
        return state.replace(x=z_next.detach(), x0_hat=denoised, sigma=z_next.new_full((B,), sigma_next))
