"""Adapters: every network parameterisation converted to the σ-space denoiser, once.

A network is a callable ``net(x_in, t) -> output`` on batches. The conversions
(contract 2 of ``docs/design.md``), for ``x = x0 + σ n`` in σ-space:

* VP / DDPM (ε-, v- or x0-prediction): ``ᾱ = 1/(1+σ²)``, the network sees
  ``x_t = x / sqrt(1+σ²)`` at the (fractional) training timestep ``t`` whose ``ᾱ_t`` equals
  ``ᾱ`` (log-σ interpolation between the discrete timesteps, as k-diffusion's
  ``DiscreteSchedule``); ``x0 = (x_t − sqrt(1−ᾱ) ε)/sqrt(ᾱ)``, or
  ``x0 = sqrt(ᾱ) x_t − sqrt(1−ᾱ) v``, or the output itself.
* Rectified flow (``x_t = (1−t) x0 + t ε``, velocity ``v = ε − x0``): ``t = σ/(1+σ)``,
  ``x_t = x/(1+σ)``, ``x0 = x_t − t v``; the network gets ``t · time_scale`` (diffusers'
  flow models take ``1000 t``).
* EDM (Karras et al. 2022): the raw network ``F`` is preconditioned,
  ``D = c_skip x + c_out F(c_in x, c_noise)`` with ``σ_data`` (default 0.5).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .. import sampling
from .base import Prior

__all__ = ["VPPrior", "FlowPrior", "EDMPrior", "PREDICTIONS"]

PREDICTIONS = ("epsilon", "v_prediction", "sample")


def _bcast(v: Tensor, like: Tensor) -> Tensor:
    return v.reshape(-1, *([1] * (like.dim() - 1)))


def _declare_dtype(prior: Prior, dtype: torch.dtype | None) -> None:
    """Record the ``dtype`` argument of an adapter (what a parameter-free network computes in)."""
    if dtype is None:
        return
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"`dtype` must be a floating torch.dtype such as torch.float64, got {dtype!r}.")
    own = {p.dtype for p in prior.parameters() if p.is_floating_point()}
    if own and own != {dtype}:
        raise ValueError(f"`dtype` is {dtype} but the network's parameters are {sorted(map(str, own))}; drop "
                         f"`dtype` (it is for parameter-free networks) or convert the network with .to(dtype).")
    prior.declare_dtype(dtype)


class VPPrior(Prior):
    """A discrete-time VP / DDPM network as a σ-space denoiser.

    Args:
        network: ``net(x_t (B, C, H, W), t (B,)) -> (B, C', H, W)``; with
            ``learn_sigma`` the extra variance channels (``C' = 2C``, ADM) are dropped.
        alphas_cumprod: ``(T,)`` ᾱ of the training schedule (e.g. ``scheduler.alphas_cumprod``).
        prediction: ``'epsilon'``, ``'v_prediction'`` or ``'sample'`` (x0).
        x_shape: image shape; ``None`` for fully convolutional networks (any size).
        data_range: the data interval (default [-1, 1]).
        learn_sigma: drop the second half of the output channels.
        clip_denoised: clamp ``x0_hat`` to ``data_range``.
        dtype: what ``network`` computes in when it has no parameters (a plain function);
            otherwise its parameters' dtype is used and this must be ``None`` or equal to it.
    """

    _schedule_buffers = ("log_sigmas",)  # float64 whatever the network's precision

    def __init__(self, network: Callable, alphas_cumprod: Tensor, prediction: str = "epsilon",
                 x_shape: tuple[int, ...] | None = None, data_range: tuple[float, float] | None = (-1.0, 1.0),
                 learn_sigma: bool = False, clip_denoised: bool = False, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if prediction not in PREDICTIONS:
            raise ValueError(f"`prediction` must be one of {PREDICTIONS}, got {prediction!r}.")
        self.network = network
        self.prediction, self.learn_sigma, self.clip_denoised = prediction, learn_sigma, clip_denoised
        self.x_shape = tuple(x_shape) if x_shape is not None else None
        self.data_range = data_range
        abar = torch.as_tensor(alphas_cumprod, dtype=torch.float64)
        if abar.dim() != 1 or not ((abar > 0) & (abar < 1)).all():
            raise ValueError("`alphas_cumprod` must be a (T,) tensor with values in (0, 1).")
        self.register_buffer("log_sigmas", sampling.sigma_from_alphas_cumprod(abar).log(), persistent=False)
        _declare_dtype(self, dtype)

    @property
    def sigma_min(self) -> float:
        return float(self.log_sigmas[0].exp())

    @property
    def sigma_max(self) -> float:
        return float(self.log_sigmas[-1].exp())

    def sigma_to_t(self, sigma: Tensor) -> Tensor:
        """Fractional timestep with the same σ (linear in log σ between training timesteps)."""
        table = self.log_sigmas.to(torch.float64)  # .to(float32) on the prior converts buffers too
        log_sigma = sigma.to(torch.float64).log().clamp(table[0], table[-1])
        idx = torch.searchsorted(table, log_sigma).clamp(1, len(table) - 1)
        lo, hi = table[idx - 1], table[idx]
        w = (log_sigma - lo) / (hi - lo)
        return (idx - 1).to(torch.float64) + w

    def t_to_sigma(self, t: Tensor) -> Tensor:
        t, table = t.to(torch.float64), self.log_sigmas.to(torch.float64)
        lo = t.floor().long().clamp(0, len(table) - 1)
        hi = (lo + 1).clamp(max=len(table) - 1)
        w = t - lo
        return ((1 - w) * table[lo] + w * table[hi]).exp()

    def _denoise(self, x: Tensor, sigma: Tensor) -> Tensor:
        t = self.sigma_to_t(sigma)
        sigma = self.t_to_sigma(t).to(x.dtype)  # σ clamped to the schedule's range
        abar = _bcast(1.0 / (1.0 + sigma**2), x)
        x_t = x * abar.sqrt()
        out = self.network(x_t, t.to(x.dtype))
        if self.learn_sigma:
            out = out[:, : x.shape[1]]
        if out.shape != x.shape:
            raise ValueError(f"the network returned {tuple(out.shape)} for input {tuple(x.shape)}; for ADM "
                             f"checkpoints with learned variance pass learn_sigma=True.")
        if self.prediction == "epsilon":
            x0 = (x_t - (1 - abar).sqrt() * out) / abar.sqrt()
        elif self.prediction == "v_prediction":
            x0 = abar.sqrt() * x_t - (1 - abar).sqrt() * out
        else:
            x0 = out
        if self.clip_denoised and self.data_range is not None:
            x0 = x0.clamp(*self.data_range)
        return x0


class FlowPrior(Prior):
    """A rectified-flow velocity network (``x_t = (1−t) x0 + t ε``, ``v = ε − x0``) as a σ-space
    denoiser (``denoise(x, σ)`` evaluates it at ``t = σ/(1 + σ)`` on ``x/(1 + σ)``), and as itself
    for the flow-native solvers: ``flow_denoise(x_t, t) = x_t − t v(x_t, t)``, exact up to ``t = 1``.

    Args:
        network: ``net(x_t, t · time_scale) -> v``.
        time_scale: multiplier of ``t ∈ [0, 1]`` fed to the network (1000 for diffusers).
        x_shape, data_range, dtype: as :class:`VPPrior`.
    """

    def __init__(self, network: Callable, time_scale: float = 1.0, x_shape: tuple[int, ...] | None = None,
                 data_range: tuple[float, float] | None = (-1.0, 1.0), dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.network, self.time_scale = network, float(time_scale)
        self.x_shape = tuple(x_shape) if x_shape is not None else None
        self.data_range = data_range
        _declare_dtype(self, dtype)

    velocity_native = True

    def _denoise(self, x: Tensor, sigma: Tensor) -> Tensor:
        t = sampling.flow_time_from_sigma(sigma)
        return self._flow_denoise(x * _bcast(1 - t, x), t)  # x (1 − t) = x / (1 + σ)

    def _flow_denoise(self, x_t: Tensor, t: Tensor) -> Tensor:
        return x_t - _bcast(t, x_t) * self.network(x_t, t * self.time_scale)


class EDMPrior(Prior):
    """An EDM network: either already a denoiser ``D(x, σ)`` (``preconditioned=True``) or a
    raw ``F`` wrapped with EDM's preconditioning (Karras et al. 2022, Table 1):
    ``c_skip = σd²/(σ²+σd²)``, ``c_out = σ σd/sqrt(σ²+σd²)``, ``c_in = 1/sqrt(σ²+σd²)``,
    ``c_noise = ln(σ)/4``.

    Args:
        network: ``net(x, σ) -> D`` or ``net(c_in x, c_noise) -> F``.
        preconditioned: whether ``network`` is already ``D``.
        sigma_data: σ_data (0.5).
        x_shape, data_range, dtype: as :class:`VPPrior`.
    """

    def __init__(self, network: Callable, preconditioned: bool = False, sigma_data: float = 0.5,
                 x_shape: tuple[int, ...] | None = None, data_range: tuple[float, float] | None = (-1.0, 1.0),
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.network, self.preconditioned, self.sigma_data = network, preconditioned, float(sigma_data)
        self.x_shape = tuple(x_shape) if x_shape is not None else None
        self.data_range = data_range
        _declare_dtype(self, dtype)

    def _denoise(self, x: Tensor, sigma: Tensor) -> Tensor:
        if self.preconditioned:
            return self.network(x, sigma)
        c_skip, c_out, c_in, c_noise = sampling.edm_preconditioning(_bcast(sigma, x), self.sigma_data)
        return c_skip * x + c_out * self.network(c_in * x, c_noise.reshape(-1))
