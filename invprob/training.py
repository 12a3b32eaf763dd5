"""Train denoising priors: EDM (Karras et al. 2022) or rectified flow, with EMA and exact resume.

``invprob train data=mnist out=runs/mnist`` (Hydra, :func:`hydra_main`; multirun sweeps work) or
``python -m invprob.training --data mnist --out runs/mnist`` (argparse, :func:`main`). Every random draw of step
``k`` (batch indices, crops, flips, noise levels, noise) comes from a generator seeded with
``(seed, k)``, so a run interrupted and resumed from its last checkpoint continues exactly
as if it had never stopped; the checkpoint holds the model, the EMA, the optimiser and the
step. The network is a diffusers ``UNet2DModel`` (fully convolutional: a prior trained on
patches runs on images of any size that the down-sampling divides).
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ._rng import mix

__all__ = ["TrainConfig", "train", "load_images", "build_unet", "edm_loss", "flow_loss", "main"]


@dataclass
class TrainConfig:
    """Training settings. ``objective``: ``'edm'`` (denoiser, EDM preconditioning and loss) or
    ``'flow'`` (rectified-flow velocity). Defaults: EDM's σ_data = 0.5, P_mean = −1.2,
    P_std = 1.2 (Karras et al. 2022, Table 1); Adam lr 2e-4; EMA decay 0.999.

    ``data``: see :func:`load_images`; ``resize`` resizes whole images (antialiased bicubic) before
    the random ``image_size`` crops; ``flips``: random left-right flips per sample; ``device``:
    where to train (``'cuda'`` on a GPU); ``amp``: bf16 autocast for the network (GPU).
    ``max_minutes`` stops early (with a checkpoint) once exceeded."""

    data: str = "mnist"
    out: str = "runs/mnist"
    objective: str = "edm"
    image_size: int = 32
    channels: int = 1
    num_steps: int = 4000
    batch_size: int = 64
    lr: float = 2e-4
    ema_decay: float = 0.999
    checkpoint_every: int = 500
    seed: int = 0
    sigma_data: float = 0.5
    p_mean: float = -1.2
    p_std: float = 1.2
    block_out_channels: tuple[int, ...] = (32, 64, 64)
    layers_per_block: int = 1
    holdout: int = 500
    resize: int | None = None
    flips: bool = False
    max_minutes: float | None = None
    device: str = "cpu"
    amp: bool = False
    extra: dict = field(default_factory=dict)


BUILTIN = {"train400": "train400", "brain-mri": "mri_brain_images"}  # names → folders of the shared data


def load_images(data: str, image_size: int, holdout: int = 0, resize: int | None = None) -> tuple[Tensor, Tensor]:
    """``(train, held_apart)`` image tensors ``(N, C, H, W)`` in [-1, 1].

    ``data``: ``'mnist'`` (the shared MNIST test images, zero-padded 28 → 32), ``'train400'``
    (the 400 180×180 BSD crops of DnCNN), ``'brain-mri'`` (the 40 brain MR slices, 256×256, in
    file order), a ``.npy`` file ``(N, H, W)`` or ``(N, C, H, W)`` in [0, 1] or uint8, or a
    folder of images (grayscale). ``resize`` resizes each image to ``resize × resize``
    (antialiased bicubic). The last ``holdout`` images are kept apart for evaluation.
    """
    if data in BUILTIN:
        from . import data as shared

        data = str(shared.path(BUILTIN[data]))
    if data == "mnist":
        from . import data as shared

        path = shared.path("mnist/t10k-images-idx3-ubyte.gz")
        with gzip.open(path) as f:
            arr = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
        pad = (image_size - 28) // 2
        x = torch.from_numpy(arr.astype(np.float32) / 255.0)
        x = torch.nn.functional.pad(x, (pad, image_size - 28 - pad) * 2)
    elif data.endswith(".npy"):
        arr = np.load(data, allow_pickle=False)
        x = torch.from_numpy(arr.astype(np.float32) / (255.0 if arr.dtype == np.uint8 else 1.0))
        x = x[:, None] if x.dim() == 3 else x
    else:
        from .io import load_image

        files = sorted(p for p in Path(data).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif"))
        if not files:
            raise FileNotFoundError(f"no images found in {data}")
        x = torch.cat([(load_image(p) + 1) / 2 for p in files])
    if resize is not None:
        x = torch.nn.functional.interpolate(x, size=(resize, resize), mode="bicubic", antialias=True,
                                            align_corners=False).clamp(0, 1)
    x = x * 2 - 1
    return (x[:-holdout], x[-holdout:]) if holdout else (x, x[:0])


def build_unet(config: TrainConfig):
    from diffusers import UNet2DModel

    n = len(config.block_out_channels)
    return UNet2DModel(sample_size=config.image_size, in_channels=config.channels, out_channels=config.channels,
                       block_out_channels=tuple(config.block_out_channels), layers_per_block=config.layers_per_block,
                       down_block_types=("DownBlock2D",) * n, up_block_types=("UpBlock2D",) * n,
                       norm_num_groups=8)


def edm_loss(unet, x0: Tensor, gen: torch.Generator, config: TrainConfig) -> Tensor:
    """EDM loss: ``λ(σ) ‖D(x0 + σn, σ) − x0‖²``, ``ln σ ~ N(P_mean, P_std²)``, ``λ = (σ²+σd²)/(σσd)²``."""
    B = x0.shape[0]
    sigma = (config.p_mean + config.p_std * torch.randn(B, generator=gen, device=x0.device)).exp()
    noise = torch.randn(x0.shape, generator=gen, device=x0.device)
    s = sigma.reshape(-1, 1, 1, 1)
    sd = config.sigma_data
    x = x0 + s * noise
    c_skip, c_out, c_in = sd**2 / (s**2 + sd**2), s * sd / (s**2 + sd**2).sqrt(), 1 / (s**2 + sd**2).sqrt()
    with torch.autocast(x0.device.type, dtype=torch.bfloat16, enabled=config.amp):
        out = unet(c_in * x, sigma.log() / 4).sample
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


def _batch(train_x: Tensor, step: int, config: TrainConfig) -> tuple[Tensor, torch.Generator]:
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


def _save(out: Path, unet, ema, optimizer, step: int, losses: list[float], config: TrainConfig) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in unet.state_dict().items()}, str(out / "model.safetensors"))
    save_file({k: v.detach().cpu().contiguous() for k, v in ema.module.state_dict().items()},
              str(out / "ema.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "step": step, "ema_n_averaged": ema.n_averaged,
                "losses": torch.tensor(losses)}, out / "trainer.pt")
    (out / "config.json").write_text(json.dumps(_export_config(config, unet), indent=2))


def _export_config(config: TrainConfig, unet) -> dict:
    # Trained on crops of resized images: the prior is meant for the whole resized image.
    side = config.resize if config.resize and config.resize > config.image_size else config.image_size
    return {"objective": config.objective, "sigma_data": config.sigma_data, "data_range": [-1.0, 1.0],
            "x_shape": [config.channels, side, side],
            "unet": {k: (list(v) if isinstance(v, tuple) else v) for k, v in unet.config.items()
                     if not k.startswith("_")},
            "training": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()}}


def train(config: TrainConfig, progress: bool = True) -> Path:
    """Train (or resume from ``config.out``) and return the output folder."""
    from safetensors.torch import load_file
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
    from tqdm.auto import tqdm

    if config.objective not in ("edm", "flow"):
        raise ValueError(f"`objective` must be 'edm' or 'flow', got {config.objective!r}.")
    out = Path(config.out)
    torch.manual_seed(config.seed)  # network initialisation only
    train_x, _ = load_images(config.data, config.image_size, config.holdout, config.resize)
    if min(train_x.shape[-2:]) < config.image_size:
        raise ValueError(f"`image_size` {config.image_size} is larger than the training images "
                         f"{tuple(train_x.shape[-2:])}; lower it or set `resize`.")
    if train_x.shape[1] != config.channels:
        raise ValueError(f"`channels` is {config.channels} but the data has {train_x.shape[1]} channels.")
    device = torch.device(config.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    train_x = train_x.to(device)
    unet = build_unet(config).to(device)
    ema = AveragedModel(unet, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay))
    optimizer = torch.optim.Adam(unet.parameters(), lr=config.lr)
    step, losses = 0, []
    if (out / "trainer.pt").is_file():  # resume, nothing lost
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
    loss_fn = edm_loss if config.objective == "edm" else flow_loss
    start = time.perf_counter()
    bar = tqdm(range(step, config.num_steps), initial=step, total=config.num_steps, disable=not progress,
               desc=f"train {config.objective}")
    unet.train()
    for step in bar:
        x0, gen = _batch(train_x, step, config)
        loss = loss_fn(unet, x0, gen, config)
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
            _save(out, unet, ema, optimizer, done, losses, config)
        if out_of_time:
            break
    _plots(out, losses, ema.module, config)
    return out


def _plots(out: Path, losses: list[float], unet, config: TrainConfig) -> None:
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
    from .priors.shipped import prior_from_network

    prior = prior_from_network(unet.eval(), _export_config(config, unet))
    samples = sample_unconditional(prior, 16, seed=0, device=next(unet.parameters()).device)
    grid = samples.reshape(4, 4, config.channels, config.image_size, config.image_size)
    grid = grid.permute(2, 0, 3, 1, 4).reshape(config.channels, 4 * config.image_size, 4 * config.image_size)
    from .io import save_image

    save_image(grid, out / "samples.png")


@torch.no_grad()
def sample_unconditional(prior, n: int, seed: int = 0, num_steps: int = 32, device=None) -> Tensor:
    """``n`` prior samples (on the CPU) by the EDM Euler probability-flow ODE (σ 80 → 0.002,
    poly-7, then 0), computed on ``device`` (the prior's network must live there)."""
    from . import _rng
    from .solvers._common import euler_ode, poly_sigmas

    sigmas = poly_sigmas(80.0, 0.002, num_steps) + [0.0]
    x = 80.0 * _rng.randn(torch.arange(n) + mix(seed), 0, prior.x_shape)
    return euler_ode(prior, x.to(device or "cpu"), sigmas).cpu()


def hydra_main(argv: list[str] | None = None) -> int:
    """``invprob train key=value ...``: the Hydra app (``invprob/conf/train.yaml``)."""
    import sys

    import hydra
    from omegaconf import OmegaConf

    search = Path(__file__).resolve().parent / "conf"

    @hydra.main(config_path=str(search), config_name="train", version_base=None)
    def _app(cfg) -> None:
        args = OmegaConf.to_container(cfg, resolve=True)
        quiet = args.pop("quiet", False)
        args["block_out_channels"] = tuple(args["block_out_channels"])
        out = train(TrainConfig(**args), progress=not quiet)
        print(f"trained: {out} (model.safetensors, ema.safetensors, loss.png, samples.png)")

    saved = sys.argv
    sys.argv = [saved[0]] + list(sys.argv[1:] if argv is None else argv)
    try:
        _app()
    finally:
        sys.argv = saved
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m invprob.training --data ... --out ...`` (argparse, the same fields)."""
    parser = argparse.ArgumentParser(prog="python -m invprob.training", description="Train a denoising prior (EDM or flow).")
    for name, value in asdict(TrainConfig()).items():
        if name == "extra":
            continue
        kind = type(value) if value is not None else (int if name == "resize" else float)
        if isinstance(value, tuple):
            parser.add_argument(f"--{name.replace('_', '-')}", type=int, nargs="+", default=value)
        elif isinstance(value, bool):
            parser.add_argument(f"--{name.replace('_', '-')}", action="store_true", default=value)
        else:
            parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=value)
    parser.add_argument("--quiet", action="store_true")
    args = vars(parser.parse_args(argv))
    quiet = args.pop("quiet")
    args["block_out_channels"] = tuple(args["block_out_channels"])
    out = train(TrainConfig(**args), progress=not quiet)
    print(f"trained: {out} (model.safetensors, ema.safetensors, loss.png, samples.png)")
    return 0


def export_prior(run: str | Path, target: str | Path) -> Path:
    """Copy a run's EMA weights to ``target/model.safetensors`` with a ``config.json`` that records
    their sha256 (checked at load), plus the loss curve and sample grid."""
    import shutil

    from .priors.loading import sha256

    run, target = Path(run), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run / "ema.safetensors", target / "model.safetensors")
    config = json.loads((run / "config.json").read_text())
    config["sha256"] = sha256(target / "model.safetensors")
    state = torch.load(run / "trainer.pt", weights_only=True, map_location="cpu")
    config["training"]["steps_done"] = int(state["step"])
    config["training"]["final_loss_mean_last_100"] = float(state["losses"][-100:].mean())
    (target / "config.json").write_text(json.dumps(config, indent=2))
    for extra in ("loss.png", "samples.png"):
        if (run / extra).is_file():
            shutil.copyfile(run / extra, target / extra)
    return target


if __name__ == "__main__":
    raise SystemExit(main())
