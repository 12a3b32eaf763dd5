"""Loading pretrained priors from local files, safely (no pickled code is ever executed).

* :func:`load_state_dict` reads ``.safetensors`` with safetensors and anything else with
  ``torch.load(weights_only=True)``; a pickled object, a truncated file or a checksum
  mismatch is a clear error naming the file.
* :func:`from_diffusers` builds a σ-space prior from a local diffusers directory holding a
  ``UNet2DModel`` and its scheduler config (DDPM / DDIM / Euler → :class:`VPPrior` with the
  scheduler's ``prediction_type``; ``FlowMatchEulerDiscreteScheduler`` → :class:`FlowPrior`).
  Never downloads (``local_files_only=True``).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import CheckpointError
from ..io import sha256
from .adapters import FlowPrior, VPPrior

__all__ = ["sha256", "load_state_dict", "from_diffusers", "block_checkpointing",
           "has_block_checkpointing"]


def load_state_dict(path: str | Path, expected_sha256: str | None = None) -> dict[str, Tensor]:
    """Tensors of a checkpoint file, verified against ``expected_sha256`` when given."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}" + (f" (expected sha256 {expected_sha256})"
                                                                if expected_sha256 else ""))
    if expected_sha256 is not None:
        actual = sha256(path)
        if actual != expected_sha256:
            raise CheckpointError(f"checksum mismatch for {path}: sha256 {actual}, expected {expected_sha256}; "
                                  f"the file is corrupt, truncated or not the published weights.")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as err:  # safetensors raises its own error types
            raise CheckpointError(f"cannot read {path} as safetensors: {err}") from err
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"refusing to load {path}: it is not a plain tensor checkpoint loadable with "
                              f"weights_only=True (pickled code or a corrupt file): {err}") from err
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors.")
    return state


class UNetCall(nn.Module):
    """``net(x, t) -> unet(x, t).sample`` so a diffusers UNet fits the adapters (and moves with ``.to``)."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return self.unet(x.to(self.unet.dtype), t.to(self.unet.dtype)).sample.to(x.dtype)


def ddpm_schedule(config: dict):
    """A diffusers ``DDPMScheduler`` holding the training schedule (ᾱ, ``prediction_type``) of any
    discrete scheduler config (DDPM / DDIM / Euler ...; private ``_`` keys dropped)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config({k: v for k, v in config.items() if not k.startswith("_")})


def from_diffusers(path: str | Path, data_range: tuple[float, float] = (-1.0, 1.0), clip_denoised: bool = False,
                   torch_dtype: torch.dtype = torch.float32):
    """A σ-space prior from a local diffusers pipeline directory (``unet/`` + ``scheduler/``)
    or a bare model directory with a ``scheduler_config.json`` beside it."""
    from diffusers import UNet2DModel

    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"diffusers model directory not found: {path}")
    unet_dir = path / "unet" if (path / "unet").is_dir() else path
    sched_file = next((p for p in (path / "scheduler" / "scheduler_config.json", path / "scheduler_config.json")
                       if p.is_file()), None)
    if sched_file is None:
        raise CheckpointError(f"no scheduler config in {path} (looked for scheduler/scheduler_config.json "
                              f"and scheduler_config.json); the noise schedule is needed to interpret the network.")
    try:
        unet = UNet2DModel.from_pretrained(str(unet_dir), local_files_only=True, torch_dtype=torch_dtype)
    except Exception as err:
        raise CheckpointError(f"cannot load a UNet2DModel from {unet_dir}: {err}") from err
    unet.eval().requires_grad_(False)
    config = json.loads(sched_file.read_text())
    x_shape = (unet.config.in_channels, unet.config.sample_size, unet.config.sample_size) \
        if isinstance(unet.config.sample_size, int) else None
    network = UNetCall(unet)
    if "FlowMatch" in config.get("_class_name", ""):
        return FlowPrior(network, time_scale=config.get("num_train_timesteps", 1000), x_shape=x_shape,
                         data_range=data_range)
    scheduler = ddpm_schedule(config)
    learn_sigma = unet.config.out_channels == 2 * unet.config.in_channels
    return VPPrior(network, scheduler.alphas_cumprod, prediction=scheduler.config.prediction_type,
                   x_shape=x_shape, data_range=data_range, learn_sigma=learn_sigma, clip_denoised=clip_denoised)


