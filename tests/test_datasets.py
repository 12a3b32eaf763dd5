"""Named data sets that install themselves (``invprob.datasets``), tested offline: the pinned
checksums against the local copies, installation from a ``file://`` mirror, the offline
message, corrupt downloads and the lossless BMP → PNG conversion, and ``invprob train
data=train400`` in a fresh data folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import DATA, needs_data
from invprob.datasets import DATASETS, Dataset, dataset_path, fetch, load_images, pixels_sha256
from invprob.errors import DataNotFoundError, InputError
from invprob.io import sha256


@needs_data
def test_every_pinned_checksum_matches_the_local_copy_of_its_source():
    checked = 0
    for dataset in DATASETS.values():
        for file, pins in dataset.files.items():
            if not dataset.converted(file):
                assert sha256(DATA / dataset.folder / file) == pins[1], (dataset.name, file)
                checked += 1
            else:  # converted copies: their pixels are pinned
                assert pixels_sha256(DATA / dataset.folder / file) == pins[2], (dataset.name, file)
    assert checked > 450  # set12, train400, brain slices + masks, k-space, kernels, mnist


@pytest.fixture
def fresh_root(tmp_path, monkeypatch):
    root = tmp_path / "data"
    monkeypatch.setenv("INVPROB_DATA", str(root))
    monkeypatch.delenv("INVPROB_DATA_MIRROR", raising=False)
    return root


@needs_data
def test_installs_from_a_mirror_with_checksums_and_only_what_is_missing(fresh_root, monkeypatch):
    monkeypatch.setenv("INVPROB_DATA_MIRROR", DATA.as_uri())
    folder = fetch("set12", progress=False)
    assert folder == fresh_root / "set12"
    assert sorted(p.name for p in folder.iterdir()) == sorted(DATASETS["set12"].files)
    # present files are not downloaded again: point the mirror nowhere and fetch again
    monkeypatch.setenv("INVPROB_DATA_MIRROR", (fresh_root / "nowhere").as_uri())
    assert fetch("set12", verify=True, progress=False) == folder
    # one file on demand, not the whole set
    monkeypatch.setenv("INVPROB_DATA_MIRROR", DATA.as_uri())
    kspace = dataset_path("brain-8coil-kspace", "cartesian_ksp.npy")
    assert np.load(kspace).shape == (8, 230, 180)
    assert not (fresh_root / "mri_brain_images").exists()


def test_offline_names_the_file_its_source_checksum_and_where_to_put_it(fresh_root, monkeypatch):
    def offline(url, dst, **kwargs):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    digest = DATASETS["train400"].files["test_001.png"][1]
    with pytest.raises(DataNotFoundError) as err:
        load_images("train400", 64)
    message = str(err.value)
    assert "\n" not in message
    for part in ("test_001.png", digest, "cszn/DnCNN", str(fresh_root / "train400" / "test_001.png"),
                 "INVPROB_DATA"):
        assert part in message
    assert not any((fresh_root / "train400").glob("*.png"))


@needs_data
def test_a_corrupt_download_is_refused_and_nothing_is_written(fresh_root, monkeypatch, tmp_path):
    mirror = tmp_path / "mirror" / "set12"
    mirror.mkdir(parents=True)
    for f in DATASETS["set12"].files:
        (mirror / f).write_bytes((DATA / "set12" / f).read_bytes())
    (mirror / "05.png").write_bytes(b"not the image")
    monkeypatch.setenv("INVPROB_DATA_MIRROR", mirror.parent.as_uri())
    with pytest.raises(DataNotFoundError, match="05.png .*does not match its sha256"):
        fetch("set12", progress=False)
    assert not (fresh_root / "set12" / "05.png").exists()
    with pytest.raises(DataNotFoundError, match="does not match its sha256"):  # verify catches a bad local file
        (fresh_root / "set12" / "05.png").write_bytes(b"tampered")
        fetch("set12", verify=True, progress=False)


@needs_data
def test_converted_images_from_a_mirror_are_checked_by_their_pixels(fresh_root, monkeypatch, tmp_path):
    monkeypatch.setenv("INVPROB_DATA_MIRROR", DATA.as_uri() + "/")
    assert len(list(fetch("set5", verify=True, progress=False).glob("*.png"))) == 5
    mirror = tmp_path / "mirror" / "set5"
    mirror.mkdir(parents=True)
    from PIL import Image

    with Image.open(DATA / "set5" / "bird.png") as image:
        image.rotate(90).save(mirror / "bird.png")
    monkeypatch.setenv("INVPROB_DATA_MIRROR", mirror.parent.as_uri())
    (fresh_root / "set5" / "bird.png").unlink()
    with pytest.raises(DataNotFoundError, match="bird.png"):
        fetch("set5", progress=False)
    assert not (fresh_root / "set5" / "bird.png").exists()


def test_a_bmp_source_is_checked_then_stored_losslessly_as_png(fresh_root, monkeypatch, tmp_path):
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    source = tmp_path / "img_GT.bmp"
    Image.fromarray(pixels).save(source)
    dataset = Dataset("toy", "toy", "a toy set", "none", "someone/repo", "0" * 40,
                      {"img.png": ("testsets/img_GT.bmp", sha256(source), pixels_sha256(source))})
    monkeypatch.setitem(DATASETS, "toy", dataset)
    urls = []

    def download(url, dst, **kwargs):
        urls.append(url)
        Path(dst).write_bytes(source.read_bytes())

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    folder = fetch("toy", progress=False)
    assert urls == ["https://raw.githubusercontent.com/someone/repo/" + "0" * 40 + "/testsets/img_GT.bmp"]
    assert np.array_equal(np.asarray(Image.open(folder / "img.png")), pixels)
    assert [p.name for p in folder.iterdir()] == ["img.png"]  # no temporary file left
    assert fetch("toy", verify=True, progress=False) == folder


def test_a_mirror_that_is_not_a_url_is_one_line(fresh_root, monkeypatch):
    monkeypatch.setenv("INVPROB_DATA_MIRROR", "notaurl")
    with pytest.raises(InputError, match="INVPROB_DATA_MIRROR"):
        fetch("set12", progress=False)
    env = dict(os.environ, INVPROB_DATA_MIRROR="notaurl")
    proc = subprocess.run([sys.executable, "-m", "invprob.app.cli", "fetch-data", "set12", "--quiet"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "INVPROB_DATA_MIRROR" in proc.stderr


def test_unknown_names_are_one_line():
    with pytest.raises(KeyError, match="choose one of"):
        fetch("set13")
    proc = subprocess.run([sys.executable, "-m", "invprob.app.cli", "fetch-data", "set13"], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "set13" in proc.stderr


@needs_data
def test_train_on_train400_in_a_fresh_data_folder_installs_it_or_names_the_file(tmp_path):
    env = dict(os.environ, INVPROB_DATA=str(tmp_path / "data"), INVPROB_DATA_MIRROR=(tmp_path / "offline").as_uri())
    args = [sys.executable, "-m", "invprob.app.cli", "train", "data=train400", f"out={tmp_path / 'run'}",
            "image_size=16", "num_steps=1", "batch_size=2", "block_out_channels=[8,16]", "holdout=0", "quiet=true"]
    offline = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert offline.returncode == 2, offline.stderr
    assert offline.stderr.count("\n") == 1 and "test_001.png" in offline.stderr and "sha256" in offline.stderr
    env["INVPROB_DATA_MIRROR"] = DATA.as_uri()
    online = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert online.returncode == 0, online.stderr
    assert len(list((tmp_path / "data" / "train400").glob("*.png"))) == 400
    assert (tmp_path / "run" / "ema.safetensors").is_file()
