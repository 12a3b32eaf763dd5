"""Adapter exactness on analytic models, diffusers round trips, safe checkpoint loading."""


import pytest
import torch

from conftest import small_gmm, tiny_unet
from invprob import Problem, noise, sampling
from invprob.operators import Inpainting
from invprob.errors import CheckpointError
from invprob.priors import EDMPrior, FlowPrior, VPPrior, from_diffusers, load_state_dict, sha256
from invprob.registry import get_solver

SIGMAS = [0.05, 0.3, 1.0, 5.0, 50.0]


@pytest.fixture(scope="module")
def gmm():
    return small_gmm(d_shape=(1, 2, 2), K=3, seed=11)


def alphas():
    return sampling.alphas_cumprod_from_betas(sampling.linear_betas(1000))


def vp_network(gmm, kind, adapter_box):
    """The exact GMM denoiser re-expressed as an ε-, v- or x0-network of the DDPM schedule."""
    def net(x_t, t):
        sigma = adapter_box[0].t_to_sigma(t).to(x_t.dtype)
        abar = (1 / (1 + sigma**2)).reshape(-1, 1, 1, 1)
        x0 = gmm.denoise(x_t / abar.sqrt(), sigma)
        eps = (x_t - abar.sqrt() * x0) / (1 - abar).sqrt()
        return {"epsilon": eps, "v_prediction": abar.sqrt() * eps - (1 - abar).sqrt() * x0, "sample": x0}[kind]
    return net


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction", "sample"])
def test_vp_adapters_return_the_exact_denoiser(gmm, kind):
    box = []
    prior = VPPrior(vp_network(gmm, kind, box), alphas(), prediction=kind, x_shape=(1, 2, 2), data_range=None)
    box.append(prior)
    x = torch.randn(len(SIGMAS), 1, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 3
    sigma = torch.tensor(SIGMAS, dtype=torch.float64)
    assert torch.allclose(prior.denoise(x, sigma), gmm.denoise(x, sigma), atol=1e-10, rtol=1e-9)


def test_vp_adapter_timestep_mapping_hits_the_training_grid():
    prior = VPPrior(lambda x, t: x, alphas())
    sigma = sampling.sigma_from_alphas_cumprod(alphas())
    t = prior.sigma_to_t(sigma[[0, 10, 500, 999]])
    assert torch.allclose(t, torch.tensor([0.0, 10.0, 500.0, 999.0], dtype=torch.float64), atol=1e-9)


def test_flow_adapter_returns_the_exact_denoiser(gmm):
    def velocity(x_t, t):  # rectified flow x_t = (1-t) x0 + t ε, v = ε - x0
        t = t.reshape(-1, 1, 1, 1)
        sigma = t / (1 - t)
        x0 = gmm.denoise(x_t / (1 - t), sigma.flatten())
        eps = (x_t - (1 - t) * x0) / t
        return eps - x0

    prior = FlowPrior(velocity, time_scale=1.0, x_shape=(1, 2, 2), data_range=None)
    x = torch.randn(len(SIGMAS), 1, 2, 2, dtype=torch.float64) * 2
    sigma = torch.tensor(SIGMAS, dtype=torch.float64)
    assert torch.allclose(prior.denoise(x, sigma), gmm.denoise(x, sigma), atol=1e-10)


def test_edm_preconditioning_inverts_to_the_exact_denoiser(gmm):
    sd = 0.5

    def raw(x_in, c_noise):  # F such that c_skip x + c_out F = D
        sigma = (4 * c_noise).exp()
        s = sigma.reshape(-1, 1, 1, 1)
        x = x_in * (s**2 + sd**2).sqrt()
        c_skip, c_out = sd**2 / (s**2 + sd**2), s * sd / (s**2 + sd**2).sqrt()
        return (gmm.denoise(x, sigma) - c_skip * x) / c_out

    prior = EDMPrior(raw, sigma_data=sd, data_range=None)
    x = torch.randn(len(SIGMAS), 1, 2, 2, dtype=torch.float64)
    sigma = torch.tensor(SIGMAS, dtype=torch.float64)
    assert torch.allclose(prior.denoise(x, sigma), gmm.denoise(x, sigma), atol=1e-10)


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_diffusers_directory_roundtrip(tmp_path, prediction):
    from diffusers import DDPMScheduler

    unet = tiny_unet()
    unet.save_pretrained(tmp_path / "unet")
    scheduler = DDPMScheduler(num_train_timesteps=1000, prediction_type=prediction)
    scheduler.save_pretrained(tmp_path / "scheduler")
    prior = from_diffusers(tmp_path)
    assert prior.x_shape == (1, 8, 8) and prior.prediction == prediction
    # At a training timestep the adapter must equal the textbook conversion of the raw output.
    t = 400
    abar = scheduler.alphas_cumprod[t]
    sigma = ((1 - abar) / abar).sqrt()
    x = torch.randn(2, 1, 8, 8)
    x_t = x * abar.sqrt()
    with torch.no_grad():
        out = unet(x_t, torch.full((2,), float(t))).sample
        expected = (x_t - (1 - abar).sqrt() * out) / abar.sqrt() if prediction == "epsilon" else \
            abar.sqrt() * x_t - (1 - abar).sqrt() * out
        got = prior.denoise(x, sigma.expand(2).float())
    assert torch.allclose(got, expected, atol=1e-4)


def test_diffusers_flow_roundtrip(tmp_path):
    from diffusers import FlowMatchEulerDiscreteScheduler

    unet = tiny_unet()
    unet.save_pretrained(tmp_path / "unet")
    FlowMatchEulerDiscreteScheduler().save_pretrained(tmp_path / "scheduler")
    prior = from_diffusers(tmp_path)
    assert isinstance(prior, FlowPrior)
    x = torch.randn(2, 1, 8, 8)
    sigma = torch.tensor([0.5, 2.0])
    t = sigma / (1 + sigma)
    with torch.no_grad():
        x_t = x / (1 + sigma).reshape(-1, 1, 1, 1)
        expected = x_t - t.reshape(-1, 1, 1, 1) * unet(x_t, t * 1000).sample
        assert torch.allclose(prior.denoise(x, sigma), expected, atol=1e-5)


def test_missing_scheduler_and_directory_errors(tmp_path):
    tiny_unet().save_pretrained(tmp_path / "unet")
    with pytest.raises(CheckpointError, match="scheduler"):
        from_diffusers(tmp_path)
    with pytest.raises(CheckpointError, match="not found"):
        from_diffusers(tmp_path / "nope")


def test_safe_loading_checksums_and_pickles(tmp_path):
    from safetensors.torch import save_file

    weights = {"w": torch.arange(6.0).reshape(2, 3)}
    st = tmp_path / "w.safetensors"
    save_file(weights, str(st))
    digest = sha256(st)
    assert torch.equal(load_state_dict(st, digest)["w"], weights["w"])
    pt = tmp_path / "w.pt"
    torch.save(weights, pt)
    assert torch.equal(load_state_dict(pt)["w"], weights["w"])
    # tampered file: checksum mismatch
    data = bytearray(st.read_bytes())
    data[-1] ^= 0xFF
    st.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_state_dict(st, digest)
    # truncated file
    pt.write_bytes(pt.read_bytes()[:20])
    with pytest.raises(CheckpointError, match="refusing"):
        load_state_dict(pt)
    # a pickled object (code) is refused, never executed
    evil = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(1), "payload": _Payload()}, evil)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_state_dict(evil)
    with pytest.raises(CheckpointError, match="not found"):
        load_state_dict(tmp_path / "missing.safetensors", "abc")


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_max_batch_chunks_network_calls_with_the_same_result_and_one_nfe():
    """``Prior.max_batch``: the network never sees more than that many images, the denoised
    batch equals the unchunked one, and a solver still counts one NFE per denoise call."""
    seen = []

    def network(x, sigma):  # an EDM x0-network (float32, as a network's): a small GMM's exact denoiser
        seen.append(len(x))
        return gmm_exact.denoise(x.double(), sigma.double()).float()

    gmm_exact = small_gmm(d_shape=(1, 2, 2), K=3, seed=11)
    prior = EDMPrior(network, preconditioned=True, x_shape=(1, 2, 2))
    x = torch.randn(10, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    sigma = torch.linspace(0.1, 3.0, 10)
    whole = prior.denoise(x, sigma)
    prior.max_batch = 4
    seen.clear()
    torch.testing.assert_close(prior.denoise(x, sigma), whole)
    assert seen == [4, 4, 2]
    problem = Problem.simulate(Inpainting((1, 2, 2), kind="random", missing=0.5, seed=0), x[:2],
                               noise.Gaussian(0.05), generator=torch.Generator().manual_seed(1))
    out = get_solver("enkg", ensemble_size=6, num_steps=4).solve(problem, prior, num_samples=1, generator=0)
    assert out.nfe == get_solver("enkg", num_steps=4).nfe_per_sample
    assert max(seen) <= 4 and len(seen) > out.nfe  # 2 × 6 particles per call, in chunks of 4
    for bad in (0, 2.0, True):  # refused when set, before any network call
        with pytest.raises(ValueError, match="max_batch"):
            prior.max_batch = bad
    assert prior.max_batch == 4


class _TinyVPNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x_t, t):
        return self.conv(x_t)


