"""Latent diffusion priors: Stable Diffusion 1.5 / 2.1 and the LDM VQ-f4 models (diffusers).

A :class:`LatentPrior` denoises in the latent space ``z`` (its ``x_shape`` is the latent
shape) and carries the autoencoder: ``encode(x) -> z`` and ``decode(z) -> x`` for images in
[-1, 1], with the model's ``scaling_factor`` applied (``z = s · E(x)``, as diffusers'
pipelines do). Latent posterior samplers (PSLD, ReSample, STSL) use ``decode`` inside the
likelihood; any σ-space solver runs on the latent denoiser itself.

Everything loads from local diffusers directories with ``local_files_only=True`` and
``use_safetensors=True`` (no pickled code):

* :func:`load_stable_diffusion` — ``vae/`` (AutoencoderKL), ``unet/`` (UNet2DConditionModel),
  ``scheduler/`` (ε- or v-prediction: SD 2.1 is v-prediction), ``text_encoder/`` +
  ``tokenizer/`` (CLIP, via ``transformers``) for the prompt; the empty prompt by default
  (unconditional prior, as PSLD/ReSample use it) or precomputed ``prompt_embeds``.
* :func:`load_ldm_vq` — ``vqvae/`` (VQModel), ``unet/`` (UNet2DModel), ``scheduler/``: e.g. the
  LDM FFHQ / CelebA-HQ 256 VQ-f4 models (Rombach et al. 2022) in diffusers format.
"""

from __future__ import annotations

import json
from pathlib import Path
import torch
from torch import Tensor, nn

from .adapters import VPPrior
from .base import Prior
from ..errors import CheckpointError, UnsupportedProblemError

__all__ = ["LatentPrior", "load_stable_diffusion", "load_ldm_vq"]


