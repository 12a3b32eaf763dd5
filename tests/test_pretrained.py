"""Real architectures with random weights, saved in their native formats and loaded back through
the model-card path (no download): ADM (deepinv DiffUNet), diffusers UNet2DModel, Stable
Diffusion (AutoencoderKL + UNet2DConditionModel + CLIP), LDM VQModel; mixed precision options."""

import json

import pytest
import torch

from invprob.errors import CheckpointError
from invprob.priors import sha256
from invprob.priors.cards import fetch, load_from_card
from invprob.registry import available, get_prior


def _card(tmp_path, architecture, paths, **extra):
    files = [{"path": p, "sha256": sha256(tmp_path / p)} for p in paths]
    return {"name": "tiny", "architecture": architecture, "files": files, **extra}


def _x0_from_vp(x_t, out, abar_t, prediction):
    a, s = abar_t.sqrt(), (1 - abar_t).sqrt()
    if prediction == "epsilon":
        return (x_t - s * out) / a
    return a * x_t - s * out  # v-prediction


@pytest.fixture(scope="module")
def adm_file(tmp_path_factory):
    from invprob.priors.adm import build_adm

    torch.manual_seed(0)
    unet = build_adm("ffhq").eval()
    folder = tmp_path_factory.mktemp("adm")
    torch.save(unet.state_dict(), folder / "ffhq_10m.pt")  # the native guided-diffusion format
    return folder, unet


def test_adm_checkpoint_loads_through_its_card_and_matches_the_network(adm_file):
    from invprob import sampling

    folder, unet = adm_file
    card = _card(folder, "adm", ["ffhq_10m.pt"], variant="ffhq", resolution=64)
    prior = load_from_card(card, folder=folder)
    assert prior.x_shape == (3, 64, 64)
    abar = sampling.alphas_cumprod_from_betas(sampling.linear_betas(1000, 1e-4, 0.02))
    t = torch.tensor([100, 600])
    x0 = torch.rand(2, 3, 64, 64) * 2 - 1
    a = abar[t].float().reshape(-1, 1, 1, 1)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * torch.randn_like(x0)
    with torch.no_grad():
        eps = unet.forward_diffusion(x_t, t.float())[:, :3]  # learned-σ channels dropped
        expected = _x0_from_vp(x_t, eps, a, "epsilon")
        sigma = ((1 - a) / a).sqrt().flatten()
        got = prior.denoise(x_t / a.sqrt(), sigma)
    assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()


def test_adm_checkpoint_errors_name_the_problem(adm_file, tmp_path):
    folder, unet = adm_file
    card = _card(folder, "adm", ["ffhq_10m.pt"], variant="ffhq", resolution=64)
    card["files"][0]["sha256"] = "0" * 64
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_from_card(card, folder=folder)
    state = unet.state_dict()
    del state["out.2.weight"]
    torch.save(state, tmp_path / "ffhq_10m.pt")
    with pytest.raises(CheckpointError, match="1 missing keys"):
        load_from_card(_card(tmp_path, "adm", ["ffhq_10m.pt"], variant="ffhq"), folder=tmp_path)
    with pytest.raises(CheckpointError, match=r"missing file ffhq_10m.pt .* place it at"):
        load_from_card(_card(folder, "adm", ["ffhq_10m.pt"]), folder=tmp_path / "empty")


def test_diffusers_unet_directory_through_a_card(tmp_path):
    from diffusers import DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       norm_num_groups=4, layers_per_block=1).eval()
    unet.save_pretrained(tmp_path / "unet")
    DDPMScheduler(prediction_type="v_prediction").save_pretrained(tmp_path / "scheduler")
    card = _card(tmp_path, "diffusers-unet", ["unet/config.json", "unet/diffusion_pytorch_model.safetensors",
                                              "scheduler/scheduler_config.json"])
    prior = load_from_card(card, folder=tmp_path)
    abar = DDPMScheduler().alphas_cumprod
    t = torch.tensor([50, 500])
    a = abar[t].reshape(-1, 1, 1, 1)
    x_t = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        expected = _x0_from_vp(x_t, unet(x_t, t).sample, a, "v_prediction")
        got = prior.denoise(x_t / a.sqrt(), ((1 - a) / a).sqrt().flatten())
    assert torch.allclose(got, expected, atol=1e-5)