def test_prior_dtype_is_the_networks_not_the_float64_schedule_table():
    # VPPrior keeps its σ table in float64; a float32 network must still report (and get) float32
    prior = VPPrior(_TinyVPNet(), alphas(), x_shape=(1, 4, 4))
    assert prior.log_sigmas.dtype == torch.float64 and prior.dtype == torch.float32
    problem = Problem.simulate(Inpainting((1, 4, 4), kind="random", missing=0.5, seed=0), torch.zeros(1, 1, 4, 4),
                               noise.Gaussian(0.05), generator=torch.Generator().manual_seed(1))
    out = get_solver("dps", num_steps=3).solve(problem, prior, generator=0, progress=False)
    assert out.samples.dtype == torch.float32 and out.samples.isfinite().all()
    assert prior.to(torch.float64).dtype == torch.float64  # and the table still maps σ to t
    sigma = sampling.sigma_from_alphas_cumprod(alphas())[[3]]
    assert torch.allclose(prior.to(torch.float32).sigma_to_t(sigma), torch.tensor([3.0], dtype=torch.float64))


def test_parameter_free_networks_declare_their_dtype():
    assert EDMPrior(lambda x, s: x, preconditioned=True).dtype == torch.float32
    assert EDMPrior(lambda x, s: x, preconditioned=True, dtype=torch.float64).dtype == torch.float64
    assert FlowPrior(lambda x, t: x, dtype=torch.float64).dtype == torch.float64
    assert VPPrior(lambda x, t: x, alphas(), dtype=torch.float64).dtype == torch.float64
    with pytest.raises(ValueError, match="`dtype` must be a floating torch.dtype"):
        EDMPrior(lambda x, s: x, dtype="float64")
    with pytest.raises(ValueError, match="the network's parameters are"):
        VPPrior(_TinyVPNet(), alphas(), dtype=torch.float64)