class LatentPrior(Prior):
    """A prior on latents ``z (B, *latent_shape)`` with the autoencoder that maps them to images.

    Its denoiser is the latent one (any σ-space solver runs on it in latent space); a problem
    measured in image space becomes a latent one through :meth:`latent_problem`
    (``y = A(D(z)) + n``, :class:`~invprob.operators.LatentOperator`), which is what the latent
    solvers do.

    Args:
        latent: the σ-space prior of ``z`` (e.g. a :class:`VPPrior` around the latent UNet).
        autoencoder: a diffusers ``AutoencoderKL`` (``kind='kl'``: ``E(x)`` = the posterior mean),
            a ``VQModel`` (``kind='vq'``: ``E(x)`` = the pre-quantisation latents), or any module
            whose ``encode(x)`` and ``decode(z)`` return tensors (``kind='plain'``: your own
            autoencoder, e.g. a PCA basis or a linear decoder).
        kind: ``'kl'``, ``'vq'`` or ``'plain'``.
        scaling_factor: ``s`` (SD 1.5/2.1: 0.18215; VQ-f4 LDMs: 1.0); ``z = s · E(x)``.
        image_shape: ``(C, H, W)`` of the images.
        image_range: the decoder's image value range (``(-1, 1)`` for SD and the LDMs; ``None``:
            unbounded).
        latent_shape: ``(c, h, w)`` of the latents, where ``latent`` fixes none (a fully
            convolutional network); default: ``latent.x_shape``.
    """

    def __init__(self, latent: Prior, autoencoder: nn.Module, kind: str, scaling_factor: float,
                 image_shape: tuple[int, ...], latent_shape: tuple[int, ...] | None = None,
                 image_range: tuple[float, float] | None = (-1.0, 1.0)) -> None:
        super().__init__()
        if kind not in ("kl", "vq", "plain"):
            raise ValueError(f"`kind` must be 'kl', 'vq' or 'plain', got {kind!r}.")
        if kind == "plain" and not (callable(getattr(autoencoder, "encode", None))
                                    and callable(getattr(autoencoder, "decode", None))):
            raise TypeError(f"a 'plain' autoencoder needs `encode(x)` and `decode(z)` methods returning tensors; "
                            f"{type(autoencoder).__name__} lacks one.")
        self.latent, self.autoencoder, self.kind = latent, autoencoder, kind
        self.scaling_factor = float(scaling_factor)
        self.image_shape = tuple(image_shape)
        self.x_shape = tuple(latent_shape) if latent_shape is not None else latent.x_shape
        if self.x_shape is None:
            raise ValueError("the latent prior fixes no latent shape; give `latent_shape=(c, h, w)`.")
        self.data_range = None  # latents are unbounded
        self.image_range = None if image_range is None else (float(image_range[0]), float(image_range[1]))

    def _denoise(self, z: Tensor, sigma: Tensor) -> Tensor:
        return self.latent.denoise(z, sigma)

    def _ae_dtype(self, like: Tensor) -> torch.dtype:
        return getattr(self.autoencoder, "dtype", None) or next(
            (p.dtype for p in self.autoencoder.parameters()), next((b.dtype for b in self.autoencoder.buffers()),
                                                                   like.dtype))

    def encode(self, x: Tensor) -> Tensor:
        """Images ``(B, *image_shape)`` in [-1, 1] → latents ``(B, *x_shape)``."""
        ae = self.autoencoder
        out = ae.encode(x.to(self._ae_dtype(x)))
        z = out if self.kind == "plain" else out.latent_dist.mean if self.kind == "kl" else out.latents
        return z.to(x.dtype) * self.scaling_factor

    def decode(self, z: Tensor) -> Tensor:
        """Latents ``(B, *x_shape)`` → images ``(B, *image_shape)`` in (about) [-1, 1]."""
        out = self.autoencoder.decode((z / self.scaling_factor).to(self._ae_dtype(z)))
        return (out if self.kind == "plain" else out.sample).to(z.dtype)

    def latent_problem(self, problem):
        """The latent problem of an image-space ``problem``: the same ``y`` and noise, measured by
        ``z ↦ A(D(z))`` (:class:`~invprob.operators.LatentOperator`)."""
        from ..operators.latent import LatentOperator
        from ..problem import Problem

        op = problem.operator
        if isinstance(op, LatentOperator):
            return problem
        if op.x_shape is not None and tuple(op.x_shape) != self.image_shape:
            raise UnsupportedProblemError(f"the operator acts on images {tuple(op.x_shape)} but this latent prior "
                                          f"decodes to {self.image_shape}; build the operator for the decoder's "
                                          f"image shape.")
        return Problem(LatentOperator(op, self.decode, self.x_shape, self.encode), problem.measurement, problem.noise)


class _CondUNetCall(nn.Module):
    """``net(z, t) -> unet(z, t, encoder_hidden_states=prompt).sample`` with the prompt broadcast."""

    def __init__(self, unet: nn.Module, prompt_embeds: Tensor) -> None:
        super().__init__()
        self.unet = unet
        self.register_buffer("prompt_embeds", prompt_embeds)

    def forward(self, z: Tensor, t: Tensor) -> Tensor:
        dtype = self.unet.dtype
        emb = self.prompt_embeds.to(dtype).expand(z.shape[0], *self.prompt_embeds.shape[1:])
        return self.unet(z.to(dtype), t, encoder_hidden_states=emb).sample.to(z.dtype)


