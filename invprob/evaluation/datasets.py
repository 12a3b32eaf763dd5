"""Real images for training and evaluation: the shared data folder and the held-apart sets.

The data are not shipped with the package: they live in the folder ``$INVPROB_DATA``, or else
in the user's cache ``~/.cache/invprob/data`` (:func:`data_root`), with the sub-folders
``mnist/`` (the MNIST test set, ``t10k-images-idx3-ubyte.gz``), ``set12/``, ``train400/`` and
``mri_brain_images/``. :func:`load_images` reads them for training (the last ``holdout``
images kept apart); :func:`held_apart` gives, per shipped prior, the images its training never
saw, on which priors are scored.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..io import load_image

__all__ = ["data_root", "data_path", "BUILTIN_FOLDERS", "load_images", "set12", "HELD_APART", "held_apart"]

BUILTIN_FOLDERS = {"train400": "train400", "brain-mri": "mri_brain_images"}
"""Names :func:`load_images` accepts for folders of the shared data, and those folders."""

HELD_APART = {"mnist": "MNIST 9500+", "mnist-flow": "MNIST 9500+", "natural-gray": "Set12 256² crops",
              "brain-mri": "brain slices 36–40, 128²"}
"""The shipped priors that have a held-apart set (:func:`held_apart`), and a short label of it."""


def data_root() -> Path:
    """The folder of the data: ``$INVPROB_DATA`` if set, else ``data/`` in the user's cache
    (``$INVPROB_CACHE`` or ``~/.cache/invprob``). It need not exist; :func:`data_path` checks.
    The package never looks outside these two places (this repository's tests and CI set
    ``INVPROB_DATA``)."""
    env = os.environ.get("INVPROB_DATA")
    if env:
        return Path(env)
    return Path(os.environ.get("INVPROB_CACHE") or Path.home() / ".cache" / "invprob") / "data"


def data_path(relative: str) -> Path:
    """``data_root() / relative``, which must exist.

    Raises:
        FileNotFoundError: naming the path and how to point ``INVPROB_DATA`` at the data.
    """
    p = data_root() / relative
    if not p.exists():
        raise FileNotFoundError(f"data file not found: {p}; place it there, or set INVPROB_DATA to the folder "
                                f"holding the data (mnist/, set12/, train400/, mri_brain_images/, ...).")
    return p


def load_images(data: str, image_size: int, holdout: int = 0, resize: int | None = None) -> tuple[Tensor, Tensor]:
    """Images in [-1, 1] for training, with the last ``holdout`` kept apart.

    Args:
        data: ``'mnist'`` (the 10 000 MNIST test images of the shared data, zero-padded
            28 → ``image_size``), a name of :data:`BUILTIN_FOLDERS` (``'train400'``: the 400
            180×180 BSD crops of DnCNN; ``'brain-mri'``: the 40 brain MR slices, 256×256, in file
            order), a ``.npy`` file ``(N, H, W)`` or ``(N, C, H, W)`` in [0, 1] or uint8, or a
            folder of images (read as grayscale, in file-name order).
        image_size: the padded size of the MNIST images (unused for other data).
        holdout: how many of the last images to keep apart.
        resize: if given, every image is resized to ``resize × resize`` (antialiased bicubic,
            clamped to the range).

    Returns:
        ``(train, held_apart)``, ``(N − holdout, C, H, W)`` and ``(holdout, C, H, W)`` float32.

    Raises:
        FileNotFoundError: the shared data or the folder is missing, or the folder holds no images.
    """
    if data in BUILTIN_FOLDERS:
        data = str(data_path(BUILTIN_FOLDERS[data]))
    if data == "mnist":
        path = data_path("mnist/t10k-images-idx3-ubyte.gz")
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
        files = sorted(p for p in Path(data).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif"))
        if not files:
            raise FileNotFoundError(f"no images found in {data}; give a folder of .png/.jpg/.bmp/.tif images, "
                                    f"a .npy file or one of 'mnist', {', '.join(map(repr, BUILTIN_FOLDERS))}.")
        x = torch.cat([(load_image(p) + 1) / 2 for p in files])
    if resize is not None:
        x = torch.nn.functional.interpolate(x, size=(resize, resize), mode="bicubic", antialias=True,
                                            align_corners=False).clamp(0, 1)
    x = x * 2 - 1
    return (x[:-holdout], x[-holdout:]) if holdout else (x, x[:0])


def set12(size: int = 256) -> Tensor:
    """The 12 Set12 test images (Zhang et al. 2017, DnCNN), ``size × size`` crops: ``(12, 1, size, size)``
    in [-1, 1], in file order (01–12).

    Images 01–07 are 256×256, 08–12 512×512. The crop of an ``H × W`` image keeps rows
    ``0 … size−1`` and columns ``c … c+size−1`` with ``c = (H − size)//2 + (W − size)//2``: at
    ``size = 256`` the 256² images whole and the top-right quadrant of the 512² ones (the crop
    every committed Set12 result was measured on).
    """
    images = [load_image(p) for p in sorted(data_path("set12").glob("*.png"))]
    crops = []
    for x in images:
        H, W = x.shape[-2:]
        if min(H, W) < size:
            raise ValueError(f"`size` is {size} but a Set12 image is {H}×{W}; use size <= {min(H, W)}.")
        c = (H - size) // 2 + (W - size) // 2
        crops.append(x[..., :size, c : c + size])
    return torch.cat(crops)


def held_apart(prior: str) -> Tensor:
    """The images shipped prior ``prior`` was not trained on, ``(N, C, H, W)`` in [-1, 1].

    ``'mnist'``, ``'mnist-flow'``: MNIST test images 9500–9999 (32×32, the last 500 of
    ``load_images('mnist', 32)``); ``'natural-gray'``: :func:`set12` (trained on BSD crops);
    ``'brain-mri'``: slices 36–40 of the 40 brain MR slices resized to 128×128 (the last 5 of
    ``load_images('brain-mri', 128, resize=128)``).

    Raises:
        KeyError: ``prior`` has no held-apart set here; the message lists those of :data:`HELD_APART`.
    """
    if prior in ("mnist", "mnist-flow"):
        return load_images("mnist", 32, holdout=500)[1]
    if prior == "natural-gray":
        return set12()
    if prior == "brain-mri":
        return load_images("brain-mri", 128, holdout=5, resize=128)[1]
    raise KeyError(f"no held-apart images for prior {prior!r}; choose one of {sorted(HELD_APART)}.")
