"""The solver contract: ``init`` / ``step`` / ``result`` and ``solve`` (contract 4 of ``docs/design.md``).

A solve handles ``M`` measurements × ``K`` samples in one batch of ``B = M*K`` rows, row
``m*K + k`` holding sample ``k`` of measurement ``m``. Every reduction is per row; every
random draw comes from the row's own stream (:mod:`invprob.streams`), so a sample does not
depend on the batch it was drawn in.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor

from .. import streams
from ..errors import UnsupportedProblemError
from ..noise import Gaussian
from ..priors.base import Prior
from ..problem import Problem

__all__ = ["State", "Solver", "PopulationSolver", "SolveResult", "SolveContext", "CallCounter", "Tunable"]


@dataclass(kw_only=True)
class State:
    """What a solver carries between steps. Solvers subclass it with their own fields.

    Attributes:
        x: current iterate ``(B, *x_shape)``, ``B = M*K``.
        x0_hat: latest estimate of the clean image ``(B, *x_shape)``.
        sigma: current noise level (σ-space) ``(B,)``.
        seeds: per-row random seeds ``(B,)`` (int64).
        measurement: ``y`` repeated for each sample ``(B, *y_shape)``.
        num_measurements, num_samples: ``M`` and ``K``.
        problem, prior: what is being solved (not tensors; never checkpointed).
    """

    x: Tensor
    x0_hat: Tensor
    sigma: Tensor
    seeds: Tensor
    measurement: Tensor
    num_measurements: int
    num_samples: int
    problem: Problem = field(repr=False)
    prior: Prior = field(repr=False)

    def replace(self, **changes: Any) -> "State":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class SolveContext:
    """What every solver's first state is built from (validated by :meth:`Solver.init`).

    Attributes:
        problem, prior: what is being solved.
        seeds: per-row random seeds ``(B,)`` (int64), ``B = M * rows_per_measurement``.
        measurement: ``y`` repeated for each row ``(B, *y_shape)``.
        num_measurements: ``M``.
        num_samples: ``K``, the samples requested per measurement.
        rows_per_measurement: rows carried per measurement: ``K``, or the population
            (particles, ensemble) of a :class:`PopulationSolver`, of which ``K`` are returned.
    """

    problem: Problem
    prior: Prior
    seeds: Tensor
    measurement: Tensor
    num_measurements: int
    num_samples: int
    rows_per_measurement: int

    def zeros(self) -> Tensor:
        """Zeros ``(B, *x_shape)`` in the prior's dtype on the measurement's device."""
        shape = self.prior.x_shape or self.problem.operator.x_shape
        return torch.zeros((self.measurement.shape[0], *shape), dtype=self.prior.dtype,
                           device=self.measurement.device)

    def new_state(self, state_cls: type["State"], x: Tensor, sigma: float, **extra: Any) -> "State":
        """A ``state_cls`` at iterate ``x`` (also used as ``x0_hat``) and noise level ``sigma``."""
        return state_cls(x=x, x0_hat=x, sigma=x.new_full((x.shape[0],), sigma), seeds=self.seeds,
                         measurement=self.measurement, num_measurements=self.num_measurements,
                         num_samples=self.num_samples, problem=self.problem, prior=self.prior, **extra)


@dataclass
class SolveResult:
    """Output of :meth:`Solver.solve`.

    Attributes:
        samples: ``(M, K, *x_shape)``.
        nfe: network (denoiser) evaluations per sample, counted during the run.
        operator_calls: forward-operator evaluations per sample, counted during the run.
        seconds: wall-clock time of the loop.
        state: the final state.
        decoder_calls, encoder_calls: calls of a latent prior's decoder / encoder per sample
            (:class:`~invprob.operators.LatentOperator`; the final decoding included); 0 for a
            pixel prior. Like ``nfe`` and ``operator_calls``, these count the calls of the
            batched solve: where samples stop at different iterations (ReSample's
            optimisations), that of the sample that ran longest.
    """

    samples: Tensor
    nfe: int
    operator_calls: int
    seconds: float
    state: State = field(repr=False)
    decoder_calls: int = 0
    encoder_calls: int = 0


@dataclass(frozen=True)
class Tunable:
    """A hyper-parameter that :func:`invprob.calibrate` may search, declared by a solver class in
    ``Solver.tunables`` (constructor argument name → ``Tunable``).

    The search range is centred on the value the preset gives (the paper's, for a paper preset):
    on a log scale ``[v / factor, v · factor]``, on a linear scale ``[v − width, v + width]``;
    both are clipped to ``bounds``, the values the argument accepts.

    Attributes:
        scale: ``"log"`` (step sizes, weights: anything positive whose order of magnitude is
            uncertain) or ``"linear"`` (bounded fractions such as DDRM's η).
        factor: the log range's half-width, a ratio > 1.
        width: the linear range's half-width.
        bounds: ``(low, high)`` the argument accepts.
    """

    scale: str = "log"
    factor: float = 100.0
    width: float = 0.0
    bounds: tuple[float, float] = (0.0, math.inf)

    def __post_init__(self) -> None:
        if self.scale not in ("log", "linear"):
            raise ValueError(f"`scale` must be 'log' or 'linear', got {self.scale!r}.")
        if self.scale == "log" and not self.factor > 1:
            raise ValueError(f"a log-scale Tunable needs `factor` > 1, got {self.factor}.")
        if self.scale == "linear" and not self.width > 0:
            raise ValueError(f"a linear-scale Tunable needs `width` > 0, got {self.width}.")

    def range(self, centre: float) -> tuple[float, float]:
        """``(low, high)`` of the search around ``centre`` (the preset's value)."""
        if self.scale == "log":
            if not centre > 0:
                raise ValueError(f"a log-scale hyper-parameter needs a value > 0 to centre its range on, got {centre!r}.")
            low, high = centre / self.factor, centre * self.factor
        else:
            low, high = centre - self.width, centre + self.width
        return max(low, self.bounds[0]), min(high, self.bounds[1])

    def value(self, u: float, low: float, high: float) -> float:
        """The value at position ``u`` ∈ [0, 1] of ``[low, high]`` on this scale."""
        if self.scale == "log":
            return math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
        return low + u * (high - low)

    def position(self, value: float, low: float, high: float) -> float:
        """The inverse of :meth:`value`: where ``value`` lies in ``[low, high]``, in [0, 1]."""
        if high == low:
            return 0.5
        if self.scale == "log":
            return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
        return (value - low) / (high - low)


class CallCounter:
    """Counts denoiser and operator calls while active (a context manager over hooks).

    ``nfe`` counts :meth:`Prior.denoise` calls (:meth:`Prior.register_denoise_hook`);
    ``operator_calls`` counts calls of the operator module (``nn.Module`` forward hooks:
    ``operator(x)``, not the operator's internal uses of ``forward``) — of the image-space
    operator of a :class:`~invprob.operators.LatentOperator`, whether a latent solver reaches it
    through the decoder or directly.
    """

    def __init__(self, prior: Prior, operator: torch.nn.Module) -> None:
        self.prior, self.operator = prior, getattr(operator, "image_operator", operator)
        self.nfe = self.operator_calls = self.decoder_calls = self.encoder_calls = 0
        self._handles: list = []
        self._latent = operator if hasattr(operator, "decoder_calls") else None  # a LatentOperator

    def _count_nfe(self, *_: Any) -> None:
        self.nfe += 1

    def _count_operator(self, *_: Any) -> None:
        self.operator_calls += 1

    def __enter__(self) -> "CallCounter":
        self._handles = [self.prior.register_denoise_hook(self._count_nfe),
                         self.operator.register_forward_pre_hook(self._count_operator)]
        if self._latent is not None:
            self._codec_start = (self._latent.decoder_calls, self._latent.encoder_calls)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._latent is not None:
            self.decoder_calls = self._latent.decoder_calls - self._codec_start[0]
            self.encoder_calls = self._latent.encoder_calls - self._codec_start[1]
        for handle in self._handles:
            handle.remove()
        self._handles = []


class Solver:
    """Base class of posterior samplers.

    Subclasses set ``num_steps``, implement ``start`` (build the first state from a
    validated :class:`SolveContext`), ``step`` and optionally ``result``; list what they need
    of the operator in ``requires`` (any of ``"differentiable"``, ``"linear"``, ``"svd"``,
    ``"pinv"``, ``"gaussian_noise"``) so that ``init`` refuses what they cannot handle, and
    declare in ``tunables`` the hyper-parameters :func:`invprob.calibrate` may search (most
    influential first; each a constructor argument kept as an attribute of the same name).
    """

    num_steps: int
    requires: tuple[str, ...] = ()
    tunables: dict[str, Tunable] = {}
    #: the samples are optima of an objective reached from random starts (D-Flow): where the
    #: objective has a single minimiser they coincide, whatever the start
    optimiser: bool = False

    @property
    def nfe_per_sample(self) -> int:
        """Denoiser evaluations per sample of a full run."""
        raise NotImplementedError

    # -- the contract -------------------------------------------------------------------
    def init(self, problem: Problem, prior: Prior, num_samples: int = 1,
             generator: int | torch.Generator | None = None) -> State:
        """Validate the problem, then build the initial state for ``M × num_samples`` rows."""
        self.check(problem, prior)
        return self.start(self.context(problem, prior, num_samples, generator))

    def context(self, problem: Problem, prior: Prior, num_samples: int,
                generator: int | torch.Generator | None) -> SolveContext:
        """The :class:`SolveContext` of a solve: per-row seeds and the measurement repeated
        for each of the ``rows_per_measurement(num_samples)`` rows of every measurement."""
        self._check_num_samples(num_samples)
        rows = self.rows_per_measurement(num_samples)
        M = problem.num_measurements
        _check_memory(M * rows, prior.x_shape or problem.operator.x_shape, prior.dtype, problem.measurement.device)
        return SolveContext(problem=problem, prior=prior, seeds=streams.sample_seeds(generator, M, rows),
                            measurement=problem.measurement.repeat_interleave(rows, dim=0),
                            num_measurements=M, num_samples=num_samples, rows_per_measurement=rows)

    def rows_per_measurement(self, num_samples: int) -> int:
        """Rows the solver carries per measurement for ``num_samples`` requested samples."""
        return num_samples

    @staticmethod
    def _check_num_samples(num_samples: object) -> None:
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
            raise ValueError(f"`num_samples` must be a positive int, got {num_samples!r}.")

    def start(self, context: SolveContext) -> State:
        """Build the first state from ``context`` (e.g. with :meth:`SolveContext.new_state`)."""
        raise NotImplementedError

    def step(self, state: State, i: int) -> State:
        raise NotImplementedError

    def result(self, state: State) -> Tensor:
        """Samples ``(M, K, *x_shape)``."""
        x = state.x.detach()
        return x.reshape(state.num_measurements, state.num_samples, *x.shape[1:])

    def check(self, problem: Problem, prior: Prior) -> None:
        """Raise :class:`UnsupportedProblemError` if this solver cannot handle the problem."""
        if not isinstance(problem, Problem):
            raise TypeError(f"`problem` must be an invprob.Problem, got {type(problem).__name__}.")
        if not isinstance(prior, Prior):
            raise TypeError(f"`prior` must be an invprob.priors.Prior, got {type(prior).__name__}.")
        op, name = problem.operator, type(self).__name__
        image_shape = getattr(prior, "image_shape", None)  # a LatentPrior's
        if (image_shape is not None and op.x_shape is not None and tuple(op.x_shape) == tuple(image_shape)
                and tuple(op.x_shape) != tuple(prior.x_shape)):
            raise UnsupportedProblemError(
                f"{name} runs on the prior's own space, but this is a latent prior and the operator acts on images "
                f"{tuple(op.x_shape)}; use a latent solver (e.g. latent-daps), or solve "
                f"prior.latent_problem(problem), which measures y = A(D(z)) in latent space.")
        if op.x_shape is not None and prior.x_shape is not None and tuple(op.x_shape) != tuple(prior.x_shape):
            raise UnsupportedProblemError(f"the operator acts on images {tuple(op.x_shape)} but the prior "
                                          f"models {tuple(prior.x_shape)}; build the operator for the prior's shape.")
        if prior.x_shape is None:
            m = prior.size_multiple
            if op.x_shape is None:
                raise UnsupportedProblemError(f"the prior accepts any image size and {type(op).__name__} fixes "
                                              f"none; build the operator with `x_shape=(C, H, W)`.")
            if op.x_shape[-1] % m or op.x_shape[-2] % m:
                raise UnsupportedProblemError(f"the operator acts on images {tuple(op.x_shape)}, but the prior's "
                                              f"network needs height and width divisible by {m}; crop or pad.")
        if problem.measurement.device != prior.device:
            raise UnsupportedProblemError(f"the measurement is on {problem.measurement.device} but the prior "
                                          f"is on {prior.device}; move both with .to(device).")
        y = problem.measurement
        y_dtype = (y.real if y.is_complex() else y).dtype
        if y_dtype != prior.dtype:
            # A declared dtype (a parameter-free network's, or the float32 interface of a network
            # run in fp16 / bf16) does not follow prior.to(dtype): only the problem can move.
            fix = (f"bring the operator and the measurement to {prior.dtype} with .to(dtype) (this prior's "
                   f"dtype is declared: prior.to(dtype) does not change it)"
                   if prior.declared_dtype is not None else
                   "bring both to one precision (the prior with prior.to(dtype), or the operator and the "
                   "measurement with .to(dtype))")
            raise UnsupportedProblemError(f"the measurement is {y_dtype} (its real part, if complex) but the prior "
                                          f"computes in {prior.dtype}; {fix}.")
        complex_dtype = torch.promote_types(prior.dtype, torch.complex64)
        other = sorted({str(b.dtype) for b in op.buffers()
                        if (b.is_floating_point() and b.dtype != prior.dtype)
                        or (b.is_complex() and b.dtype != complex_dtype)})
        if other:
            raise UnsupportedProblemError(f"the operator holds {', '.join(other)} tensors but the prior computes in "
                                          f"{prior.dtype}; bring the operator to it with operator.to({prior.dtype}).")
        needs = {
            "differentiable": (op.differentiable and not op.black_box,
                               f"{name} differentiates through the operator, but {type(op).__name__} is "
                               f"not differentiable (black box); use a derivative-free solver such as 'enkg'."),
            "linear": (op.linear, f"{name} needs a linear operator; {type(op).__name__} is not."),
            "svd": (op.has_svd, f"{name} needs an operator with an SVD; {type(op).__name__} has none."),
            "pinv": (op.has_pinv,
                     f"{name} needs `pinv`; {type(op).__name__} has none."),
            "gaussian_noise": (isinstance(problem.noise, Gaussian),
                               f"{name} assumes Gaussian noise; got {type(problem.noise).__name__}."),
        }
        for need in self.requires:
            ok, message = needs[need]
            if not ok:
                raise UnsupportedProblemError(message)

    # -- the generic loop ---------------------------------------------------------------
    def solve(self, problem: Problem, prior: Prior, num_samples: int = 1,
              generator: int | torch.Generator | None = None,
              callback: Callable[[State, int], State | None] | None = None,
              progress: bool = True) -> SolveResult:
        """Run ``init``, ``num_steps`` × ``step`` and ``result``, counting NFE and time.

        ``callback(state, i)`` runs after each step; it may return a modified state.
        """
        from tqdm.auto import tqdm

        self.check(problem, prior)
        clock = time.perf_counter()
        with CallCounter(prior, problem.operator) as counter:
            state = self.start(self.context(problem, prior, num_samples, generator))
            bar = tqdm(range(self.num_steps), desc=type(self).__name__, disable=not progress, leave=False)
            every = max(1, self.num_steps // 50)  # data fit shown ~50 times per run (not counted)
            show_fit = progress and not problem.operator.black_box
            for i in bar:
                state = self.step(state, i)
                if callback is not None:
                    state = callback(state, i) or state
                if show_fit and (i % every == 0 or i == self.num_steps - 1):
                    bar.set_postfix(data_fit=f"{_relative_residual(problem, state.x0_hat):.3g}")
                if i % every == 0 or i == self.num_steps - 1:  # one device sync per check
                    self._check_finite(state.x, i)
            samples = self.result(state)
        return SolveResult(samples=samples, nfe=counter.nfe, operator_calls=counter.operator_calls,
                           seconds=time.perf_counter() - clock, state=state, decoder_calls=counter.decoder_calls,
                           encoder_calls=counter.encoder_calls)

    # -- shared pieces --------------------------------------------------------------------
    def _check_finite(self, x: Tensor, step: int) -> None:
        """Stop a diverged run (NaN/inf iterate) with the step and the knob to turn, instead of
        returning NaN samples. Divergence a linear operator's norm predicts is refused at ``check``;
        this catches what cannot be predicted (nonlinear operators, e.g. a too-large step)."""
        if not bool(torch.isfinite(x).all()):
            knobs = ", ".join(f"`{k}`={getattr(self, k)!r}" for k in ("lr", "scale", "guidance_scale", "step_size")
                              if isinstance(getattr(self, k, None), (int, float)))
            raise FloatingPointError(
                f"{type(self).__name__} diverged at step {step} of {self.num_steps}: the iterate has "
                f"non-finite values. Lower the step size{f' ({knobs})' if knobs else ''} "
                "or check the operator and the measurement for NaN/inf.")

    def start_from_vp_noise(self, context: SolveContext, state_cls: type[State], sigma: float, **extra: Any) -> State:
        """A ``state_cls`` at ``x_T ~ N(0, I)`` in the VP variable, i.e. ``sqrt(1 + σ_T²) z`` in
        σ-space at level ``sigma = σ_T`` (the DDIM-grid solvers' start)."""
        state = context.new_state(state_cls, context.zeros(), sigma, **extra)
        return state.replace(x=(1 + sigma**2) ** 0.5 * self.randn(state, step=-1))

    @staticmethod
    def chain_noise(state: State, step: int, count: int, j: int, stream: int = 1) -> Tensor:
        """Image ``j`` of one per-row draw of ``count`` images for ``step``, shaped like
        ``state.x``: the noise of inner step ``j`` of a chain (Langevin, HMC) within ``step``,
        computed alone (:func:`invprob.streams.randn_slice`) so that memory does not grow with
        ``count``, bit-identical to slicing the whole draw."""
        shape, n = state.x.shape[1:], state.x[0].numel()
        return streams.randn_slice(state.seeds, step, (count, *shape), j * n, (j + 1) * n, stream=stream,
                                   dtype=state.x.dtype, device=state.x.device).reshape(state.x.shape)

    @staticmethod
    def randn(state: State, step: int, stream: int = 0) -> Tensor:
        """Per-row standard normal noise shaped like ``state.x`` (see :mod:`invprob.streams`)."""
        return streams.randn(state.seeds, step, state.x.shape[1:], stream=stream,
                          dtype=state.x.dtype, device=state.x.device)


class PopulationSolver(Solver):
    """A solver whose samples interact (EnKG's ensemble, SMC's particles): it runs a population
    of rows per measurement and returns the first ``num_samples`` of each. Subclasses give the
    population size (``population_size``) and the argument that sets it (``population_arg``,
    named in the error when ``num_samples`` exceeds it, with ``population_fix`` as the advice;
    default "raise <population_arg>")."""

    population_arg: str = ""
    population_fix: str = ""

    def population_size(self, num_samples: int) -> int:
        """Rows per measurement for a request of ``num_samples``."""
        raise NotImplementedError

    def rows_per_measurement(self, num_samples: int) -> int:
        population = self.population_size(num_samples)
        if population < num_samples:
            arg = self.population_arg
            raise ValueError(f"`num_samples` ({num_samples}) exceeds `{arg}` ({population}); "
                             f"{self.population_fix or 'raise ' + arg}.")
        return population

    def result(self, state: State) -> Tensor:
        x = state.x.detach()
        return x.reshape(state.num_measurements, -1, *x.shape[1:])[:, : state.num_samples]


def _memory_bytes(device: torch.device) -> int | None:
    """Total memory of ``device`` in bytes (``None`` if unknown)."""
    import os

    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _check_memory(rows: int, x_shape: tuple[int, ...] | None, dtype: torch.dtype, device: torch.device) -> None:
    """Refuse up front a solve whose iterate alone (one ``(rows, *x_shape)`` tensor; solvers hold
    several) exceeds the device's memory, instead of failing deep inside an allocation."""
    if x_shape is None:
        return
    need = rows * math.prod(x_shape) * torch.empty((), dtype=dtype).element_size()
    total = _memory_bytes(torch.device(device))
    if total is not None and need > total:
        raise ValueError(f"one iterate of {rows} rows × {tuple(x_shape)} in {dtype} needs {need / 2**30:.1f} GiB, "
                         f"more than the {total / 2**30:.1f} GiB of {device}; lower `num_samples` (or the population), "
                         f"solve fewer measurements at once, or use a smaller image shape.")


def _relative_residual(problem: Problem, x0_hat: Tensor) -> float:
    """Median over samples of ``‖A(x̂₀) − y‖ / ‖y‖`` (the progress bar's data fit)."""
    with torch.no_grad():
        y = problem.measurement
        k = x0_hat.shape[0] // y.shape[0]
        y = y.repeat_interleave(k, dim=0)
        op = problem.operator
        # uncounted: forward, not the module call (a latent problem: its image operator's forward)
        image = op.decode(x0_hat.detach(), count=False) if hasattr(op, "image_operator") else None
        predicted = op.image_operator.forward(image) if image is not None else op.forward(x0_hat.detach())
        r = (predicted - y).abs().flatten(1).norm(dim=1)
        return float((r / y.abs().flatten(1).norm(dim=1).clamp_min(1e-12)).median())
