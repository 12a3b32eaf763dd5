"""Priors shipped inside the package (``invprob/weights/<name>/``: ``model.safetensors`` with
the EMA weights + ``config.json``), trained by :mod:`invprob.training`."""

from __future__ import annotations

import json
from pathlib import Path

from .adapters import EDMPrior, FlowPrior
import torch

from ..errors import CheckpointError
from .loading import UNetCall, load_state_dict, set_network_options

__all__ = ["load_shipped", "load_autoencoder", "prior_from_network", "WEIGHTS", "SHIPPED_SHA256", "SHIPPED_AUTOENCODER_SHA256"]

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
#: sha256 of every shipped ``model.safetensors``, checked at load whatever ``config.json`` says
#: (a checksum only beside the file would vanish with an edit of that file)
SHIPPED_SHA256 = {
    "brain-mri": "572a768691bc51ab23812c51f17a6785216bac25cdc6913792d37e59a72ca6bd",
    "brain-mri-flow": "83c122bd2bda6bfff4ee60b2c5cddd49a35c88f263734de1df5b2ad86edc2c26",
    "brain-mri-latent": "edd4a53e0bda104c6521e35266efaba3d8df0f6ebdb0f3e1cfb45775d7f6bdb0",
    "mnist": "3b5fe85dcda6c1f3361c4cb594f35c06aba2ef457a8f488744a74e8213b32ea1",
    "mnist-flow": "ffd76d2b2e54c9de3a66894e471a3baf010ef9cc287694791b59131c13319b32",
    "natural-gray-flow": "88282160d60982b7685a5f4e81d81c2788bb3d9ba246ee2510f9058070a0a40b",
    "natural-gray": "f014e539d6f8f10157669c7145e7918eab009be9ac83efe5516e7e1b7c29927e",
}
#: sha256 of the ``autoencoder.safetensors`` of every shipped latent prior
SHIPPED_AUTOENCODER_SHA256 = {
    "brain-mri-latent": "4df0f60f20e82303d4e4cb646a2891be5d3e164f1a034a446b848261bcd1578c",
}


def prior_from_network(unet, config: dict, autoencoder=None):
    """Wrap a trained ``UNet2DModel`` by its objective: EDM-preconditioned denoiser, flow, or
    (``latent-edm``, with its ``autoencoder``) a :class:`~invprob.priors.LatentPrior`."""
    x_shape = tuple(config["x_shape"])
    network = UNetCall(unet.eval().requires_grad_(False))
    if config["objective"] == "latent-edm":
        from .latent import LatentPrior

        if autoencoder is None:
            raise CheckpointError("a latent-edm prior needs its autoencoder (autoencoder.safetensors).")
        latent = EDMPrior(network, preconditioned=False, sigma_data=config["sigma_data"], x_shape=x_shape,
                          data_range=None)
        return LatentPrior(latent, autoencoder, "kl", config["autoencoder"]["scaling_factor"],
                           tuple(config["image_shape"]), x_shape, tuple(config.get("image_range", (-1.0, 1.0))))
    data_range = tuple(config.get("data_range", (-1.0, 1.0)))
    if config["objective"] == "edm":
        return EDMPrior(network, preconditioned=False, sigma_data=config["sigma_data"], x_shape=x_shape,
                        data_range=data_range)
    if config["objective"] == "flow":
        return FlowPrior(network, time_scale=1000.0, x_shape=x_shape, data_range=data_range)
    raise CheckpointError(f"unknown objective {config['objective']!r} in the prior's config.json.")


def load_autoencoder(folder: str | Path, device: torch.device | str = "cpu", expected: str | None = None):
    """The frozen ``AutoencoderKL`` of a folder, with its config and weights file: an
    ``objective=autoencoder`` run (its EMA weights, ``ema.safetensors``), its export
    (``model.safetensors``, checked against the sha256 in its ``config.json``) or a latent prior
    (run or export: ``autoencoder.safetensors``, checked likewise); ``expected`` replaces the
    checksum of the folder's ``config.json`` (a shipped prior's, recorded in the package)."""
    from diffusers import AutoencoderKL

    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
    if config.get("objective") == "latent-edm":
        ae_config, weights = config["autoencoder"]["config"], folder / "autoencoder.safetensors"
        expected_here = config["autoencoder"].get("sha256")
    elif config.get("objective") == "autoencoder":
        run = (folder / "trainer.pt").is_file()
        ae_config = config["autoencoder"]
        weights = folder / ("ema.safetensors" if run else "model.safetensors")
        expected_here = None if run else config.get("sha256")
    else:
        raise ValueError(f"`autoencoder` {folder} is neither an autoencoder run nor a latent prior (its "
                         f"config.json has no objective 'autoencoder' or 'latent-edm'); train one with "
                         f"objective=autoencoder.")
    if not weights.is_file():
        raise CheckpointError(f"missing autoencoder weights {weights}.")
    expected = expected or expected_here
    ae = AutoencoderKL(**ae_config)
    ae.load_state_dict(load_state_dict(weights, expected), strict=True)
    return ae.to(device).eval().requires_grad_(False), ae_config, weights


def load_shipped(name: str, folder: str | Path | None = None, fully_convolutional: bool = False,
                 dtype: torch.dtype | str | None = None, channels_last: bool = False, compile: bool = False):
    """Load shipped prior ``name`` (or the trained run in ``folder``) without any download.

    ``dtype``, ``channels_last``, ``compile``: see :func:`~invprob.priors.loading.set_network_options`.

    With ``fully_convolutional`` the prior accepts any image size whose height and width the
    network's down-sampling divides (``x_shape`` is dropped, ``size_multiple`` set)."""
    from diffusers import UNet2DModel

    if folder is None and name not in SHIPPED_SHA256:
        raise CheckpointError(f"no shipped prior {name!r}; expected one of: {', '.join(sorted(SHIPPED_SHA256))} "
                              f"(a trained run of your own: pass its `folder`).")
    folder = Path(folder) if folder is not None else WEIGHTS / name
    config_file, weights = folder / "config.json", folder / "model.safetensors"
    if not config_file.is_file() or not weights.is_file():
        raise CheckpointError(f"prior {name!r}: expected {config_file} and {weights}; train it with "
                              f"`invprob train` (see README) or reinstall the package.")
    config = json.loads(config_file.read_text())
    unet = UNet2DModel(**config["unet"])
    expected = SHIPPED_SHA256.get(name) if folder == WEIGHTS / name else config.get("sha256")
    state = load_state_dict(weights, expected)
    try:
        unet.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"weights in {weights} do not match the architecture in {config_file}: {err}") from err
    autoencoder = None
    if config["objective"] == "latent-edm":
        if fully_convolutional:
            raise CheckpointError(f"prior {name!r} is a latent prior: its image size is that of its autoencoder's "
                                  f"training; drop fully_convolutional.")
        # a shipped prior: the checksum recorded in the package, not the one beside the file
        expected = SHIPPED_AUTOENCODER_SHA256.get(name) if folder == WEIGHTS / name else None
        if folder == WEIGHTS / name and expected is None:
            raise CheckpointError(f"shipped latent prior {name!r} has no autoencoder checksum in the package.")
        autoencoder = load_autoencoder(folder, expected=expected)[0]
    prior = prior_from_network(unet, config, autoencoder)
    if fully_convolutional:
        prior.x_shape = None
        prior.size_multiple = 2 ** (len(config["unet"]["block_out_channels"]) - 1)
    return set_network_options(prior, dtype=dtype, channels_last=channels_last, compile=compile)
