"""Named data sets that install themselves: downloaded on first use, checked by sha256.

Each set of :data:`DATASETS` lives in a folder of the data root (:func:`data_root`:
``$INVPROB_DATA``, else ``~/.cache/invprob/data``, or ``$INVPROB_CACHE/data``). A file that
is missing there is downloaded from its public source — a raw file of a GitHub repository,
pinned to a commit (:data:`invprob/datasets.json <DATASETS>`) — checked against its pinned
sha256 and written atomically, as torchvision's and deepinv's datasets do. Files already in
the folder are used as they are (``verify=True`` re-hashes them). Offline, a missing file
raises :class:`~invprob.errors.DataNotFoundError`, one message naming the file, its source,
its sha256 and the path to place it at.

``$INVPROB_DATA_MIRROR`` replaces the public sources by a mirror holding the installed layout
(``<mirror>/<folder>/<file>``, ``http(s)://`` or ``file://``), e.g. a lab's shared copy.

The sets (name: folder, what):

* ``mnist``: ``mnist/``, MNIST test images and labels (idx ``.gz``);
* ``train400``: ``train400/``, the 400 BSD crops DnCNN trains on (180×180, gray);
* ``set12``: ``set12/``, Set12 test images (gray, 256² and 512²);
* ``set5``, ``set14``: ``set5/``, ``set14/``, super-resolution test sets (stored as PNG);
* ``brain-mri``: ``mri_brain_images/``, 40 brain MR slices 256² and radial masks in ``masks/``;
* ``brain-8coil-kspace``: ``mri_sigpy_brain_8coil/``, real 8-coil brain k-space (``.npy``);
* ``blur-kernels``: ``blur_kernels/``, Levin et al. 2009 and KAIR blur kernels.

``invprob fetch-data NAME`` does the same from the command line.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .errors import DataNotFoundError, InputError
from .io import load_image, sha256

__all__ = ["Dataset", "DATASETS", "data_root", "fetch", "dataset_path", "load_images", "load_mnist",
           "IMAGE_SETS", "image_files", "pixels_sha256"]


@dataclass(frozen=True)
class Dataset:
    """A named set of files: where it is installed and where each file comes from.

    Attributes:
        name: the set's name (``'set12'``).
        folder: its folder under :func:`data_root`.
        description, license: one line each, as the source states them.
        repo, commit: the GitHub repository and the commit the files are pinned to.
        files: ``{installed name: (path in the repository, sha256 of the source file[, sha256 of
            the pixels])}``. A source ``.bmp`` installed as ``.png`` is converted losslessly after
            its check; its third entry pins the installed image's pixels (:func:`pixels_sha256`),
            checked for a mirror's copy and by ``verify``.
    """

    name: str
    folder: str
    description: str
    license: str
    repo: str
    commit: str
    files: dict[str, tuple[str, ...]]

    def url(self, file: str) -> str:
        """The download URL of ``file``: the mirror's copy under ``$INVPROB_DATA_MIRROR`` if
        set, else the raw file of the repository at the pinned commit."""
        mirror = _mirror()
        if mirror:
            return f"{mirror}/{self.folder}/{file}"
        return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{self.files[file][0]}"

    def converted(self, file: str) -> bool:
        """Whether the source of ``file`` has another format than the installed file."""
        return Path(self.files[file][0]).suffix.lower() != Path(file).suffix.lower()


def _mirror() -> str | None:
    """``$INVPROB_DATA_MIRROR`` without a trailing ``/``, or ``None`` when unset or empty.

    Raises:
        InputError: the variable is set to something that is not an ``http(s)://`` or
            ``file://`` URL.
    """
    mirror = (os.environ.get("INVPROB_DATA_MIRROR") or "").strip().rstrip("/") or None
    if mirror is not None and not mirror.startswith(("http://", "https://", "file://")):
        raise InputError(f"`INVPROB_DATA_MIRROR` is {mirror!r}, not a URL; give http(s)://... or file:///path/to/data "
                         f"(a folder holding the data sets' folders), or unset it.")
    return mirror


def pixels_sha256(path: Path) -> str:
    """sha256 of an image's size and RGB pixels: the same for any lossless encoding of them."""
    from PIL import Image

    with Image.open(path) as image:
        return hashlib.sha256(f"{image.size[0]}x{image.size[1]} ".encode() + image.convert("RGB").tobytes()).hexdigest()


