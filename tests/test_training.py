"""Training: exact resume, checkpoint errors (tiny models on random data)."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from invprob.priors import CheckpointError
from invprob.priors.shipped import load_shipped
from invprob.training import TrainConfig, train


def tiny(tmp_path, out, num_steps, objective="edm"):
    data = tmp_path / "data.npy"
    if not data.exists():
        np.save(data, np.random.default_rng(0).random((12, 8, 8)).astype(np.float32))
    return TrainConfig(data=str(data), out=str(tmp_path / out), objective=objective, image_size=8, channels=1,
                       num_steps=num_steps, batch_size=4, checkpoint_every=2, block_out_channels=(8, 16),
                       holdout=2, seed=3)


@pytest.mark.parametrize("objective", ["edm", "flow"])
def test_resume_continues_exactly(tmp_path, objective):
    straight = train(tiny(tmp_path, "straight", 4, objective), progress=False)
    first = tiny(tmp_path, "resumed", 2, objective)
    train(first, progress=False)
    resumed = train(tiny(tmp_path, "resumed", 4, objective), progress=False)  # picks up at step 2
    for name in ("model.safetensors", "ema.safetensors"):
        a, b = load_file(str(straight / name)), load_file(str(resumed / name))
        assert all(torch.equal(a[k], b[k]) for k in a)
    la = torch.load(straight / "trainer.pt", weights_only=True)
    lb = torch.load(resumed / "trainer.pt", weights_only=True)
    assert la["step"] == lb["step"] == 4 and torch.equal(la["losses"], lb["losses"])
    assert (resumed / "loss.png").is_file() and (resumed / "samples.png").is_file()
    prior = load_shipped("tiny", folder=resumed)
    x = torch.randn(2, 1, 8, 8)
    assert prior.denoise(x, torch.tensor([0.5, 1.0])).shape == x.shape


def test_corrupt_and_mismatched_weights_are_clear_errors(tmp_path):
    out = train(tiny(tmp_path, "run", 2), progress=False)
    weights = out / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="safetensors"):
        load_shipped("run", folder=out)
    out2 = train(tiny(tmp_path, "run2", 2), progress=False)
    config = json.loads((out2 / "config.json").read_text())
    config["unet"]["in_channels"] = 3  # wrong channel count for these weights
    (out2 / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="do not match the architecture"):
        load_shipped("run2", folder=out2)
    with pytest.raises(CheckpointError, match="expected"):
        load_shipped("nonexistent-prior")
