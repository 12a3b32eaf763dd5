"""DDNM+ — Zero-Shot Image Restoration Using Denoising Diffusion Null-Space Model (Wang, Yu & Zhang, ICLR 2023)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..checks import check_int
from ..sampling import ddim_grid
from .base import SolveContext, Solver, State, Tunable

__all__ = ["DDNM", "schedule_jump"]


def schedule_jump(num_steps: int, travel_length: int = 1, travel_repeat: int = 1) -> list[int]:
    """RePaint's time-travel walk over the grid indices ``N − 1 … 0, −1`` (DDNM's
    ``get_schedule_jump``): going down one index at a time, and at every ``travel_length``-th
    index below ``N − travel_length`` going back up ``travel_length`` indices, ``travel_repeat − 1``
    times. ``travel_length = travel_repeat = 1`` is the plain walk ``N − 1, …, 0, −1``."""
    jumps = {j: travel_repeat - 1 for j in range(0, num_steps - travel_length, travel_length)}
    t, walk = num_steps, []
    while t >= 1:
        t -= 1
        walk.append(t)
        if jumps.get(t, 0) > 0:
            jumps[t] -= 1
            for _ in range(travel_length):
                t += 1
                walk.append(t)
    return walk + [-1]


@dataclass(kw_only=True)
class DDNMState(State):
    """DDNM state; ``x`` is the σ-space iterate ``x_t / sqrt(ᾱ_t)``; ``x0_raw`` the denoiser's
    last uncorrected ``x̂0`` (where time travel restarts from)."""

    x0_raw: Tensor


class DDNM(Solver):
    r"""Range–null-space decomposition in the operator's SVD basis, with DDNM+'s noise handling.

    On DDIM-spaced timesteps ``t = T − T/N, …, 0`` with σ-space levels ``σ_t`` (and ``σ = 0``
    after the last step), each step with ``x̂0 = D(x, σ_t)``, ``ε = (x − x̂0)/σ_t``, the SVD
    ``A = U diag(s) Vᵀ`` and the next level ``σ'``:

    .. math::
        \tilde x_0 = \hat x_0 - V \Lambda V^\top A^+(A \hat x_0 - y), \qquad
        \lambda_i = \begin{cases} 1 & \sigma' \ge \sigma_y / s_i \\
                    s_i \sigma' \sqrt{1-\eta^2} / \sigma_y & \text{otherwise,} \end{cases}

    then ``x = x̃0 + n`` where, per spectral component, ``n_i`` is fresh noise of standard
    deviation ``sqrt(σ'² − σ_y²/s_i²)`` where ``σ' > σ_y/s_i``, ``η σ'`` where ``σ' < σ_y/s_i``,
    and ``σ'(η z + sqrt(1 − η²) ε)`` in the null space (``s_i = 0`` and the complement of the
    SVD's range) — the official ``ddnm_plus_diffusion`` (``functions/svd_ddnm.py``) with its
    ``Lambda`` / ``Lambda_noise`` operators, in σ-space. With ``σ_y = 0`` this is DDNM: a hard
    projection of ``x̂0`` onto ``{A x = y}``. Time travel (``travel_length``) is 1 in the
    official configs but ``oldphoto.yml`` (``travel_length 2, travel_repeat 2``, preset
    ``ddnm-time-travel``): the grid is walked by :func:`schedule_jump`, and a step back up to a
    noisier level ``σ'`` re-noises the last *uncorrected* ``x̂0`` with fresh noise, ``x = x̂0 + σ' z``
    (``svd_ddnm.py``), without a network call. No clamp of ``x̂0`` (none in the official code).
    NFE per sample = the downward steps (``num_steps`` without time travel); one ``Vᵀ`` / ``V`` /
    ``Uᵀ`` application per step and no forward-operator call. Needs an operator with an SVD.

    Args:
        eta: η (0.85: ``main.py`` default and every task of ``evaluation.sh``).
        num_steps: grid levels (100: ``T_sampling`` of the official configs); with time travel
            the solver walks more steps than levels (``self.num_steps`` counts the walk).
        travel_length, travel_repeat: the time-travel jump and its repeats (1 and 1: off, as in
            the official configs; ``oldphoto.yml``: 2 and 2).
        num_timesteps, beta_start, beta_end: the linear β schedule (1000, 1e-4, 0.02).

    References:
        | Zero-Shot Image Restoration Using Denoising Diffusion Null-Space Model
        | (Wang, Yu & Zhang, ICLR 2023) https://arxiv.org/abs/2212.00490
        | Official code: https://github.com/wyhuai/DDNM

    Measured against exact posteriors: ``benchmarks/results/posterior_gmm_seed7.md``.
    """

    requires = ("svd", "gaussian_noise")
    tunables = {"eta": Tunable(scale="linear", width=0.15, bounds=(0.0, 1.0))}

    def __init__(self, eta: float = 0.85, num_steps: int = 100, num_timesteps: int = 1000, beta_start: float = 1e-4,
                 beta_end: float = 0.02, travel_length: int = 1, travel_repeat: int = 1) -> None:
        if not 0 <= eta <= 1:
            raise ValueError(f"`eta` must be in [0, 1], got {eta}.")
        self.eta = float(eta)
        levels, self.sigmas = ddim_grid(num_steps, num_timesteps, beta_start, beta_end)  # from T − T/N down, then 0
        travel_length = check_int(travel_length, "travel_length", 1)
        travel_repeat = check_int(travel_repeat, "travel_repeat", 1)
        self.levels, self.travel_length, self.travel_repeat = levels, travel_length, travel_repeat
        walk = schedule_jump(levels, travel_length, travel_repeat)
        # (σ, σ') of each step: grid index t has level sigmas[N − 1 − t] (t = −1: σ = 0)
        self.walk = [(self.sigmas[levels - 1 - a], self.sigmas[levels - 1 - b], b < a) for a, b in zip(walk, walk[1:])]
        self.num_steps = len(self.walk)  # steps of the walk (= levels without time travel)

    @property
    def nfe_per_sample(self) -> int:
        return sum(down for _, _, down in self.walk)

    def start(self, context: SolveContext) -> DDNMState:
        return self.start_from_vp_noise(context, DDNMState, self.sigmas[0], x0_raw=context.zeros())

    @torch.no_grad()
    def step(self, state: DDNMState, i: int) -> DDNMState:
        sigma, sigma_next, down = self.walk[i]
        B = state.x.shape[0]
        if not down:  # time travel: back up to σ' from the last uncorrected x̂0, fresh noise
            x_next = state.x0_raw + sigma_next * self.randn(state, step=i)
            return state.replace(x=x_next, sigma=x_next.new_full((B,), sigma_next))
        x0_hat = state.prior.denoise(state.x, state.x.new_full((B,), sigma))
        eps = (state.x - x0_hat) / sigma
        svd = state.problem.operator.svd()
        s = svd.values_per_row(B, state.x.dtype)
        sigma_y = state.problem.noise.sigma
        in_range = s > 0
        safe = torch.where(in_range, s, torch.ones_like(s))
        threshold = torch.where(in_range, sigma_y / safe, torch.full_like(s, float("inf")))  # σ_y / s_i
        # Λ: 1 where the next level's noise exceeds the data's, else s σ' sqrt(1 − η²) / σ_y
        lam = torch.where(sigma_next >= threshold, torch.ones_like(s),
                          safe * sigma_next * (1 - self.eta**2) ** 0.5 / max(sigma_y, 1e-300))
        lam = torch.where(in_range, lam, torch.zeros_like(s))
        coords = svd.Vt(x0_hat)
        y_coords = svd.Ut(state.measurement) / safe  # A⁺y in V coordinates (where s > 0)
        x0_data = x0_hat - svd.V(lam * (coords - y_coords))
        del coords, y_coords
        # Noise: fresh where the range component is over- or under-determined, DDIM-style in the null space
        z = self.randn(state, step=i)
        z_coords, eps_coords = svd.Vt(z), svd.Vt(eps)
        fresh_std = torch.where(sigma_next > threshold, (sigma_next**2 - threshold.clamp(max=sigma_next) ** 2).sqrt(),
                                self.eta * sigma_next * torch.ones_like(s))
        null = ~in_range | (sigma_next == threshold)
        mixed = sigma_next * (self.eta * z_coords + (1 - self.eta**2) ** 0.5 * eps_coords)
        # range noise V(where(null, mixed, fresh z)) plus the null-space part (I − VVᵀ) of
        # σ'(η z + sqrt(1 − η²) ε), whose Vᵀ is `mixed`: one V for both (V is linear)
        noise = sigma_next * (self.eta * z + (1 - self.eta**2) ** 0.5 * eps)
        x_next = x0_data + noise + svd.V(torch.where(null, mixed, fresh_std * z_coords) - mixed)
        return state.replace(x=x_next, x0_hat=x0_data, x0_raw=x0_hat, sigma=x_next.new_full((B,), sigma_next))
