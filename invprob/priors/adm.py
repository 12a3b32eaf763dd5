"""ADM / guided-diffusion checkpoints (Dhariwal & Nichol 2021) as σ-space priors.

The two checkpoints that DPS, MCG, DAPS and InverseBench use share deepinv's
:class:`deepinv.models.DiffUNet` implementation of the ADM UNet (we build that module rather
than writing another):

* ``'ffhq'`` — ``ffhq_10m.pt`` of DPS (FFHQ 256×256): 128 channels, 1 res block per level,
  attention at 16×16, channel multipliers (1, 1, 2, 2, 4, 4), learned σ (6 output channels);
* ``'imagenet'`` — OpenAI's ``256x256_diffusion_uncond.pt`` (ImageNet 256×256, unconditional):
  256 channels, 2 res blocks, attention at 32, 16 and 8.

Both are ε-prediction networks trained on the linear β schedule (1e-4 → 0.02, 1000 steps),
images in [-1, 1]; the learned-variance channels are dropped by :class:`VPPrior`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from .. import sampling
from .adapters import VPPrior
from ..errors import CheckpointError
from .loading import load_state_dict

__all__ = ["ADM_VARIANTS", "build_adm", "load_adm", "adm_prior"]

# variant -> DiffUNet's large_model flag (deepinv's two configurations match the two checkpoints)
ADM_VARIANTS = {"ffhq": False, "imagenet": True}


class _ADMCall(nn.Module):
    """``net(x, t) -> eps ⊕ variance channels`` through DiffUNet's timestep path."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        dtype = next(self.unet.parameters()).dtype
        self.unet.dtype = dtype  # DiffUNet casts its activations to this attribute
        return self.unet.forward_diffusion(x.to(dtype), t.to(torch.float32)).to(x.dtype)


def build_adm(variant: str = "ffhq", in_channels: int = 3) -> nn.Module:
    """An ADM UNet with random weights in the configuration of ``variant`` (deepinv's DiffUNet)."""
    from deepinv.models import DiffUNet

    if variant not in ADM_VARIANTS:
        raise ValueError(f"`variant` must be one of {sorted(ADM_VARIANTS)}, got {variant!r}.")
    return DiffUNet(in_channels=in_channels, out_channels=in_channels, large_model=ADM_VARIANTS[variant],
                    pretrained=None)


def load_adm(path: str | Path, variant: str = "ffhq", sha256: str | None = None,
             image_size: int | None = 256, clip_denoised: bool = False) -> VPPrior:
    """A guided-diffusion checkpoint as a :class:`VPPrior` (ε-prediction, linear β, learned σ dropped).

    Args:
        path: the local ``.pt`` file (read with ``torch.load(weights_only=True)``) or a
            ``.safetensors`` conversion of it.
        variant: ``'ffhq'`` (DPS's ``ffhq_10m.pt``) or ``'imagenet'``
            (``256x256_diffusion_uncond.pt``).
        sha256: expected checksum (checked before loading) or ``None``.
        image_size: side of the images (``x_shape = (3, s, s)``); ``None`` for any size
            divisible by 32 (the UNet downsamples five times).
    """
    state = load_state_dict(path, sha256)
    unet = build_adm(variant)
    expected = unet.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not fit the ADM '{variant}' architecture: {len(missing)} missing keys "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected keys (e.g. {unexpected[:3]}); "
            f"is it the other variant ({sorted(set(ADM_VARIANTS) - {variant})}) or another model?")
    wrong = [k for k in expected if tuple(expected[k].shape) != tuple(state[k].shape)]
    if wrong:
        raise CheckpointError(f"{path}: tensor shapes differ from the ADM '{variant}' architecture for "
                              f"{len(wrong)} keys (e.g. {wrong[0]}: {tuple(state[wrong[0]].shape)} vs "
                              f"{tuple(expected[wrong[0]].shape)}).")
    unet.load_state_dict(state, strict=True)
    return adm_prior(unet, image_size, clip_denoised)


def adm_prior(unet: nn.Module, image_size: int | None = 256, clip_denoised: bool = False) -> VPPrior:
    """An ADM UNet (:func:`build_adm`; random weights serve for timing) as a :class:`VPPrior`:
    ε-prediction, guided-diffusion's linear β from 1e-4 to 0.02 over 1000 steps, learned σ dropped."""
    unet.eval().requires_grad_(False)
    abar = sampling.ddpm_alphas_cumprod(1000, 1e-4, 0.02)
    x_shape = (3, image_size, image_size) if image_size is not None else None
    prior = VPPrior(_ADMCall(unet), abar, prediction="epsilon", x_shape=x_shape, learn_sigma=True,
                    clip_denoised=clip_denoised)
    if x_shape is None:
        prior.size_multiple = 32
    return prior
