"""DiffusionMBIR (Chung et al., CVPR 2023): a 2-D diffusion prior on every slice of a volume,
the slices coupled by total variation along the slice axis, solved by ADMM between the
diffusion updates. Also the coupling alone, for any pixel solver (:class:`SliceCoupled`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..checks import check_int
from ..linalg import conjugate_gradient, row_norm
from .base import SolveContext, Solver, State, Tunable

__all__ = ["ZTV", "DiffusionMBIR", "SliceCoupled", "CoupledState", "MBIRState"]


def _positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not 0 < float(value) < math.inf:
        raise ValueError(f"`{name}` must be a finite number > 0, got {value!r}.")
    return float(value)


@dataclass(frozen=True)
class ZTV:
    r"""ADMM iterations for the data step with total variation along the slice axis,

    .. math::
        \min_x \tfrac12 \lVert A x - y \rVert^2 + \lambda \lVert D_z x \rVert_1 ,

    split as ``D_z x = v`` with scaled dual ``u`` (DiffusionMBIR's ``CS_routine``):

    .. math::
        (A^\top A + \rho D_z^\top D_z)\, x = A^\top y + \rho D_z^\top (v - u), \quad
        v = S_{\lambda/\rho}(D_z x + u), \quad u \leftarrow u + D_z x - v,

    the ``x``-update by ``cg_iters`` conjugate-gradient steps warm-started at the current ``x``,
    ``S`` the soft threshold. ``D_z`` is the forward difference along dim 1 of a volume row
    ``(D, C, H, W)``, circular (slice ``D−1`` differs from slice 0) as in the official ``_Dz``.
    On single images (rows ``(C, H, W)``) there is no slice axis: ``D_z = 0`` and the step is
    conjugate gradients on the data term alone. ``v`` and ``u`` persist across calls (the solver
    keeps them in its state), as the official code keeps them across diffusion steps.

    Args:
        lam: λ in the prior's units (images in [-1, 1]): DiffusionMBIR's 0.04 on [0, 1]
            images is 0.08 here (the residual and the differences both double).
        rho: ρ, 10 (the official script's ``rho``).
        admm_iters: ADMM iterations per call, 1 (``niter=1`` in ``get_ADMM_TV_fn``).
        cg_iters: CG steps per ADMM iteration, 1 (``n_inner=1`` in ``CS_routine``).
    """

    lam: float = 0.08
    rho: float = 10.0
    admm_iters: int = 1
    cg_iters: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.lam, bool) or not 0 <= float(self.lam) < math.inf:
            raise ValueError(f"`lam` must be a finite number >= 0, got {self.lam!r}.")
        _positive(self.rho, "rho")
        check_int(self.admm_iters, "admm_iters", 1)
        check_int(self.cg_iters, "cg_iters", 1)

    @staticmethod
    def dz(x: Tensor) -> Tensor:
        """Circular forward difference along the slice axis (dim 1) of volume rows; 0 for images."""
        return torch.roll(x, -1, 1) - x if x.dim() == 5 else torch.zeros_like(x)

    @staticmethod
    def dzt(v: Tensor) -> Tensor:
        """The transpose of :meth:`dz`."""
        return torch.roll(v, 1, 1) - v if v.dim() == 5 else torch.zeros_like(v)

    def __call__(self, x: Tensor, measurement: Tensor, operator, v: Tensor, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``admm_iters`` ADMM iterations from ``x`` with split variables ``(v, u)``; returns
        the new ``(x, v, u)``, each ``(B, *x_shape)``."""
        aty = operator.adjoint(measurement)

        def normal(w: Tensor) -> Tensor:  # (AᵀA + ρ D_zᵀ D_z) w, row by row
            return operator.adjoint(operator(w)) + self.rho * self.dzt(self.dz(w))

        for _ in range(self.admm_iters):
            b = aty + self.rho * self.dzt(v - u)
            x = x + conjugate_gradient(normal, b - normal(x), self.cg_iters)  # warm start at x
            d = self.dz(x)
            w = d + u
            v = torch.sign(w) * (w.abs() - self.lam / self.rho).clamp_min(0)
            u = w - v
        return x, v, u


class _Coupling:
    """The :class:`ZTV` coupling a solver holds as ``coupling``; ``lam`` and ``rho`` read it (one
    copy of the values, also for :func:`invprob.calibrate`, which reads tunables by name)."""

    coupling: ZTV

    @property
    def lam(self) -> float:
        return self.coupling.lam

    @property
    def rho(self) -> float:
        return self.coupling.rho


@dataclass(kw_only=True)
class MBIRState(State):
    """DiffusionMBIR state: ``x`` is the VE sample at noise level ``sigma``; ``v``, ``u`` the
    ADMM split and scaled dual of :class:`ZTV` (``(B, *x_shape)``)."""

    v: Tensor
    u: Tensor


class DiffusionMBIR(_Coupling, Solver):
    r"""DiffusionMBIR: VE predictor–corrector sampling with an ADMM z-TV data step per step.

    Each of the ``num_steps`` steps at level ``σ_i`` (geometric from ``sigma_max`` to
    ``sigma_min``; ``σ_{i+1}`` the next, 0 after the last), on the volume row ``x``:

    1. reverse-diffusion predictor: ``x ← x + (σ_i² − σ_{i+1}²) s(x, σ_i) + (σ_i² − σ_{i+1}²)^{1/2} z``;
    2. Langevin corrector at the same ``σ_i`` (the official order: predictor, then corrector, at
       one ``t``): ``ε = 2 (r ‖z‖ / ‖s‖)²``, ``x ← x + ε s(x, σ_i) + (2ε)^{1/2} z'`` with
       ``r = snr``;
    3. one call of :class:`ZTV` on ``x`` (λ, ρ, ADMM and CG iterations).

    ``s(x, σ) = (D(x, σ) − x) / σ²`` is the score of the prior, a :class:`~invprob.priors.SliceWisePrior`
    for volumes (a 2-D prior on every slice). NFE per sample (per volume) = 2 × ``num_steps``;
    operator calls per step = ``admm_iters × (1 + cg_iters)`` (each with its adjoint).

    Defaults from the official code (HJ-harry/DiffusionMBIR): ``N = 2000`` steps
    (``inverse_problem_solver_AAPM_3d_total.py``), ``snr = 0.16``, one corrector step,
    ``σ_min = 0.01``, ``σ_max = 378`` on [0, 1] images (``configs/default_lsun_configs.py``) —
    ``0.02`` and ``756`` on the prior's [-1, 1]; λ, ρ and the iteration counts of :class:`ZTV`.
    Differences, on purpose: the Langevin step's norms are taken per row (per volume), where the
    official code averages per-slice norms over its batch of 12 slices; the measurement may be
    noisy (the official runs are noiseless) and the data term stays unweighted as there.

    Args:
        num_steps: VE steps ``N``.
        snr: the corrector's signal-to-noise ratio ``r``.
        sigma_min, sigma_max: the VE noise range in the prior's units.
        lam, rho, admm_iters, cg_iters: the coupling, :class:`ZTV`.

    References:
        | Solving 3D Inverse Problems using Pre-trained 2D Diffusion Models (Chung, Ryu, McCann,
        | Klasky, Ye, CVPR 2023) https://arxiv.org/abs/2211.10655
    """

    requires = ("linear",)
    tunables = {"lam": Tunable(factor=10.0), "snr": Tunable(factor=4.0)}

    def __init__(self, num_steps: int = 2000, snr: float = 0.16, sigma_min: float = 0.02, sigma_max: float = 756.0,
                 lam: float = 0.08, rho: float = 10.0, admm_iters: int = 1, cg_iters: int = 1) -> None:
        self.num_steps = check_int(num_steps, "num_steps", 1)
        self.snr = _positive(snr, "snr")
        self.sigma_min, self.sigma_max = _positive(sigma_min, "sigma_min"), _positive(sigma_max, "sigma_max")
        if not self.sigma_min < self.sigma_max:
            raise ValueError(f"`sigma_min` ({sigma_min}) must be below `sigma_max` ({sigma_max}).")
        self.coupling = ZTV(lam, rho, admm_iters, cg_iters)
        # the official VESDE's discrete_sigmas, visited from σ_max down (timestep ⌊t (N−1)⌋ for t from 1)
        n = self.num_steps
        levels = torch.exp(torch.linspace(math.log(self.sigma_min), math.log(self.sigma_max), n, dtype=torch.float64))
        self.sigmas = levels.flip(0).tolist() + [0.0]

    @property
    def nfe_per_sample(self) -> int:
        return 2 * self.num_steps

    def start(self, context: SolveContext) -> MBIRState:
        zeros = context.zeros()
        state = context.new_state(MBIRState, zeros, self.sigma_max, v=zeros, u=zeros)
        return state.replace(x=self.sigma_max * self.randn(state, step=-1))  # the VE prior N(0, σ_max² I)

    def step(self, state: MBIRState, i: int) -> MBIRState:
        prior, sigma, sigma_next = state.prior, self.sigmas[i], self.sigmas[i + 1]
        x = state.x
        level = x.new_full((x.shape[0],), sigma)
        rows = (-1, *([1] * (x.dim() - 1)))
        # 1. reverse-diffusion predictor (score_sde's ReverseDiffusionPredictor for the VE SDE)
        g2 = sigma**2 - sigma_next**2
        x0_hat = prior.denoise(x, level)
        x = x + g2 * (x0_hat - x) / sigma**2 + math.sqrt(g2) * self.randn(state, step=i, stream=0)
        # 2. Langevin corrector at the same level (score_sde's LangevinCorrector, α = 1 for VE)
        x0_hat = prior.denoise(x, level)
        score = (x0_hat - x) / sigma**2
        z = self.randn(state, step=i, stream=1)
        eps = 2 * (self.snr * row_norm(z) / row_norm(score).clamp_min(torch.finfo(x.dtype).tiny)) ** 2
        x = x + eps.reshape(rows) * score + (2 * eps).sqrt().reshape(rows) * z
        # 3. the z-TV data step on the sample
        x, v, u = self.coupling(x, state.measurement, state.problem.operator, state.v, state.u)
        return state.replace(x=x, x0_hat=x0_hat, sigma=x.new_full((x.shape[0],), max(sigma_next, self.sigma_min)),
                             v=v, u=u)


@dataclass(kw_only=True)
class CoupledState(State):
    """A :class:`SliceCoupled` state: the wrapped solver's state and the :class:`ZTV` split."""

    inner: State
    v: Tensor
    u: Tensor


class SliceCoupled(_Coupling, Solver):
    """Any pixel solver with DiffusionMBIR's slice coupling: after each of its steps, one call of
    :class:`ZTV` (total variation along the slice axis by ADMM, conjugate gradients for the
    data term) on its iterate ``x`` — e.g. DPS or DAPS on a volume with a
    :class:`~invprob.priors.SliceWisePrior`. The solver's own update is unchanged; NFE is its
    own; the operator must be linear.

    Args:
        solver: the wrapped solver (not a population solver).
        lam, rho, admm_iters, cg_iters: the coupling, :class:`ZTV` (DiffusionMBIR's values by default).
    """

    requires = ("linear",)

    def __init__(self, solver: Solver, lam: float = 0.08, rho: float = 10.0, admm_iters: int = 1,
                 cg_iters: int = 1) -> None:
        if not isinstance(solver, Solver):
            raise TypeError(f"`solver` must be an invprob Solver, got {type(solver).__name__}.")
        if type(solver).rows_per_measurement is not Solver.rows_per_measurement:
            raise TypeError(f"{type(solver).__name__} is a population solver; its rows interact, so its iterate "
                            f"cannot be coupled row by row; wrap a per-sample solver such as DPS or DAPS.")
        self.solver = solver
        self.coupling = ZTV(lam, rho, admm_iters, cg_iters)
        self.num_steps = solver.num_steps
        self.requires = tuple(dict.fromkeys(("linear", *solver.requires)))

    @property
    def nfe_per_sample(self) -> int:
        return self.solver.nfe_per_sample

    def check(self, problem, prior) -> None:
        super().check(problem, prior)
        self.solver.check(problem, prior)

    def start(self, context: SolveContext) -> CoupledState:
        inner = self.solver.start(context)
        zeros = torch.zeros_like(inner.x)
        state = context.new_state(CoupledState, inner.x, 0.0, inner=inner, v=zeros, u=zeros)
        return state.replace(x0_hat=inner.x0_hat, sigma=inner.sigma)

    def step(self, state: CoupledState, i: int) -> CoupledState:
        inner = self.solver.step(state.inner, i)
        x, v, u = self.coupling(inner.x, state.measurement, state.problem.operator, state.v, state.u)
        inner = inner.replace(x=x)
        return state.replace(inner=inner, x=x, x0_hat=inner.x0_hat, sigma=inner.sigma, v=v, u=u)

    def result(self, state: CoupledState) -> Tensor:
        return self.solver.result(state.inner)