def _check(dataset: Dataset, file: str, path: Path, what: str) -> None:
    """Raise if ``path`` (the installed form of ``file``) does not match its pin."""
    entry = dataset.files[file]
    if dataset.converted(file):
        got, want = pixels_sha256(path), entry[2]
    else:
        got, want = sha256(path), entry[1]
    if got != want:
        raise DataNotFoundError(f"{what} does not match its sha256 {want} (got {got}): it is corrupt or "
                                f"another file; nothing was installed from it.")


def _load_registry() -> dict[str, Dataset]:
    raw = json.loads((Path(__file__).with_name("datasets.json")).read_text())
    return {name: Dataset(name=name, folder=v["folder"], description=v["description"], license=v["license"],
                          repo=v["repo"], commit=v["commit"], files={k: tuple(f) for k, f in v["files"].items()})
            for name, v in raw.items()}


DATASETS: dict[str, Dataset] = _load_registry()
"""The named data sets, read from ``invprob/datasets.json`` (sources checked byte for byte)."""

IMAGE_SETS = {"train400": "train400", "brain-mri": "brain-mri"}
"""Names :func:`load_images` accepts for a data set of same-size images, and the data set of each."""


def data_root() -> Path:
    """The folder of the data sets: ``$INVPROB_DATA`` if set, else ``data/`` in the user's cache
    (``$INVPROB_CACHE`` or ``~/.cache/invprob``). The package never looks anywhere else (this
    repository's tests and CI set ``INVPROB_DATA``)."""
    env = os.environ.get("INVPROB_DATA")
    if env:
        return Path(env)
    return Path(os.environ.get("INVPROB_CACHE") or Path.home() / ".cache" / "invprob") / "data"


def _get(name: str) -> Dataset:
    if name not in DATASETS:
        raise KeyError(f"unknown data set {name!r}; choose one of {sorted(DATASETS)}.")
    return DATASETS[name]


def _download(dataset: Dataset, file: str, target: Path) -> None:
    """Download one file to ``target`` (atomically), checked against its pinned sha256."""
    from torch.hub import download_url_to_file

    source, expected = dataset.files[file][:2]
    url = dataset.url(file)
    mirrored = _mirror() is not None
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".invprob-part-") as tmp:
        part = Path(tmp) / Path(source if not mirrored else file).name
        try:
            download_url_to_file(url, str(part), progress=False)
        except OSError as err:  # URLError, HTTPError, DNS failures, refused connections
            raise DataNotFoundError(
                f"data file {target} is missing and could not be downloaded from {url} ({err}); place the "
                f"file from {dataset.repo}@{dataset.commit[:12]}:{source} (sha256 {expected}) at {target}, "
                f"or set INVPROB_DATA to a folder holding {dataset.folder}/.") from None
        if mirrored:  # a mirror holds the installed form
            _check(dataset, file, part, f"{url} (for {target})")
        else:
            got = sha256(part)
            if got != expected:
                raise DataNotFoundError(f"{url} has sha256 {got}, expected {expected}: the download is corrupt or "
                                        f"the source changed; nothing was written to {target}.")
            if dataset.converted(file):
                from PIL import Image

                converted = part.with_suffix(target.suffix)
                with Image.open(part) as image:
                    image.save(converted)  # PNG is lossless
                part = converted
        os.replace(part, target)


def fetch(name: str, verify: bool = False, progress: bool = True) -> Path:
    """Install data set ``name`` under :func:`data_root` (only the files missing there) and
    return its folder.

    Args:
        name: a key of :data:`DATASETS`.
        verify: also re-hash the files already present (a mismatch raises).
        progress: show a progress bar over the files being downloaded.

    Raises:
        KeyError: unknown name (the message lists the names).
        DataNotFoundError: a file is missing and cannot be downloaded (offline), or a download or
            a present file (``verify=True``) does not match its sha256.
    """
    from tqdm.auto import tqdm

    dataset = _get(name)
    folder = data_root() / dataset.folder
    missing = [f for f in dataset.files if not (folder / f).is_file()]
    if verify:
        for f in dataset.files:
            if f not in missing:
                _check(dataset, f, folder / f, f"{folder / f} (delete it to download it again)")
    for f in tqdm(missing, desc=f"downloading {name}", unit="file", disable=not progress or not missing):
        _download(dataset, f, folder / f)
    return folder


