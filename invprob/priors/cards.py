"""Model cards: pretrained priors that users bring (``priors/<name>.yaml`` with a ``card:`` block).

A card names the architecture, the expected files with their sha256 (``null`` where the
checksum is not pinned), the data range, the resolution and where the weights come from.
:func:`load_from_card` never downloads: it looks for the files in ``folder`` (default
``$INVPROB_CACHE/<name>``, else ``~/.cache/invprob/<name>``) and a missing file is one
:class:`CheckpointError` naming the file, its checksum and the path to place it at.
:func:`fetch` (``invprob fetch-prior NAME``) downloads into that cache when the machine is
online. Architectures: ``adm`` (:func:`~invprob.priors.adm.load_adm`), ``diffusers-unet``
(:func:`~invprob.priors.loading.from_diffusers`), ``stable-diffusion`` and ``ldm-vq``
(:mod:`invprob.priors.latent`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import torch

from ..checks import SAFE_NAME
from ..errors import CheckpointError
from .loading import set_network_options, sha256

__all__ = ["cache_dir", "card_folder", "missing_files", "load_from_card", "fetch", "weights_status", "ARCHITECTURES"]

ARCHITECTURES = ("adm", "diffusers-unet", "stable-diffusion", "ldm-vq")


def cache_dir() -> Path:
    """``$INVPROB_CACHE`` or ``~/.cache/invprob``."""
    return Path(os.environ.get("INVPROB_CACHE") or Path.home() / ".cache" / "invprob")


def card_folder(card: dict, folder: str | Path | None = None) -> Path:
    """Where a card's files live: ``folder``, else ``<cache>/<name>`` (the name is checked to
    be a plain folder name, so a card cannot point outside the cache)."""
    if folder is not None:
        return Path(folder)
    name = card.get("name")
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise CheckpointError(f"model card name {name!r} is not a plain folder name (letters, digits, _ . + -).")
    return cache_dir() / name


def _file_path(root: Path, relative: object) -> Path:
    """``root / relative`` for a card's ``files[].path``, refused unless it stays inside ``root``."""
    if not isinstance(relative, str) or not relative or Path(relative).is_absolute() or ".." in Path(relative).parts:
        raise CheckpointError(f"model card file path {relative!r} must be a relative path inside the prior's "
                              f"folder (no '..', not absolute).")
    return root / relative


def _check_card(card: dict) -> None:
    for key in ("name", "architecture", "files"):
        if key not in card:
            raise CheckpointError(f"model card {card.get('name', '?')!r} has no `{key}`.")
    if card["architecture"] not in ARCHITECTURES:
        raise CheckpointError(f"model card {card['name']!r}: architecture {card['architecture']!r} is not one of "
                              f"{ARCHITECTURES}.")
    card_folder(card)  # the name must be a plain folder name
    for f in card["files"]:
        _file_path(Path("."), f.get("path") if isinstance(f, dict) else f)


def missing_files(card: dict, folder: str | Path | None = None) -> list[str]:
    """The card's files absent from ``folder`` (relative paths)."""
    _check_card(card)
    root = card_folder(card, folder)
    return [f["path"] for f in card["files"] if not _file_path(root, f["path"]).is_file()]


def _verify(card: dict, root: Path) -> None:
    for f in card["files"]:
        path = _file_path(root, f["path"])
        if not path.is_file():
            checksum = f.get("sha256") or "not published in the card"
            raise CheckpointError(
                f"prior {card['name']!r}: missing file {f['path']} (sha256 {checksum}); place it at {path} "
                f"— get it with `invprob fetch-prior {card['name']}` when online, or from: "
                f"{f.get('url') or card.get('source', 'the model authors')}.")
        if f.get("sha256") and sha256(path) != f["sha256"]:
            raise CheckpointError(f"prior {card['name']!r}: checksum mismatch for {path} (expected sha256 "
                                  f"{f['sha256']}, got {sha256(path)}); the file is corrupt, truncated or "
                                  f"another model's.")


