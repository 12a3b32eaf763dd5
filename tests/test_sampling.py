import torch

from invprob import sampling


def test_karras_endpoints_and_monotone():
    s = sampling.karras_sigmas(18, 0.002, 80.0, 7.0, append_zero=True)
    assert s.shape == (19,)
    assert torch.isclose(s[0], torch.tensor(80.0, dtype=s.dtype))
    assert torch.isclose(s[-2], torch.tensor(0.002, dtype=s.dtype))
    assert s[-1] == 0 and (s[:-1].diff() < 0).all()


def test_vp_sigma_roundtrip_and_ddpm_values():
    abar = sampling.alphas_cumprod_from_betas(sampling.linear_betas(1000))
    sigma = sampling.sigma_from_alphas_cumprod(abar)
    assert torch.allclose(sampling.alphas_cumprod_from_sigma(sigma), abar)
    # ᾱ_T of the DDPM linear schedule is ≈ 4.04e-5 (σ_T ≈ 157)
    assert abs(abar[-1].item() - 4.04e-5) < 0.05e-5
    assert abs(sigma[-1].item() - 157.4) < 1.0


def test_flow_time_roundtrip():
    t = torch.linspace(0.01, 0.99, 11, dtype=torch.float64)
    assert torch.allclose(sampling.flow_time_from_sigma(sampling.sigma_from_flow_time(t)), t)


def test_respace():
    assert sampling.respace_timesteps(1000, 1000).tolist() == list(range(1000))
    r = sampling.respace_timesteps(1000, 4)
    assert r.tolist() == [0, 333, 666, 999]