class _Cast(nn.Module):
    """Runs ``network`` in ``dtype`` (mixed precision) and returns the caller's dtype."""

    def __init__(self, network: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.network, self.dtype = network, dtype

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return self.network(x.to(self.dtype), t).to(x.dtype)


DTYPES = {"float32": torch.float32, "float16": torch.float16, "fp16": torch.float16, "bfloat16": torch.bfloat16,
          "bf16": torch.bfloat16}


def set_network_options(prior, dtype: torch.dtype | str | None = None, channels_last: bool = False,
                        compile: bool = False):
    """Tune a network prior in place (and return it): ``dtype`` casts the network's weights
    (fp16 / bf16; the denoiser still takes and returns the solver's float32 tensors),
    ``channels_last`` switches its memory format, ``compile`` wraps it in ``torch.compile``
    (opt-in: the first calls are slow while it compiles)."""
    if dtype is None and not channels_last and not compile:
        return prior
    network = getattr(prior, "network", None) or getattr(getattr(prior, "latent", None), "network", None)
    owner = prior if getattr(prior, "network", None) is not None else getattr(prior, "latent", None)
    if not isinstance(network, nn.Module):
        raise ValueError(f"{type(prior).__name__} has no network to tune (dtype/channels_last/compile apply to "
                         f"network priors).")
    if dtype is not None:
        if isinstance(dtype, str):
            if dtype not in DTYPES:
                raise ValueError(f"`dtype` must be one of {sorted(DTYPES)}, got {dtype!r}.")
            dtype = DTYPES[dtype]
        interface = prior.dtype  # what the solver state stays in
        network.to(dtype)
        network = _Cast(network, dtype)
        prior.declare_dtype(interface)
        owner.declare_dtype(interface)
    if channels_last:
        network.to(memory_format=torch.channels_last)
    if compile:
        network = torch.compile(network)
    owner.network = network
    return prior


def _checkpoint_switches(prior) -> list:
    """The prior's modules that can checkpoint their blocks: diffusers models that support it and
    guided-diffusion-style blocks with a ``use_checkpoint`` flag."""
    from diffusers import ModelMixin

    return [m for m in prior.modules() if (isinstance(m, ModelMixin) and m._supports_gradient_checkpointing)
            or (not isinstance(m, ModelMixin) and isinstance(getattr(m, "use_checkpoint", None), bool))]


def has_block_checkpointing(prior) -> bool:
    """Whether :func:`block_checkpointing` can run on ``prior``'s network."""
    return bool(_checkpoint_switches(prior))


@contextlib.contextmanager
def block_checkpointing(prior):
    """Within this context the prior's network keeps, of each of its blocks, only the input and
    recomputes the block's activations in the backward pass (activation checkpointing, block by
    block): the peak memory of a forward + backward pass drops from all the activations of the
    network towards those of one block, for about one more forward pass. The network's own
    switches do it: ``enable_gradient_checkpointing`` of diffusers models (``UNet2DModel``, the
    latent UNets) and the ``use_checkpoint`` flag of guided-diffusion's blocks (deepinv's
    ``DiffUNet``); both run ``torch.utils.checkpoint`` without reentrancy, so
    ``torch.autograd.grad`` to the input works. Each switch is put back on exit.

    Checkpointing the whole network as one call would not lower the peak (the backward pass
    recomputes and holds all the activations at once), so a network with neither switch is
    refused with a ``ValueError`` (:func:`has_block_checkpointing` tells beforehand).
    """
    from diffusers import ModelMixin

    switches = _checkpoint_switches(prior)
    if not switches:
        raise ValueError(f"`gradient_checkpointing=True` needs a network with checkpointable blocks (a diffusers "
                         f"model, or blocks with a `use_checkpoint` flag as in deepinv's DiffUNet); "
                         f"{type(prior).__name__} has none: set gradient_checkpointing=false.")
    restore = []
    for module in switches:
        if isinstance(module, ModelMixin):
            if not module.is_gradient_checkpointing:
                module.enable_gradient_checkpointing()
                restore.append(module.disable_gradient_checkpointing)
        elif not module.use_checkpoint:
            module.use_checkpoint = True
            restore.append(lambda module=module: setattr(module, "use_checkpoint", False))
    try:
        yield
    finally:
        for undo in reversed(restore):
            undo()
