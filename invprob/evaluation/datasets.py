"""Evaluation images: the Set12 crops and each shipped prior's held-apart images.

The files come from the named data sets of :mod:`invprob.datasets` (installed on first use
under ``$INVPROB_DATA`` or ``~/.cache/invprob/data``). :func:`held_apart` gives, per shipped
prior, the images its training never saw, on which priors are scored.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..datasets import image_files, load_images
from ..io import load_image

__all__ = ["set12", "HELD_APART", "held_apart", "ct_slice", "CT_SLICE_SHA256"]

HELD_APART = {"mnist": "MNIST 9500+", "mnist-flow": "MNIST 9500+", "natural-gray": "Set12 256² crops",
              "natural-gray-flow": "Set12 256² crops", "brain-mri": "brain slices 36–40, 128²",
              "brain-mri-latent": "brain slices 36–40, 128²", "brain-mri-flow": "brain slices 36–40, 128²"}
"""The shipped priors that have a held-apart set (:func:`held_apart`), and a short label of it."""


def set12(size: int = 256) -> Tensor:
    """The 12 Set12 test images (Zhang et al. 2017, DnCNN), ``size × size`` crops: ``(12, 1, size, size)``
    in [-1, 1], in file order (01–12).

    Images 01–07 are 256×256, 08–12 512×512. The crop of an ``H × W`` image keeps rows
    ``0 … size−1`` and columns ``c … c+size−1`` with ``c = (H − size)//2 + (W − size)//2``: at
    ``size = 256`` the 256² images whole and the top-right quadrant of the 512² ones (the crop
    every committed Set12 result was measured on).
    """
    images = [load_image(p) for p in image_files("set12", progress=False)]
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
    ``load_images('mnist', 32)``); ``'natural-gray'``, ``'natural-gray-flow'``: :func:`set12`
    (trained on BSD crops); ``'brain-mri'``, ``'brain-mri-latent'``, ``'brain-mri-flow'``: slices
    36–40 of the 40 brain MR slices resized to 128×128 (the last 5 of
    ``load_images('brain-mri', 128, resize=128)``).

    Raises:
        KeyError: ``prior`` has no held-apart set here; the message lists those of :data:`HELD_APART`.
    """
    if prior in ("mnist", "mnist-flow"):
        return load_images("mnist", 32, holdout=500)[1]
    if prior in ("natural-gray", "natural-gray-flow"):
        return set12()
    if prior in ("brain-mri", "brain-mri-latent", "brain-mri-flow"):
        return load_images("brain-mri", 128, holdout=5, resize=128)[1]
    raise KeyError(f"no held-apart images for prior {prior!r}; choose one of {sorted(HELD_APART)}.")


CT_SLICE_SHA256 = "3dd31e5cc835b3f2cdd46c9da1982f59251e78518fefa8163d914631c66437d6"
"""sha256 of ``CT_small.dcm`` as pydicom 3.0 ships it."""


def ct_slice() -> Tensor:
    """A real CT slice: ``CT_small.dcm`` of pydicom's bundled test files (128×128, 0.66 mm pixels,
    5 mm slice), ``(1, 1, 128, 128)`` in [-1, 1], checked against :data:`CT_SLICE_SHA256`.

    Hounsfield units map linearly to attenuation-like values, ``x = (HU + 1000) / 1000 − 1``:
    air −1, water 0, HU ≥ 1000 (dense bone) clipped to 1. Needs ``pip install pydicom``; read
    from the installed package, never downloaded.
    """
    import hashlib

    try:
        import pydicom
        from pydicom.data import get_testdata_file
    except ImportError as err:
        raise ImportError("the real CT slice is read from pydicom's test files: pip install pydicom") from err
    path = get_testdata_file("CT_small.dcm", download=False)
    if path is None:
        raise FileNotFoundError("pydicom's CT_small.dcm is missing from this pydicom installation; reinstall pydicom.")
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    if digest != CT_SLICE_SHA256:
        raise ValueError(f"{path} has sha256 {digest}, expected {CT_SLICE_SHA256}; reinstall pydicom.")
    data = pydicom.dcmread(path)
    hu = torch.as_tensor(data.pixel_array.astype("float64")) * float(data.RescaleSlope) + float(data.RescaleIntercept)
    return ((hu + 1000) / 1000 - 1).clamp(-1, 1).float()[None, None]
