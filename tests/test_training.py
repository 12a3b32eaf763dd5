"""Training: exact resume, checkpoint errors (tiny models on random data)."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from invprob.errors import CheckpointError
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


def test_per_sample_crops_and_flips(tmp_path):
    from invprob.training import training_batch

    data = tmp_path / "big.npy"
    np.save(data, np.arange(16 * 16, dtype=np.float32).reshape(1, 16, 16).repeat(3, 0) / 256)
    config = TrainConfig(data=str(data), image_size=8, batch_size=32, holdout=0, flips=True)
    from invprob.datasets import load_images

    train_x, _ = load_images(config.data, 8)
    x, _ = training_batch(train_x, 0, config)
    assert x.shape == (32, 1, 8, 8)
    corners = {round(float(v), 4) for v in x[:, 0, 0, 0]}
    assert len(corners) > 5  # crops differ between samples of one batch
    rows = x[:, 0, 0]
    increasing = (rows[:, 1:] > rows[:, :-1]).all(1)
    assert 0 < int(increasing.sum()) < 32  # some samples flipped left-right, some not
    again, _ = training_batch(train_x, 0, config)
    assert torch.equal(x, again)  # step k's batch is a function of (seed, k)


def test_resume_with_other_architecture_and_bad_sizes_are_named(tmp_path):
    train(tiny(tmp_path, "run", 2), progress=False)
    other = tiny(tmp_path, "run", 4)
    other.block_out_channels = (16, 16)
    with pytest.raises(ValueError, match="another architecture"):
        train(other, progress=False)
    big = tiny(tmp_path, "big", 2)
    big.image_size = 16
    with pytest.raises(ValueError, match="image_size"):
        train(big, progress=False)
    wrong = tiny(tmp_path, "wrong", 2)
    wrong.channels = 3
    with pytest.raises(ValueError, match="channels"):
        train(wrong, progress=False)


def test_invprob_train_is_a_hydra_app_that_resumes(tmp_path):
    import subprocess
    import sys

    np.save(tmp_path / "data.npy", np.random.default_rng(0).random((12, 8, 8)).astype(np.float32))
    args = [sys.executable, "-m", "invprob.app.cli", "train", "data=data.npy", "out=run", "image_size=8",
            "batch_size=4", "block_out_channels=[8,16]", "holdout=2", "checkpoint_every=2", "quiet=true"]
    first = subprocess.run(args + ["num_steps=2"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    second = subprocess.run(args + ["num_steps=4"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    state = torch.load(tmp_path / "run" / "trainer.pt", weights_only=True)
    assert int(state["step"]) == 4 and len(state["losses"]) == 4  # resumed at step 2, not restarted
    assert (tmp_path / "run" / "hydra" / ".hydra" / "config.yaml").is_file()


def test_export_config_of_crops_of_resized_images_is_the_resized_image():
    from types import SimpleNamespace

    from invprob.training import export_config

    unet = SimpleNamespace(config={})
    crops = export_config(TrainConfig(data="brain-mri", image_size=96, resize=128), unet)
    assert crops["x_shape"] == [1, 128, 128]  # trained on 96² crops of 128² slices: meant for 128²
    assert export_config(TrainConfig(data="mnist", image_size=32), unet)["x_shape"] == [1, 32, 32]


def test_latent_recipe_autoencoder_then_latent_edm_resumes_exports_and_solves(tmp_path):
    """objective=autoencoder, then objective=latent-edm on its latents: exact resume, an exported
    folder that loads as a LatentPrior (checksums of both files checked), a latent solver runs."""
    from dataclasses import replace

    from invprob import Problem, noise
    from invprob.operators import Inpainting
    from invprob.priors import LatentPrior
    from invprob.registry import get_solver
    from invprob.training import export_prior

    ae = train(replace(tiny(tmp_path, "ae", 3, "autoencoder"), latent_channels=2), progress=False)
    with pytest.raises(ValueError, match="autoencoder"):
        train(tiny(tmp_path, "bad", 2, "latent-edm"), progress=False)  # no autoencoder given
    latent = lambda out, n: replace(tiny(tmp_path, out, n, "latent-edm"), autoencoder=str(ae))  # noqa: E731
    straight = train(latent("ldm", 4), progress=False)
    train(latent("resumed", 2), progress=False)
    resumed = train(latent("resumed", 4), progress=False)
    a, b = load_file(str(straight / "ema.safetensors")), load_file(str(resumed / "ema.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    config = json.loads((straight / "config.json").read_text())
    assert config["x_shape"] == [2, 4, 4] and config["image_shape"] == [1, 8, 8]  # 8×8 images, f = 2
    exported = export_prior(straight, tmp_path / "export")
    prior = load_shipped("tiny", folder=exported)
    assert isinstance(prior, LatentPrior) and prior.x_shape == (2, 4, 4)
    op = Inpainting((1, 8, 8), missing=0.5).to(torch.float32)
    x = torch.rand(1, 1, 8, 8) * 2 - 1
    problem = Problem.simulate(op, x, noise.Gaussian(0.05), generator=torch.Generator().manual_seed(0))
    result = get_solver("latent-daps", num_steps=3, langevin_steps=2).solve(problem, prior, num_samples=2,
                                                                            generator=0, progress=False)
    assert result.samples.shape == (1, 2, 1, 8, 8) and torch.isfinite(result.samples).all()
    (exported / "autoencoder.safetensors").write_bytes(b"tampered")
    with pytest.raises(CheckpointError):
        load_shipped("tiny", folder=exported)


def test_warmup_resumes_exactly_and_half_precision_export_loads(tmp_path):
    """lr_warmup is a function of the step (a resumed run equals a straight one); a bfloat16
    export is half the size, records its storage dtype and denoises as the float32 export does
    up to bfloat16 rounding."""
    from dataclasses import replace

    from invprob.training import export_prior

    warm = lambda out, n: replace(tiny(tmp_path, out, n), lr_warmup=3)  # noqa: E731
    straight = train(warm("straight", 4), progress=False)
    train(warm("resumed", 2), progress=False)
    resumed = train(warm("resumed", 4), progress=False)
    a, b = load_file(str(straight / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    plain = train(tiny(tmp_path, "plain", 4), progress=False)
    c = load_file(str(plain / "model.safetensors"))
    assert not all(torch.equal(a[k], c[k]) for k in a)  # the warm-up changed the steps
    full = export_prior(straight, tmp_path / "full")
    half = export_prior(straight, tmp_path / "half", dtype="bfloat16")
    assert json.loads((half / "config.json").read_text())["storage_dtype"] == "bfloat16"
    assert {v.dtype for v in load_file(str(half / "model.safetensors")).values()} == {torch.bfloat16}
    assert (half / "model.safetensors").stat().st_size < 0.6 * (full / "model.safetensors").stat().st_size
    x = torch.randn(2, 1, 8, 8)
    d_full = load_shipped("t", folder=full).denoise(x, 0.5)
    d_half = load_shipped("t", folder=half).denoise(x, 0.5)
    assert d_half.dtype == torch.float32 and 0 < (d_full - d_half).abs().max() < 0.05
    with pytest.raises(ValueError, match="dtype"):
        export_prior(straight, tmp_path / "bad", dtype="int8")
    with pytest.raises(ValueError, match="`lr_warmup` must be a non-negative integer"):
        train(replace(tiny(tmp_path, "negative", 1), lr_warmup=-1), progress=False)


def test_init_from_starts_at_an_exported_prior_and_refuses_another_architecture(tmp_path):
    """init_from: a fresh run's network and EMA start at the exported weights (recorded with their
    sha256 and steps); a run started so and resumed equals one that ran straight through, and
    keeps the record; another architecture, objective or a missing source is one named error."""
    from dataclasses import replace

    from invprob.training import export_prior

    source = export_prior(train(tiny(tmp_path, "source", 4), progress=False), tmp_path / "export")
    start = train(replace(tiny(tmp_path, "zero", 1), init_from=str(source), lr=1e-12), progress=False)
    w0, w1 = load_file(str(source / "model.safetensors")), load_file(str(start / "ema.safetensors"))
    assert all(torch.allclose(w0[k], w1[k], atol=1e-6) for k in w0)  # a step at lr 1e-12 moves nothing
    fresh = load_file(str(train(tiny(tmp_path, "fresh", 1), progress=False) / "ema.safetensors"))
    assert not all(torch.allclose(w0[k], fresh[k], atol=1e-6) for k in w0)  # unlike a run from scratch
    record = json.loads((start / "config.json").read_text())["init_from"]
    assert record["sha256"] == json.loads((source / "config.json").read_text())["sha256"]
    assert record["steps_done"] == 4
    warm = lambda out, n: replace(tiny(tmp_path, out, n), init_from=str(source))  # noqa: E731
    straight = train(warm("straight", 4), progress=False)
    train(warm("resumed", 2), progress=False)
    resumed = train(warm("resumed", 4), progress=False)
    a, b = load_file(str(straight / "ema.safetensors")), load_file(str(resumed / "ema.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((resumed / "config.json").read_text())["init_from"] == record
    other = replace(tiny(tmp_path, "other", 1), init_from=str(source), block_out_channels=(16, 16))
    with pytest.raises(ValueError, match="init_from.*another architecture"):
        train(other, progress=False)
    with pytest.raises(ValueError, match="init_from.*objective='edm'"):
        train(replace(tiny(tmp_path, "flow", 1, "flow"), init_from=str(source)), progress=False)
    with pytest.raises(ValueError, match="init_from.*not an exported prior"):
        train(replace(tiny(tmp_path, "none", 1), init_from=str(tmp_path / "missing")), progress=False)


def test_compile_runs_the_training_steps_through_torch_compile(tmp_path, monkeypatch):
    """compile=True hands the training network to torch.compile, and the checkpoint is the
    network's own state (no compile wrapper's key prefix)."""
    from dataclasses import replace

    compiled = []

    def spy(module, *args, **kwargs):
        compiled.append(module)
        return module

    monkeypatch.setattr(torch, "compile", spy)
    out = train(replace(tiny(tmp_path, "run", 1), compile=True), progress=False)
    assert len(compiled) == 1 and type(compiled[0]).__name__ == "UNet2DModel"
    assert not any(k.startswith("_orig_mod") for k in load_file(str(out / "model.safetensors")))
    train(tiny(tmp_path, "eager", 1), progress=False)
    assert len(compiled) == 1  # compile=False: not called


@pytest.mark.slow
def test_compiled_training_matches_eager(tmp_path):
    """compile=True (torch.compile of the training network) computes the eager run's losses, step
    by step, up to floating-point reordering (the same weights, batches and noise)."""
    from dataclasses import replace

    eager = train(tiny(tmp_path, "eager", 3), progress=False)
    compiled = train(replace(tiny(tmp_path, "compiled", 3), compile=True), progress=False)
    la = torch.load(eager / "trainer.pt", weights_only=True)["losses"]
    lb = torch.load(compiled / "trainer.pt", weights_only=True)["losses"]
    assert len(la) == len(lb) == 3 and torch.allclose(la, lb, rtol=1e-3)
