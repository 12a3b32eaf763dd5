"""Measurement files and the operators they build: ``.npy`` measurements and MRI k-space
(``.npz`` / ``.h5``, single- or multi-coil, fastMRI's slice layout).

Every reader checks what it reads (a readable file, the expected keys, finite complex
k-space of a supported shape) and raises :class:`~invprob.errors.InputError` naming the file
and the fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError
from .base import Operator
from .mri import MRI, MultiCoilMRI, estimate_coil_maps

__all__ = ["load_measurement", "read_array", "KSPACE_KEYS", "MAPS_KEYS"]

KSPACE_KEYS = ("kspace", "y")
MAPS_KEYS = ("coil_maps", "sens_maps", "sensitivity_maps")


def read_array(path: Path, what: str = "file") -> Tensor:
    """A ``.npy`` file as a tensor (no pickled objects), with one clear error for an empty,
    truncated or non-numeric file."""
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise InputError(f"{what} {path} is not a readable .npy array ({str(err).splitlines()[0]}); "
                         f"write it with numpy.save.") from err
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biufc" or array.size == 0:
        raise InputError(f"{what} {path} holds no numeric data (dtype {getattr(array, 'dtype', '?')}, "
                         f"shape {getattr(array, 'shape', '?')}).")
    return torch.as_tensor(array)


def _read_store(path: Path) -> dict[str, np.ndarray]:
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as store:
                return {k: store[k] for k in store.files}
        import h5py

        with h5py.File(path, "r") as f:
            return {k: f[k][()] for k in f.keys() if isinstance(f[k], h5py.Dataset)}
    except (ValueError, OSError, EOFError, KeyError) as err:
        raise InputError(f"measurement {path} cannot be read as {path.suffix} ({str(err).splitlines()[0]}).") from err


def load_measurement(path: str | Path, operator: Operator, kspace_scale: float = 1.0) -> tuple[Tensor, Operator]:
    """A real measurement and the operator that fits it: ``(y (M, *y_shape), operator)``.

    * ``.npy``: ``y`` itself, shaped ``(M, *operator.y_shape)`` (or one measurement without
      the leading ``M``), in the units of ``operator(x)``.
    * ``.npz`` / ``.h5``: ``kspace`` (or ``y``) plus optional ``coil_maps`` and ``mask``. MRI
      k-space (centred, DC in the middle, complex) may be ``(H, W)`` single-coil, ``(N_c, H, W)``
      multi-coil or ``(S, N_c, H, W)`` for ``S`` slices (fastMRI's layout). Multi-coil data
      give a :class:`~invprob.operators.MultiCoilMRI` whose coil maps come from the file or,
      absent there, from :func:`~invprob.operators.estimate_coil_maps` (ACS of the first slice);
      the mask comes from the file or, absent there, from the non-zero k-space samples.
      ``kspace_scale`` multiplies the k-space (the prior's units: images in its data range).

    Raises:
        InputError: unreadable file, missing keys, real k-space, an unsupported shape.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"`measurement`: file not found: {path}")
    if path.suffix == ".npy":
        y = read_array(path, "measurement")
        if operator.y_shape is not None and tuple(y.shape) == tuple(operator.y_shape):
            y = y[None]
        return y, operator
    if path.suffix not in (".npz", ".h5", ".hdf5"):
        raise InputError(f"`measurement` {path}: expected .npy, .npz or .h5, got {path.suffix!r}.")
    store = _read_store(path)
    keys = list(store)
    key = next((k for k in KSPACE_KEYS if k in keys), None)
    if key is None:
        raise InputError(f"{path} has keys {keys}; expected `kspace` (or `y`), optionally `coil_maps` and `mask`.")
    data = torch.as_tensor(np.asarray(store[key]))
    maps_key = next((k for k in MAPS_KEYS if k in keys), None)
    if not isinstance(operator, (MRI, MultiCoilMRI)):
        if maps_key is not None:
            raise InputError(f"{path} holds coil maps, but operator {type(operator).__name__} is not MRI; "
                             f"choose an MRI operator (e.g. operator=mri-4x).")
        return data, operator
    if not data.is_complex():
        raise InputError(f"`{key}` in {path} must be complex k-space, got {data.dtype}.")
    data = data * kspace_scale
    if data.dim() == 2:
        data = data[None, None]
    elif data.dim() == 3:
        data = data[None]
    if data.dim() != 4:
        raise InputError(f"`{key}` in {path} has shape {tuple(data.shape)}; expected (H, W), (N_c, H, W) or "
                         f"(S, N_c, H, W).")
    H, W = data.shape[-2:]
    if "mask" in keys:
        mask = torch.as_tensor(np.asarray(store["mask"])).float()
        if tuple(mask.shape[-2:]) != (H, W):
            raise InputError(f"`mask` in {path} is {tuple(mask.shape)} but the k-space is {H}x{W}; give a mask of "
                             f"the k-space's size.")
    elif tuple(operator.mask.shape[-2:]) == (H, W):
        mask = operator.mask
    else:
        mask = (data.abs().sum((0, 1)) > 0).float()
    try:
        if data.shape[1] == 1 and maps_key is None:
            return data, MRI(mask, image_mode=operator.image_mode)
        maps = (torch.as_tensor(np.asarray(store[maps_key])) if maps_key
                else estimate_coil_maps(data[0], calib_size=min(24, H, W)))
        return data, MultiCoilMRI(mask, maps.to(torch.complex64), image_mode=operator.image_mode)
    except (ValueError, TypeError) as err:
        raise InputError(f"{path}: {err}") from err
