"""Measurement files and the operators they build: ``.npy`` measurements, MRI k-space
(``.npz`` / ``.h5``, single- or multi-coil, fastMRI's slice layout) and CT sinograms
(``.npz`` / ``.h5`` with the projection angles).

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
from .ct import CT
from .mri import MRI, MultiCoilMRI, estimate_coil_maps

__all__ = ["load_measurement", "load_sinogram", "read_array", "KSPACE_KEYS", "MAPS_KEYS", "SINOGRAM_KEYS"]

KSPACE_KEYS = ("kspace", "y")
MAPS_KEYS = ("coil_maps", "sens_maps", "sensitivity_maps")
SINOGRAM_KEYS = ("sinogram", "y")


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
    * ``.npz`` / ``.h5`` with a :class:`~invprob.operators.CT` operator: a sinogram, see
      :func:`load_sinogram`.

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
    if isinstance(operator, CT):
        return load_sinogram(path, store, operator)
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


def load_sinogram(path: Path, store: dict[str, np.ndarray], operator: CT) -> tuple[Tensor, CT]:
    """A CT sinogram and the :class:`~invprob.operators.CT` operator of its geometry.

    ``sinogram`` (or ``y``): line integrals ``(views, detectors)`` for one slice or
    ``(slices, views, detectors)`` for a volume, one row per view (astra's layout), in the units
    of ``operator(x)``. ``angles`` (degrees, one per view), when present, gives the geometry;
    otherwise the operator's preset angles do, and the view count must match them. Image size
    and beam type come from ``operator``; a volume sets its ``slices``.

    Raises:
        InputError: no sinogram, a transposed or mis-sized one, angles that do not match it.
    """
    keys = list(store)
    key = next((k for k in SINOGRAM_KEYS if k in keys), None)
    if key is None:
        raise InputError(f"{path} has keys {keys}; a CT measurement needs `sinogram` (views, detectors) or "
                         f"(slices, views, detectors), optionally `angles` in degrees.")
    data = torch.as_tensor(np.asarray(store[key]))
    if data.is_complex() or not data.is_floating_point() and data.dtype not in (torch.int32, torch.int64):
        raise InputError(f"`{key}` in {path} must hold real line integrals, got {data.dtype}.")
    if data.dim() not in (2, 3):
        raise InputError(f"`{key}` in {path} has shape {tuple(data.shape)}; expected (views, detectors) or "
                         f"(slices, views, detectors).")
    views, detectors = data.shape[-2:]
    if "angles" in keys:
        angles = torch.as_tensor(np.asarray(store["angles"]), dtype=torch.float64).flatten()
        if angles.numel() != views:
            raise InputError(f"`angles` in {path} lists {angles.numel()} views but `{key}` has {views} rows (one per "
                             f"view); store one angle per row of the sinogram.")
    else:
        angles = operator.angles.to(torch.float64)
        if (views, detectors) == (operator.detectors, operator.views) and views != detectors:
            raise InputError(f"`{key}` in {path} is {tuple(data.shape[-2:])}, which looks transposed: store it as "
                             f"(views, detectors) = ({operator.views}, {operator.detectors}).")
        if views != operator.views:
            raise InputError(f"`{key}` in {path} has {views} views but the operator's geometry has "
                             f"{operator.views}; store the angles in the file (`angles`, degrees) or set the view count "
                             f"(operator.angles.views={views}).")
    slices = data.shape[0] if data.dim() == 3 else None
    built = CT(operator.size, angles, slices=slices, fan_beam=operator.fan_beam, fan_parameters=operator.fan_parameters)
    if detectors != built.detectors:
        raise InputError(f"`{key}` in {path} has {detectors} detector cells but a {operator.size}² image gives "
                         f"{built.detectors} in this geometry; set the image size (operator.size=...) to the "
                         f"reconstruction's.")
    y = data.to(torch.float64).reshape(1, *built.y_shape)
    return y, built