def _subdir(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_dir():
        raise CheckpointError(f"{folder} has no `{name}/` folder; expected a diffusers pipeline directory "
                              f"(vae/ or vqvae/, unet/, scheduler/ ...).")
    return path


def _load(cls, folder: Path, name: str, dtype: torch.dtype):
    path = _subdir(folder, name)
    try:
        return cls.from_pretrained(str(path), local_files_only=True, use_safetensors=True,
                                   torch_dtype=dtype).eval().requires_grad_(False)
    except Exception as err:
        raise CheckpointError(f"cannot load {cls.__name__} from {path} (safetensors weights needed): {err}") from err


def _load_pipeline(folder: str | Path, what: str, autoencoder_cls, autoencoder_dir: str, unet_cls,
                   dtype: torch.dtype):
    """``(autoencoder, unet, scheduler)`` of a local latent-diffusion directory."""
    from .loading import ddpm_schedule

    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{what} directory not found: {folder}")
    autoencoder = _load(autoencoder_cls, folder, autoencoder_dir, dtype)
    unet = _load(unet_cls, folder, "unet", dtype)
    file = _subdir(folder, "scheduler") / "scheduler_config.json"
    if not file.is_file():
        raise CheckpointError(f"missing {file}: the noise schedule is needed to interpret the UNet.")
    return autoencoder, unet, ddpm_schedule(json.loads(file.read_text()))


def encode_prompt(folder: str | Path, prompt: str = "") -> Tensor:
    """CLIP text embeddings ``(1, 77, D)`` of ``prompt`` from ``text_encoder/`` + ``tokenizer/``."""
    from transformers import CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    tokenizer = CLIPTokenizer.from_pretrained(str(_subdir(folder, "tokenizer")), local_files_only=True)
    encoder = CLIPTextModel.from_pretrained(str(_subdir(folder, "text_encoder")), local_files_only=True,
                                            use_safetensors=True).eval()
    length = min(tokenizer.model_max_length, encoder.config.max_position_embeddings)
    tokens = tokenizer([prompt], padding="max_length", max_length=length, truncation=True,
                       return_tensors="pt")
    with torch.no_grad():
        return encoder(tokens.input_ids)[0]


def load_stable_diffusion(folder: str | Path, prompt: str = "", prompt_embeds: Tensor | None = None,
                          resolution: int = 512, dtype: torch.dtype = torch.float32) -> LatentPrior:
    """Stable Diffusion 1.5 / 2.1 from a local diffusers directory as a :class:`LatentPrior`.

    ``prompt`` is encoded once by the pipeline's CLIP text encoder (the empty prompt gives the
    unconditional prior); ``prompt_embeds (1, 77, D)`` skips the text encoder. Latents are
    ``(4, resolution/8, resolution/8)``; ``x0`` is recovered from the scheduler's
    ``prediction_type`` (SD 1.5: ε, SD 2.1: v).
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel

    vae, unet, scheduler = _load_pipeline(folder, "Stable Diffusion", AutoencoderKL, "vae", UNet2DConditionModel,
                                          dtype)
    if prompt_embeds is None:
        prompt_embeds = encode_prompt(folder, prompt)
    if prompt_embeds.shape[-1] != unet.config.cross_attention_dim:
        raise CheckpointError(f"prompt embeddings have width {prompt_embeds.shape[-1]} but the UNet expects "
                              f"{unet.config.cross_attention_dim} (text encoder of another SD version?).")
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    if resolution % factor:
        raise ValueError(f"`resolution` must be divisible by {factor}, got {resolution}.")
    latent_shape = (unet.config.in_channels, resolution // factor, resolution // factor)
    latent = VPPrior(_CondUNetCall(unet, prompt_embeds.float()), scheduler.alphas_cumprod,
                     prediction=scheduler.config.prediction_type, x_shape=latent_shape, data_range=None)
    scaling = getattr(vae.config, "scaling_factor", 0.18215)
    return LatentPrior(latent, vae, "kl", scaling, (vae.config.in_channels, resolution, resolution))


def load_ldm_vq(folder: str | Path, dtype: torch.dtype = torch.float32) -> LatentPrior:
    """An LDM with a VQ autoencoder (e.g. VQ-f4 FFHQ/CelebA-HQ 256) from a local diffusers
    directory (``vqvae/``, ``unet/``, ``scheduler/``). ``decode`` quantises, as LDM does."""
    from diffusers import UNet2DModel, VQModel

    from .loading import UNetCall

    vq, unet, scheduler = _load_pipeline(folder, "LDM", VQModel, "vqvae", UNet2DModel, dtype)
    size = unet.config.sample_size
    latent_shape = (unet.config.in_channels, size, size)
    latent = VPPrior(UNetCall(unet), scheduler.alphas_cumprod, prediction=scheduler.config.prediction_type,
                     x_shape=latent_shape, data_range=None)
    factor = 2 ** (len(vq.config.block_out_channels) - 1)
    scaling = 1.0  # diffusers' LDMPipeline feeds the VQ latents unscaled (the config's default 0.18215 is unused)
    return LatentPrior(latent, vq, "vq", scaling, (vq.config.in_channels, size * factor, size * factor))
