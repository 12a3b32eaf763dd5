"""The prior contract (contract 2 of ``docs/design.md``): a denoiser in σ-space."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import Callable

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from ..checks import as_sigma, check_shape, check_tensor

__all__ = ["Prior"]


class Prior(nn.Module):
    """Base class of priors: ``denoise(x, sigma) -> x0_hat``.

    ``x0_hat = E[x0 | x0 + sigma n = x]`` is the MMSE denoiser of the variance-exploding
    (EDM) form; ``sigma`` is ``(B,)`` (a float is broadcast). Every other quantity derives
    from it: ``score = (x0_hat - x) / sigma²`` (Tweedie), ODE/SDE steps. Adapters for
    ε-, v-, x0- and velocity networks convert once, in :mod:`invprob.priors`.

    Subclasses implement ``_denoise(x, sigma)`` on validated inputs and set ``x_shape``
    (image shape without batch dim) and ``data_range`` (``(lo, hi)`` or ``None`` if unbounded).

    ``max_batch`` (``None``: no limit) caps how many images one network call sees: a larger
    batch is denoised in chunks of at most ``max_batch`` and concatenated — the same result in
    less peak memory, for population solvers (EnKG's ensemble: the official code's
    ``batch_size``) and large ``M × K`` batches. A chunked call still counts as one NFE.
    """

    x_shape: tuple[int, ...] | None = None
    data_range: tuple[float, float] | None = (-1.0, 1.0)
    #: with ``x_shape = None`` (a fully convolutional network): H and W must be multiples of this
    size_multiple: int = 1
    _max_batch: int | None = None
    #: buffers that are tables of the noise schedule, not the network's precision (see ``dtype``)
    _schedule_buffers: tuple[str, ...] = ()
    #: the dtype ``denoise`` takes and returns where the parameters do not tell it; see ``dtype``
    _declared_dtype: torch.dtype | None = None

    @property
    def max_batch(self) -> int | None:
        """At most this many images per network call (``None``: all at once); see the class docstring."""
        return self._max_batch

    @max_batch.setter
    def max_batch(self, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"`max_batch` must be a positive int or None, got {value!r}.")
        self._max_batch = value

    @property
    def declared_dtype(self) -> torch.dtype | None:
        """The dtype declared by an adapter's ``dtype`` argument or a reduced-precision loader
        (``None`` when the parameters or buffers decide it); see :attr:`dtype`."""
        return self._declared_dtype

    def declare_dtype(self, dtype: torch.dtype | None) -> None:
        """Fix the dtype :meth:`denoise` takes and returns (``None``: let the parameters decide);
        for parameter-free networks and networks run in reduced precision behind a float32
        interface."""
        self._declared_dtype = dtype

    def register_denoise_hook(self, hook: Callable[["Prior", Tensor, Tensor], None]) -> RemovableHandle:
        """Call ``hook(prior, x, sigma)`` before every :meth:`denoise` call (one call, however
        many chunks ``max_batch`` splits it into). Returns a handle whose ``remove()`` detaches
        it — the counterpart of ``nn.Module.register_forward_pre_hook`` for ``denoise``; the
        solvers' NFE count uses it."""
        if "_denoise_hooks" not in self.__dict__:
            self._denoise_hooks: OrderedDict[int, Callable] = OrderedDict()  # weak-referenceable
        handle = RemovableHandle(self._denoise_hooks)
        self._denoise_hooks[handle.id] = hook
        return handle

    @contextlib.contextmanager
    def suspend_denoise_hooks(self):
        """Within this context :meth:`denoise` runs no hooks: for recomputations that are not
        network evaluations of the algorithm (activation checkpointing's backward pass), so
        that NFE counts stay those of the algorithm."""
        previous = self.__dict__.get("_hooks_suspended", False)
        self._hooks_suspended = True
        try:
            yield
        finally:
            self._hooks_suspended = previous

    def _denoise(self, x: Tensor, sigma: Tensor) -> Tensor:
        raise NotImplementedError

    def denoise(self, x: Tensor, sigma: Tensor | float) -> Tensor:
        """MMSE estimate of ``x0`` from ``x = x0 + sigma * n``.

        Args:
            x: noisy images ``(B, *x_shape)``.
            sigma: noise levels ``(B,)`` (> 0) or a scalar.

        Returns:
            ``x0_hat`` of shape ``(B, *x_shape)``.
        """
        self._check_input(x)
        sigma = as_sigma(sigma, x.shape[0], x)
        return self._call(self._denoise, x, sigma, sigma)

    def flow_denoise(self, x_t: Tensor, t: Tensor | float) -> Tensor:
        """MMSE estimate of ``x0`` from ``x_t = (1 − t) x0 + t ε`` on the rectified-flow
        (conditional OT) path, ``t = 1`` pure noise, ``t → 0`` the data: what flow-native solvers
        (:mod:`invprob.solvers.flow`) call. One network evaluation (one NFE).

        Any prior answers it through the σ-space denoiser: ``x_t / (1 − t) = x0 + σ ε`` with
        ``σ = t / (1 − t)``, so ``flow_denoise(x_t, t) = denoise(x_t / (1 − t), t / (1 − t))``, the
        same MMSE estimate whatever the parameterisation the network was trained in (a VP or EDM
        prior runs flow solvers through this conversion). That needs ``t < 1``; a velocity network
        (:class:`~invprob.priors.FlowPrior`) is evaluated at ``t`` directly, ``t = 1`` included.
        The velocity is ``v = (x_t − x̂0) / t``.

        Args:
            x_t: points of the path ``(B, *x_shape)``.
            t: flow times ``(B,)`` in ``(0, 1)`` (``(0, 1]`` for a flow prior) or a scalar.

        Returns:
            ``x0_hat`` of shape ``(B, *x_shape)``.
        """
        self._check_input(x_t)
        t = as_sigma(t, x_t.shape[0], x_t, name="t")
        top = float(t.max())
        if top > 1 or (top == 1 and not self.velocity_native):
            fix = ("" if top > 1 else f"; {type(self).__name__} is a σ-space denoiser, which is evaluated at "
                   "σ = t/(1 − t) and cannot be at t = 1 (σ = ∞): start the path just below 1, e.g. 1 − 1e-5")
            raise ValueError(f"`t` must be in (0, 1], got max {top!r}{fix}.")
        return self._call(self._flow_denoise, x_t, t, t / (1 - t))

    #: whether the network is a velocity field (``flow_denoise`` is then exact up to ``t = 1``)
    velocity_native: bool = False

    def _flow_denoise(self, x_t: Tensor, t: Tensor) -> Tensor:
        keep = _bcast_like(1 - t, x_t)
        return self._denoise(x_t / keep, t / (1 - t))

    def _check_input(self, x: Tensor) -> None:
        check_tensor(x, "x")
        if self.x_shape is not None:
            check_shape(x, self.x_shape, "x")
        elif x.dim() >= 3 and (x.shape[-1] % self.size_multiple or x.shape[-2] % self.size_multiple):
            raise ValueError(f"`x` has size {tuple(x.shape[-2:])}, but this prior's network needs height and "
                             f"width divisible by {self.size_multiple}; crop or pad the image.")

    def _call(self, fn: Callable[[Tensor, Tensor], Tensor], x: Tensor, level: Tensor, sigma: Tensor) -> Tensor:
        """``fn(x, level)`` after the denoise hooks (given the σ-space ``sigma``), in chunks of
        ``max_batch``: one NFE."""
        if not self.__dict__.get("_hooks_suspended", False):
            for hook in self.__dict__.get("_denoise_hooks", {}).values():
                hook(self, x, sigma)
        chunk = self._max_batch
        if chunk is None or x.shape[0] <= chunk:
            return fn(x, level)
        return torch.cat([fn(xc, lc) for xc, lc in zip(x.split(chunk), level.split(chunk))])

    def score(self, x: Tensor, sigma: Tensor | float) -> Tensor:
        """``∇_x log p_σ(x) = (x0_hat − x) / σ²`` (Tweedie's formula)."""
        sigma = as_sigma(sigma, x.shape[0], x)
        x0_hat = self.denoise(x, sigma)
        return (x0_hat - x) / sigma.reshape(-1, *([1] * (x.dim() - 1))) ** 2

    @property
    def device(self) -> torch.device:
        for tensor in list(self.buffers()) + list(self.parameters()):
            return tensor.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        """The floating dtype ``denoise`` takes and returns (solvers keep their state in it).

        A declared one first: an adapter's ``dtype`` for a parameter-free network, or the
        float32 interface of a network run in fp16 / bf16 (``dtype=`` of ``get_prior``); else
        the network's parameters'; else the prior's own floating buffers' (an analytic prior such
        as the GMM), skipping schedule tables kept in float64 (``_schedule_buffers``); else float32."""
        if self._declared_dtype is not None:
            return self._declared_dtype
        for tensor in self.parameters():
            if tensor.is_floating_point():
                return tensor.dtype
        for name, tensor in self.named_buffers():
            if tensor.is_floating_point() and name not in self._schedule_buffers:
                return tensor.dtype
        return torch.float32


def _bcast_like(v: Tensor, x: Tensor) -> Tensor:
    """``(B,)`` values shaped to broadcast over ``x`` ``(B, ...)``."""
    return v.reshape(-1, *([1] * (x.dim() - 1)))