def dataset_path(name: str, file: str | None = None) -> Path:
    """The folder of data set ``name`` (or one ``file`` of it), installed first if missing.

    Only the requested file is downloaded when ``file`` is given."""
    dataset = _get(name)
    if file is None:
        return fetch(name)
    if file not in dataset.files:
        raise KeyError(f"data set {name!r} has no file {file!r}; it has {sorted(dataset.files)[:8]} ...")
    target = data_root() / dataset.folder / file
    if not target.is_file():
        _download(dataset, file, target)
    return target


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def image_files(name: str, progress: bool = True) -> list[Path]:
    """The pinned image files of data set ``name``, installed first, in name order (other files
    a user put into the folder are not part of the set)."""
    folder = fetch(name, progress=progress)
    return [folder / f for f in sorted(_get(name).files) if Path(f).suffix.lower() in IMAGE_SUFFIXES]


def load_mnist(image_size: int = 28) -> Tensor:
    """The 10 000 MNIST test images ``(10000, 1, image_size, image_size)`` in [0, 1], zero-padded
    from 28×28 (centred)."""
    with gzip.open(dataset_path("mnist", "t10k-images-idx3-ubyte.gz")) as f:
        arr = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    pad = (image_size - 28) // 2
    x = torch.from_numpy(arr.astype(np.float32) / 255.0)
    return torch.nn.functional.pad(x, (pad, image_size - 28 - pad) * 2)


def load_images(data: str, image_size: int, holdout: int = 0, resize: int | None = None,
                progress: bool = True) -> tuple[Tensor, Tensor]:
    """Images in [-1, 1] for training, with the last ``holdout`` kept apart.

    Args:
        data: ``'mnist'`` (the 10 000 MNIST test images, zero-padded 28 → ``image_size``), a
            name of :data:`IMAGE_SETS` (``'train400'``: the 400 180×180 BSD crops of DnCNN;
            ``'brain-mri'``: the 40 brain MR slices, 256×256, in file order; ...), installed on
            first use; a ``.npy`` file ``(N, H, W)`` or ``(N, C, H, W)`` in [0, 1] or uint8; or a
            folder of images (read as grayscale, in file-name order).
        image_size: the padded size of the MNIST images (unused for other data).
        holdout: how many of the last images to keep apart.
        resize: if given, every image is resized to ``resize × resize`` (antialiased bicubic,
            clamped to the range).
        progress: show a progress bar while a named set downloads.

    Returns:
        ``(train, held_apart)``, ``(N − holdout, C, H, W)`` and ``(holdout, C, H, W)`` float32.

    Raises:
        FileNotFoundError: the folder is missing or holds no images.
        DataNotFoundError: a named set is missing and cannot be downloaded.
    """
    if data == "mnist":
        x = load_mnist(image_size)
    elif data.endswith(".npy"):
        arr = np.load(data, allow_pickle=False)
        x = torch.from_numpy(arr.astype(np.float32) / (255.0 if arr.dtype == np.uint8 else 1.0))
        x = x[:, None] if x.dim() == 3 else x
    else:
        if data in IMAGE_SETS:
            files = image_files(IMAGE_SETS[data], progress=progress)
        else:
            folder = Path(data)
            if not folder.is_dir():
                raise FileNotFoundError(f"`data`: {data} is neither a folder, a .npy file nor one of 'mnist', "
                                        f"{', '.join(map(repr, IMAGE_SETS))}.")
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"no images found in {data}; give a folder of .png/.jpg/.bmp/.tif images, "
                                    f"a .npy file or one of 'mnist', {', '.join(map(repr, IMAGE_SETS))}.")
        x = torch.cat([(load_image(p) + 1) / 2 for p in files])
    if resize is not None:
        x = torch.nn.functional.interpolate(x, size=(resize, resize), mode="bicubic", antialias=True,
                                            align_corners=False).clamp(0, 1)
    x = x * 2 - 1
    return (x[:-holdout], x[-holdout:]) if holdout else (x, x[:0])
