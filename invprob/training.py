"""Train denoising priors: EDM (Karras et al. 2022) or rectified flow, with EMA and exact resume.

``invprob train data=mnist out=runs/mnist`` (the Hydra app :mod:`invprob.app.train`, whose fields
are those of :class:`TrainConfig`; multirun sweeps work) or :func:`train` from Python. Every random draw of step
``k`` (batch indices, crops, flips, noise levels, noise) comes from a generator seeded with
``(seed, k)``, so a run interrupted and resumed from its last checkpoint continues exactly
as if it had never stopped; the checkpoint holds the model, the EMA, the optimiser and the
step. The network is a diffusers ``UNet2DModel`` (fully convolutional: a prior trained on
patches runs on images of any size that the down-sampling divides).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .datasets import load_images
from .priors.shipped import load_autoencoder
from .streams import mix
from .sampling import edm_preconditioning, euler_ode, karras_sigmas

__all__ = ["TrainConfig", "train", "build_unet", "build_autoencoder", "edm_loss", "flow_loss", "autoencoder_loss",
           "training_batch", "export_config", "export_prior", "sample_unconditional"]


@dataclass
class TrainConfig:
    """Training settings. ``objective``: ``'edm'`` (denoiser, EDM preconditioning and loss),
    ``'flow'`` (rectified-flow velocity), ``'autoencoder'`` (a diffusers ``AutoencoderKL``: L1
    reconstruction plus ``kl_weight`` × KL, LDM's ratio of the two; no perceptual or adversarial
    term) or ``'latent-edm'`` (EDM on the latents of the ``autoencoder`` run, scaled to standard
    deviation σ_data; a latent diffusion prior). Defaults: EDM's σ_data = 0.5, P_mean = −1.2,
    P_std = 1.2 (Karras et al. 2022, Table 1); Adam lr 2e-4; EMA decay 0.999; ``kl_weight`` 1e-6
    (LDM ``configs/autoencoder/autoencoder_kl_*.yaml``, CompVis/latent-diffusion).

    ``data``: see :func:`load_images`; ``resize`` resizes whole images (antialiased bicubic) before
    the random ``image_size`` crops; ``flips``: random left-right flips per sample; ``device``:
    where to train (``'cuda'`` on a GPU); ``amp``: bf16 autocast for the network (GPU).
    ``max_minutes`` stops early (with a checkpoint) once exceeded.

    ``compile``: run the training steps through ``torch.compile`` (on a GPU, so that a small
    network is not bound by kernel launches): the same batches, noise and checkpoints; the
    weights agree with an eager run's up to the reordering of floating-point operations.
    ``lr_warmup``: the rate rises linearly to ``lr`` over the first ``lr_warmup`` steps.
    ``init_from``: a fresh run (no checkpoint in ``out``) starts its network and EMA from the
    weights of an exported prior (:func:`export_prior`) of the same architecture, with a new
    optimiser: how a run continues on another machine when its full
    checkpoint (weights, EMA and Adam moments, 16 bytes per parameter) cannot travel. It is not
    an exact resume (the optimiser's moments and the EMA's history restart); ``config.json``
    records the source and its sha256."""

    data: str = "mnist"  # mnist | train400 | brain-mri | a .npy file | an image folder
    out: str = "runs/mnist"  # re-running with the same `out` resumes from its last checkpoint
    objective: str = "edm"  # edm | flow (rectified flow) | autoencoder | latent-edm
    image_size: int = 32  # training crop size
    channels: int = 1
    num_steps: int = 4000
    batch_size: int = 64
    lr: float = 2e-4  # Adam
    lr_warmup: int = 0  # steps of linear warm-up from lr / lr_warmup to lr (a function of the step: resumes exactly)
    ema_decay: float = 0.999
    checkpoint_every: int = 500
    seed: int = 0
    sigma_data: float = 0.5  # EDM (Karras et al. 2022, Table 1)
    p_mean: float = -1.2
    p_std: float = 1.2
    block_out_channels: tuple[int, ...] = (32, 64, 64)
    layers_per_block: int = 1
    holdout: int = 500  # the last images, kept apart for evaluation
    resize: int | None = None  # resize whole images first (antialiased)
    flips: bool = False
    max_minutes: float | None = None  # stop (with a checkpoint) after this long
    device: str = "cpu"  # cuda on a GPU
    amp: bool = False  # bf16 autocast (GPU)
    quiet: bool = False  # no progress bar
    latent_channels: int = 4  # autoencoder: channels of the latents
    kl_weight: float = 1e-6  # autoencoder: KL weight against the pixel-summed L1 (LDM's kl_weight)
    autoencoder: str | None = None  # latent-edm: the folder of a trained `objective=autoencoder` run
    compile: bool = False  # torch.compile the training step's network (GPU)
    init_from: str | None = None  # a fresh run starts from this exported prior's weights
    extra: dict = field(default_factory=dict)


def build_unet(config: TrainConfig):
    from diffusers import UNet2DModel

    n = len(config.block_out_channels)
    return UNet2DModel(sample_size=config.image_size, in_channels=config.channels, out_channels=config.channels,
                       block_out_channels=tuple(config.block_out_channels), layers_per_block=config.layers_per_block,
                       down_block_types=("DownBlock2D",) * n, up_block_types=("UpBlock2D",) * n,
                       norm_num_groups=8)


def build_autoencoder(config: TrainConfig):
    """A diffusers ``AutoencoderKL`` with ``block_out_channels`` (down-sampling by
    ``2^(len − 1)``), ``latent_channels`` and ``layers_per_block``."""
    from diffusers import AutoencoderKL

    n = len(config.block_out_channels)
    return AutoencoderKL(in_channels=config.channels, out_channels=config.channels,
                         latent_channels=config.latent_channels, block_out_channels=tuple(config.block_out_channels),
                         layers_per_block=config.layers_per_block, down_block_types=("DownEncoderBlock2D",) * n,
                         up_block_types=("UpDecoderBlock2D",) * n, norm_num_groups=8, sample_size=config.image_size)


def autoencoder_loss(ae, x0: Tensor, gen: torch.Generator, config: TrainConfig) -> Tensor:
    """``mean |x0 − D(z)| + kl_weight · KL(q(z|x0) ‖ N(0, I)) / (pixels per image)``, ``z`` drawn
    from the encoder's Gaussian: LDM's reconstruction and KL terms (its L1 summed over pixels,
    KL weight 1e-6) divided by the pixel count."""
    with torch.autocast(x0.device.type, dtype=torch.bfloat16, enabled=config.amp):
        posterior = ae.encode(x0).latent_dist
        mean, logvar = posterior.mean.float(), posterior.logvar.float()
        z = mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=gen, device=x0.device)
        recon = ae.decode(z).sample.float()
    kl = 0.5 * (mean**2 + logvar.exp() - 1 - logvar).flatten(1).sum(1).mean()
    return (recon - x0).abs().mean() + config.kl_weight * kl / x0[0].numel()


def edm_loss(unet, x0: Tensor, gen: torch.Generator, config: TrainConfig) -> Tensor:
    """EDM loss: ``λ(σ) ‖D(x0 + σn, σ) − x0‖²``, ``ln σ ~ N(P_mean, P_std²)``, ``λ = (σ²+σd²)/(σσd)²``."""
    B = x0.shape[0]
    sigma = (config.p_mean + config.p_std * torch.randn(B, generator=gen, device=x0.device)).exp()
    noise = torch.randn(x0.shape, generator=gen, device=x0.device)
    s = sigma.reshape(-1, 1, 1, 1)
    sd = config.sigma_data
    x = x0 + s * noise
    c_skip, c_out, c_in, c_noise = edm_preconditioning(s, sd)
    with torch.autocast(x0.device.type, dtype=torch.bfloat16, enabled=config.amp):
        out = unet(c_in * x, c_noise.reshape(-1)).sample
    denoised = c_skip * x + c_out * out.float()
    weight = (s**2 + sd**2) / (s * sd) ** 2
    return (weight * (denoised - x0) ** 2).mean()


def flow_loss(unet, x0: Tensor, gen: torch.Generator, config: TrainConfig) -> Tensor:
    """Rectified flow: ``x_t = (1−t) x0 + t ε``, regress ``v = ε − x0`` with ``t`` logit-normal
    (Esser et al. 2024); the network sees ``1000 t``."""
    B = x0.shape[0]
    t = torch.sigmoid(torch.randn(B, generator=gen, device=x0.device)).clamp(1e-4, 1 - 1e-4)
    noise = torch.randn(x0.shape, generator=gen, device=x0.device)
    tb = t.reshape(-1, 1, 1, 1)
    x_t = (1 - tb) * x0 + tb * noise
    with torch.autocast(x0.device.type, dtype=torch.bfloat16, enabled=config.amp):
        v = unet(x_t, t * 1000).sample
    return ((v.float() - (noise - x0)) ** 2).mean()


def training_batch(train_x: Tensor, step: int, config: TrainConfig) -> tuple[Tensor, torch.Generator]:
    dev = train_x.device
    gen = torch.Generator(device=dev).manual_seed(mix(config.seed, step))
    B, s = config.batch_size, config.image_size
    idx = torch.randint(0, train_x.shape[0], (B,), generator=gen, device=dev)
    x = train_x[idx]
    H, W = x.shape[-2:]
    if H > s or W > s:  # an independent random crop per sample
        i = torch.randint(0, H - s + 1, (B, 1, 1), generator=gen, device=dev)
        j = torch.randint(0, W - s + 1, (B, 1, 1), generator=gen, device=dev)
        r = torch.arange(s, device=dev)
        x = x[torch.arange(B, device=dev)[:, None, None], :, i + r[:, None], j + r[None, :]]  # (B, s, s, C)
        x = x.permute(0, 3, 1, 2)
    if config.flips:  # per-sample left-right flips
        flip = torch.rand(B, generator=gen, device=dev) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x.contiguous(), gen


def _save(out: Path, unet, ema, optimizer, step: int, losses: list[float], config: TrainConfig,
          info: dict | None = None) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in unet.state_dict().items()}, str(out / "model.safetensors"))
    save_file({k: v.detach().cpu().contiguous() for k, v in ema.module.state_dict().items()},
              str(out / "ema.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "step": step, "ema_n_averaged": ema.n_averaged,
                "losses": torch.tensor(losses)}, out / "trainer.pt")
    (out / "config.json").write_text(json.dumps(export_config(config, unet, info), indent=2))


def _plain(config) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(config).items() if not k.startswith("_")}


def export_config(config: TrainConfig, unet, info: dict | None = None) -> dict:
    """The ``config.json`` of a run: objective, shapes, the network's config (``unet``, or
    ``autoencoder`` for an autoencoder run), the training settings, and ``info`` (a latent run:
    its autoencoder's config, scaling factor and checksum; ``x_shape`` the latents')."""
    # Trained on crops of resized images: the prior is meant for the whole resized image.
    side = config.resize if config.resize and config.resize > config.image_size else config.image_size
    out = {"objective": config.objective, "sigma_data": config.sigma_data, "data_range": [-1.0, 1.0],
           "x_shape": [config.channels, side, side],
           "autoencoder" if config.objective == "autoencoder" else "unet": _plain(unet.config),
           "training": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()}}
    if info:
        out.update(info)
    return out


def train(config: TrainConfig, progress: bool = True) -> Path:
    """Train (or resume from ``config.out``) and return the output folder."""
    from safetensors.torch import load_file
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
    from tqdm.auto import tqdm

    if config.objective not in ("edm", "flow", "autoencoder", "latent-edm"):
        raise ValueError(f"`objective` must be 'edm', 'flow', 'autoencoder' or 'latent-edm', got {config.objective!r}.")
    if (config.objective == "latent-edm") != (config.autoencoder is not None):
        raise ValueError("`autoencoder` (the folder of an objective=autoencoder run) is what objective=latent-edm "
                         "models the latents of; give both or neither.")
    out = Path(config.out)
    torch.manual_seed(config.seed)  # network initialisation only
    for name in ("image_size", "channels", "num_steps", "batch_size", "checkpoint_every"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    for name in ("holdout", "lr_warmup"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"`{name}` must be a non-negative integer, got {value!r}.")
    train_x, _ = load_images(config.data, config.image_size, config.holdout, config.resize, progress=progress)
    if len(train_x) == 0:
        raise ValueError(f"`data` {config.data!r} leaves no training image after keeping `holdout`={config.holdout} "
                         f"apart; lower `holdout` or give more images.")
    if min(train_x.shape[-2:]) < config.image_size:
        raise ValueError(f"`image_size` {config.image_size} is larger than the training images "
                         f"{tuple(train_x.shape[-2:])}; lower it or set `resize`.")
    if train_x.shape[1] != config.channels:
        raise ValueError(f"`channels` is {config.channels} but the data has {train_x.shape[1]} channels.")
    device = torch.device(config.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    train_x = train_x.to(device)
    info, loss_fn = None, {"edm": edm_loss, "flow": flow_loss, "autoencoder": autoencoder_loss}.get(config.objective)
    if config.objective == "autoencoder":
        unet = build_autoencoder(config).to(device)
    elif config.objective == "latent-edm":
        unet, info, loss_fn = _latent_setup(config, train_x, out, device)
    else:
        unet = build_unet(config).to(device)
    resuming = (out / "trainer.pt").is_file()
    if config.init_from is not None and not resuming:
        info = {**(info or {}), "init_from": _init_from(unet, config)}
    ema = AveragedModel(unet, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay))
    optimizer = torch.optim.Adam(unet.parameters(), lr=config.lr)
    step, losses = 0, []
    if resuming:  # resume, nothing lost
        try:
            unet.load_state_dict(load_file(str(out / "model.safetensors"), device=str(device)))
        except RuntimeError as err:
            raise ValueError(f"`out` {out} holds a run with another architecture; resume it with its own "
                             f"settings (see {out / 'config.json'}) or choose a new `out`. ({str(err)[:200]})") from err
        ema.module.load_state_dict(load_file(str(out / "ema.safetensors"), device=str(device)))
        state = torch.load(out / "trainer.pt", weights_only=True, map_location=device)
        optimizer.load_state_dict(state["optimizer"])
        ema.n_averaged.copy_(state["ema_n_averaged"])
        step, losses = int(state["step"]), state["losses"].tolist()
        stored = json.loads((out / "config.json").read_text())
        if "init_from" in stored:  # keep the record of where the run started
            info = {**(info or {}), "init_from": stored["init_from"]}
    network = torch.compile(unet) if config.compile else unet  # shares unet's parameters
    start = time.perf_counter()
    bar = tqdm(range(step, config.num_steps), initial=step, total=config.num_steps, disable=not progress,
               desc=f"train {config.objective}")
    unet.train()
    for step in bar:
        for group in optimizer.param_groups:  # the configured rate (a resumed optimiser keeps none of its own)
            group["lr"] = config.lr * (min(1.0, (step + 1) / config.lr_warmup) if config.lr_warmup else 1.0)
        x0, gen = training_batch(train_x, step, config)
        loss = loss_fn(network, x0, gen, config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        ema.update_parameters(unet)
        losses.append(loss.item())
        if step % 10 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        done = step + 1
        out_of_time = config.max_minutes is not None and time.perf_counter() - start > 60 * config.max_minutes
        if done % config.checkpoint_every == 0 or done == config.num_steps or out_of_time:
            _save(out, unet, ema, optimizer, done, losses, config, info)
        if out_of_time:
            break
    _plots(out, losses, ema.module, config, train_x)
    return out


def _init_from(unet, config: TrainConfig) -> dict:
    """Load the exported prior in folder ``config.init_from`` into ``unet`` (its weights are checked
    against the sha256 its ``config.json`` records, and cast to ``unet``'s dtype; its objective and
    σ_data must be the run's); returns the record kept in the new run's ``config.json``."""
    from .priors.loading import load_state_dict

    source = config.init_from
    folder = Path(source)
    config_file = folder / "config.json"
    if not config_file.is_file() or not (folder / "model.safetensors").is_file():
        raise ValueError(f"`init_from` {source!r} is not an exported prior (expected config.json and "
                         f"model.safetensors there; make one with invprob.training.export_prior).")
    exported = json.loads(config_file.read_text())
    for key in ("objective", "sigma_data"):
        if exported.get(key) != getattr(config, key):
            raise ValueError(f"`init_from` {source!r} was trained with {key}={exported.get(key)!r}, this run has "
                             f"{key}={getattr(config, key)!r}; give the same {key} or another `init_from`.")
    state = load_state_dict(folder / "model.safetensors", exported.get("sha256"))
    try:
        unet.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"`init_from` {source!r} holds another architecture than this run's settings (see its "
                         f"config.json); give the same block_out_channels, layers_per_block and channels. "
                         f"({str(err)[:200]})") from err
    return {"folder": str(folder), "sha256": exported.get("sha256"),
            "steps_done": exported.get("training", {}).get("steps_done")}


def _latent_setup(config: TrainConfig, train_x: Tensor, out: Path, device: torch.device):
    """A latent run's network, ``config.json`` additions and loss: the autoencoder of
    ``config.autoencoder`` (copied into ``out`` as ``autoencoder.safetensors``), the scaling that
    gives the training images' latents standard deviation σ_data, and the EDM loss on them. A
    resumed run keeps its own copy and scaling, and refuses an autoencoder that has changed."""
    import dataclasses
    import shutil

    from .priors.loading import sha256

    source = load_autoencoder(config.autoencoder, device)
    resumed = (out / "trainer.pt").is_file()
    if resumed:
        stored = json.loads((out / "config.json").read_text())["autoencoder"]
        if sha256(source[2]) != stored["sha256"]:
            raise ValueError(f"the autoencoder {config.autoencoder} has changed since {out} started (its weights' "
                             f"sha256 differs from the copy in {out}); resume with the same autoencoder or "
                             f"choose a new `out`.")
        ae, ae_config, _ = load_autoencoder(out, device)
        scale = stored["scaling_factor"]
    else:
        ae, ae_config, weights = source
        with torch.no_grad():
            latents = torch.cat([ae.encode(x).latent_dist.mean for x in train_x.split(16)])
        scale = config.sigma_data / float(latents.std())
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(weights, out / "autoencoder.safetensors")
    factor = 2 ** (len(ae_config["block_out_channels"]) - 1)
    if config.image_size % factor or (config.resize or 0) % factor:
        raise ValueError(f"`image_size` and `resize` must be multiples of the autoencoder's down-sampling {factor}.")
    side = config.resize if config.resize and config.resize > config.image_size else config.image_size
    channels = ae_config["latent_channels"]
    info = {"x_shape": [channels, side // factor, side // factor], "image_shape": [config.channels, side, side],
            "data_range": None, "image_range": [-1.0, 1.0],
            "autoencoder": {"config": ae_config, "scaling_factor": scale,
                            "sha256": sha256(out / "autoencoder.safetensors")}}
    net = build_unet(dataclasses.replace(config, channels=channels, image_size=config.image_size // factor))

    def latent_edm_loss(unet, x0: Tensor, gen: torch.Generator, cfg: TrainConfig) -> Tensor:
        with torch.no_grad():
            z = scale * ae.encode(x0).latent_dist.mean
        return edm_loss(unet, z, gen, cfg)

    return net.to(device), info, latent_edm_loss


def _plots(out: Path, losses: list[float], unet, config: TrainConfig, train_x: Tensor | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    smooth = np.convolve(losses, np.ones(50) / 50, mode="valid") if len(losses) > 50 else losses
    ax.plot(smooth)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (50-step mean)")
    ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=100)
    plt.close(fig)
    from .io import save_image

    if config.objective == "autoencoder":  # training crops (top) and their reconstructions (bottom)
        x, _ = training_batch(train_x, 0, config)
        x = x[:8]
        with torch.no_grad():
            recon = unet.eval().decode(unet.encode(x).latent_dist.mean).sample.clamp(-1, 1)
        save_image(_grid(torch.cat([x, recon]).cpu(), 2), out / "samples.png")
        return
    from .priors.shipped import prior_from_network

    info = json.loads((out / "config.json").read_text())
    autoencoder = load_autoencoder(out, next(unet.parameters()).device)[0] if config.objective == "latent-edm" else None
    prior = prior_from_network(unet.eval(), info, autoencoder)
    samples = sample_unconditional(prior, 16, seed=0, device=next(unet.parameters()).device)
    if autoencoder is not None:
        with torch.no_grad():
            samples = prior.decode(samples.to(next(unet.parameters()).device)).clamp(-1, 1).cpu()
    save_image(_grid(samples, 4), out / "samples.png")


def _grid(images: Tensor, rows: int) -> Tensor:
    """``(rows·n, C, H, W)`` images as one ``(C, rows·H, n·W)`` image, row by row."""
    c, h, w = images.shape[1:]
    n = len(images) // rows
    return images.reshape(rows, n, c, h, w).permute(2, 0, 3, 1, 4).reshape(c, rows * h, n * w)


@torch.no_grad()
def sample_unconditional(prior, n: int, seed: int = 0, num_steps: int = 32, device=None,
                         x_shape: tuple[int, ...] | None = None) -> Tensor:
    """``n`` prior samples (on the CPU) by the EDM Euler probability-flow ODE (σ 80 → 0.002,
    poly-7, then 0), computed on ``device`` (the prior's network must live there); ``x_shape``
    gives the image shape of a prior that accepts any size."""
    from . import streams

    sigmas = karras_sigmas(num_steps, 0.002, 80.0, append_zero=True).tolist()
    x = 80.0 * streams.randn(torch.arange(n) + mix(seed), 0, prior.x_shape or x_shape)
    return euler_ode(prior, x.to(device=device or "cpu", dtype=prior.dtype), sigmas).cpu()


def export_prior(run: str | Path, target: str | Path, dtype: str | None = None) -> Path:
    """Copy a run's EMA weights to ``target/model.safetensors`` with a ``config.json`` that records
    their sha256 (checked at load), plus the loss curve and sample grid.

    ``dtype``: ``None`` keeps the training precision (float32); ``'bfloat16'`` or ``'float16'``
    stores the weights at half the size (they load into the float32 network, cast back; the
    config records ``storage_dtype``)."""
    import shutil

    from safetensors.torch import load_file, save_file

    from .priors.loading import sha256

    if dtype not in (None, "float32", "bfloat16", "float16"):
        raise ValueError(f"`dtype` must be None, 'float32', 'bfloat16' or 'float16', got {dtype!r}.")
    run, target = Path(run), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    if dtype in (None, "float32"):
        shutil.copyfile(run / "ema.safetensors", target / "model.safetensors")
    else:
        state = load_file(str(run / "ema.safetensors"))
        save_file({k: (v.to(getattr(torch, dtype)) if v.is_floating_point() else v).contiguous()
                   for k, v in state.items()}, str(target / "model.safetensors"))
    config = json.loads((run / "config.json").read_text())
    if dtype not in (None, "float32"):
        config["storage_dtype"] = dtype
    config["sha256"] = sha256(target / "model.safetensors")
    state = torch.load(run / "trainer.pt", weights_only=True, map_location="cpu")
    config["training"]["steps_done"] = int(state["step"])
    config["training"]["final_loss_mean_last_100"] = float(state["losses"][-100:].mean())
    (target / "config.json").write_text(json.dumps(config, indent=2))
    if config.get("objective") == "latent-edm":
        shutil.copyfile(run / "autoencoder.safetensors", target / "autoencoder.safetensors")
        config["autoencoder"]["sha256"] = sha256(target / "autoencoder.safetensors")
        (target / "config.json").write_text(json.dumps(config, indent=2))
    for extra in ("loss.png", "samples.png"):
        if (run / extra).is_file():
            shutil.copyfile(run / extra, target / extra)
    return target