def _tiny_clip(folder):
    pytest.importorskip("transformers")
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in letters:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    (folder / "tokenizer").mkdir(parents=True)
    (folder / "tokenizer" / "vocab.json").write_text(json.dumps(vocab))
    (folder / "tokenizer" / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(str(folder / "tokenizer" / "vocab.json"), str(folder / "tokenizer" / "merges.txt"),
                  model_max_length=77) \
        .save_pretrained(folder / "tokenizer")
    config = CLIPTextConfig(vocab_size=len(vocab), hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                            num_attention_heads=2, max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                            pad_token_id=1)
    CLIPTextModel(config).eval().save_pretrained(folder / "text_encoder")


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    """A Stable Diffusion folder (diffusers layout) of tiny random-weight instances of SD's classes:
    ``(folder, vae, unet)``; the VAE halves the resolution."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    folder = tmp_path_factory.mktemp("tiny-sd")
    torch.manual_seed(0)
    vae = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(8, 16), latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=4, layers_per_block=1).eval()
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16),
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=8,
                                attention_head_dim=2, norm_num_groups=4, layers_per_block=1).eval()
    vae.save_pretrained(folder / "vae")
    unet.save_pretrained(folder / "unet")
    DDPMScheduler(prediction_type="epsilon", beta_schedule="scaled_linear", beta_start=0.00085,
                  beta_end=0.012).save_pretrained(folder / "scheduler")  # SD's schedule
    _tiny_clip(folder)
    return folder, vae, unet


def test_stable_diffusion_layout_through_a_card(tiny_sd):
    from diffusers import DDPMScheduler

    tmp_path, vae, unet = tiny_sd
    paths = [str(p.relative_to(tmp_path)) for p in sorted(tmp_path.rglob("*")) if p.is_file()]
    card = _card(tmp_path, "stable-diffusion", paths, resolution=16)
    prior = load_from_card(card, folder=tmp_path)
    assert prior.x_shape == (4, 8, 8) and prior.image_shape == (3, 16, 16)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        z = prior.encode(x)
        assert torch.allclose(z, vae.encode(x).latent_dist.mean * vae.config.scaling_factor)
        assert torch.allclose(prior.decode(z), vae.decode(z / vae.config.scaling_factor).sample, atol=1e-6)
        from invprob.priors.latent import encode_prompt

        emb = encode_prompt(tmp_path, "")
        abar = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).alphas_cumprod
        t = torch.tensor([100, 700])
        a = abar[t].reshape(-1, 1, 1, 1)
        z_t = torch.randn(2, 4, 8, 8)
        eps = unet(z_t, t, encoder_hidden_states=emb.expand(2, -1, -1)).sample
        expected = _x0_from_vp(z_t, eps, a, "epsilon")
        got = prior.denoise(z_t / a.sqrt(), ((1 - a) / a).sqrt().flatten())
        assert torch.allclose(got, expected, atol=1e-4)
        other = load_from_card(card, folder=tmp_path, prompt="a face")  # given-prompt conditioning
        assert not torch.allclose(other.denoise(z_t / a.sqrt(), ((1 - a) / a).sqrt().flatten()), got)


def test_ldm_vq_layout_through_a_card(tmp_path):
    from diffusers import DDIMScheduler, UNet2DModel, VQModel

    torch.manual_seed(0)
    vq = VQModel(in_channels=3, out_channels=3, block_out_channels=(8, 16), latent_channels=3,
                 down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                 num_vq_embeddings=16, norm_num_groups=4, layers_per_block=1).eval()
    unet = UNet2DModel(sample_size=8, in_channels=3, out_channels=3, block_out_channels=(8, 16),
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       norm_num_groups=4, layers_per_block=1).eval()
    vq.save_pretrained(tmp_path / "vqvae")
    unet.save_pretrained(tmp_path / "unet")
    DDIMScheduler().save_pretrained(tmp_path / "scheduler")
    paths = [str(p.relative_to(tmp_path)) for p in sorted(tmp_path.rglob("*")) if p.is_file()]
    prior = load_from_card(_card(tmp_path, "ldm-vq", paths), folder=tmp_path)
    assert prior.x_shape == (3, 8, 8) and prior.image_shape == (3, 16, 16)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        z = prior.encode(x)
        assert torch.allclose(z, vq.encode(x).latents)
        assert torch.allclose(prior.decode(z), vq.decode(z).sample, atol=1e-6)
        assert prior.denoise(torch.randn(2, 3, 8, 8), 1.0).shape == (2, 3, 8, 8)


def test_cards_are_listed_and_fetch_works_from_a_local_url_and_fails_clearly_offline(tmp_path, adm_file):
    names = available()["priors"]
    for name in ("ffhq-adm", "imagenet-adm", "stable-diffusion-1.5", "stable-diffusion-2.1", "ldm-celebahq-vq4"):
        assert name in names
    folder, _ = adm_file
    card = _card(folder, "adm", ["ffhq_10m.pt"], variant="ffhq", resolution=64)
    card["files"][0]["url"] = (folder / "ffhq_10m.pt").as_uri()  # file:// — the download path, offline
    root = fetch(card, tmp_path / "cache", progress=False)
    assert sha256(root / "ffhq_10m.pt") == card["files"][0]["sha256"]
    card["files"][0]["url"] = "http://invprob.invalid/ffhq_10m.pt"
    with pytest.raises(CheckpointError, match=r"offline. Place the files by hand: ffhq_10m.pt \(sha256 [0-9a-f]{64}\)"):
        fetch(card, tmp_path / "other", progress=False)
    with pytest.raises(CheckpointError, match="missing file ffhq_10m.pt"):
        get_prior("ffhq-adm", folder=str(tmp_path / "nowhere"))


def test_mixed_precision_and_channels_last_keep_float32_state():
    ref = get_prior("mnist")
    x = torch.randn(4, 1, 32, 32) * 0.5
    with torch.no_grad():
        base = ref.denoise(x, 0.5)
        bf16 = get_prior("mnist", dtype="bfloat16").denoise(x, 0.5)
        last = get_prior("mnist", channels_last=True).denoise(x, 0.5)
    assert bf16.dtype == torch.float32 and last.dtype == torch.float32
    assert (bf16 - base).norm() / base.norm() < 0.05  # bf16 network, float32 output
    assert torch.allclose(last, base, atol=1e-5)
    with pytest.raises(ValueError, match="dtype"):
        get_prior("mnist", dtype="float8")
    # a solver accepts a float32 problem with the bf16 prior (its interface is float32)
    from invprob import Problem, noise
    from invprob.operators import Inpainting
    from invprob.registry import get_solver

    fast = get_prior("mnist", dtype="bfloat16")
    assert fast.dtype == torch.float32 and next(fast.network.parameters()).dtype == torch.bfloat16
    problem = Problem.simulate(Inpainting((1, 32, 32), kind="random", missing=0.5, seed=0), x[:1],
                               noise.Gaussian(0.05), generator=torch.Generator().manual_seed(0))
    out = get_solver("dps", num_steps=2).solve(problem, fast, generator=0, progress=False)
    assert out.samples.dtype == torch.float32 and out.samples.isfinite().all()


def test_latent_solvers_run_from_the_cli_on_a_stable_diffusion_folder(tiny_sd, tmp_path):
    """`invprob solve prior=stable-diffusion-1.5 solver=psld ...` with the user's weights (here tiny
    random instances of SD's classes at 16² images): decoded RGB samples, PSNR, decoder calls."""
    import json

    import numpy as np
    from PIL import Image

    from invprob.app.cli import main

    folder, _, _ = tiny_sd
    Image.fromarray((np.random.default_rng(0).random((16, 16, 3)) * 255).astype("uint8")).save(tmp_path / "x.png")
    common = ["solve", "prior=stable-diffusion-1.5", f"+prior.folder={folder}", "prior.card.resolution=16",
              "operator=inpainting-random", "operator.x_shape=[3,16,16]", f"input={tmp_path / 'x.png'}",
              "num_samples=2", "quiet=true", "solver.num_steps=3"]
    for solver, extra in (("psld", []), ("stsl", ['prior.prompt="a face"'])):
        out = tmp_path / solver
        assert main([*common, f"solver={solver}", *extra, f"hydra.run.dir={out}"]) == 0
        metrics = json.loads((out / "metrics.json").read_text())
        assert np.load(out / "samples.npy").shape == (1, 2, 3, 16, 16)  # images, not latents
        assert metrics["decoder_calls"] >= 3 and np.isfinite(metrics["psnr_mean"][0])