def load_from_card(card: dict[str, Any], folder: str | Path | None = None, dtype: torch.dtype | str | None = None,
                   channels_last: bool = False, compile: bool = False, **options: Any):
    """Build the prior a model card describes from local files (checksums verified first).

    ``dtype`` (e.g. ``torch.float16`` / ``'bfloat16'``) runs the network in that precision
    while the solver state stays float32; ``channels_last`` and ``compile`` (``torch.compile``,
    opt-in) tune the network. ``options`` go to the architecture's loader (e.g. ``prompt`` for
    Stable Diffusion)."""
    _check_card(card)
    root = card_folder(card, folder)
    _verify(card, root)
    arch = card["architecture"]
    if arch == "adm":
        from .adm import load_adm

        prior = load_adm(root / card["files"][0]["path"], variant=card.get("variant", "ffhq"),
                         image_size=card.get("resolution", 256), **options)
    elif arch == "diffusers-unet":
        from .loading import from_diffusers

        prior = from_diffusers(root, data_range=tuple(card.get("data_range", (-1.0, 1.0))), **options)
    elif arch == "stable-diffusion":
        from .latent import load_stable_diffusion

        prior = load_stable_diffusion(root, resolution=card.get("resolution", 512), **options)
    else:
        from .latent import load_ldm_vq

        prior = load_ldm_vq(root, **options)
    return set_network_options(prior, dtype=dtype, channels_last=channels_last, compile=compile)


def fetch(card: dict[str, Any], folder: str | Path | None = None, progress: bool = True) -> Path:
    """Download the card's missing files into ``folder`` (default: the cache) and verify them.

    Files with a ``url`` are fetched with urllib (``file://`` works too); cards with a
    ``hub_repo`` (diffusers directories) use ``huggingface_hub.snapshot_download``. Offline,
    the error names each file, its checksum and where to place it."""
    _check_card(card)
    root = card_folder(card, folder)
    root.mkdir(parents=True, exist_ok=True)
    if card.get("hub_repo") and missing_files(card, root):
        try:
            from huggingface_hub import snapshot_download

            snapshot_download(card["hub_repo"], local_dir=str(root), allow_patterns=card.get("hub_patterns"))
        except Exception as err:
            raise CheckpointError(_offline_message(card, root, err)) from err
    for f in card["files"]:
        target = _file_path(root, f["path"])
        if target.is_file() or not f.get("url"):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            _download(f["url"], target, progress)
        except OSError as err:
            raise CheckpointError(_offline_message(card, root, err)) from err
    _verify(card, root)
    return root


def _download(url: str, target: Path, progress: bool) -> None:
    from tqdm.auto import tqdm

    with urllib.request.urlopen(url, timeout=30) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp, \
                tqdm(total=total, unit="B", unit_scale=True, desc=target.name, disable=not progress) as bar:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                tmp.write(chunk)
                bar.update(len(chunk))
    shutil.move(tmp.name, target)


def _offline_message(card: dict, root: Path, err: Exception) -> str:
    files = "; ".join(f"{f['path']} (sha256 {f.get('sha256') or 'unpublished'}) -> {root / f['path']}"
                      for f in card["files"] if not (root / f["path"]).is_file())
    return (f"cannot download prior {card['name']!r} ({err}); this machine may be offline. Place the files by hand: "
            f"{files}. Source: {card.get('source', '?')}")


def weights_status(config: dict[str, Any]) -> str:
    """One line on a prior preset's weights in this installation: present (and where) or
    missing (and how to get them); ``""`` for priors without weights files (analytic ones)."""
    from ..registry import locate
    from .shipped import WEIGHTS, load_shipped

    if "card" in config:
        missing, folder = missing_files(config["card"]), card_folder(config["card"])
        return (f"weights present: {folder}" if not missing else
                f"weights missing: `invprob fetch-prior {config['card']['name']}` or place them in {folder}")
    if locate(config["_target_"]) is load_shipped:
        folder = WEIGHTS / config.get("name", "")
        present = (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
        return "weights present" if present else f"weights missing: {folder}"
    return ""
