import numpy as np
import torch
from scipy import stats

from invprob import noise


def test_gaussian_log_likelihood_matches_scipy(gen):
    y_clean = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    model = noise.Gaussian(0.3)
    y = model.sample(y_clean, gen)
    expected = stats.norm(y_clean.numpy(), 0.3).logpdf(y.numpy()).sum(1)
    assert np.allclose(model.log_likelihood(y, y_clean).numpy(), expected)
    assert abs((y - y_clean).std().item() - 0.3) < 0.15


def test_gaussian_complex_noise_per_component(gen):
    y_clean = torch.zeros(2, 20000, dtype=torch.complex128)
    y = noise.Gaussian(0.1).sample(y_clean, gen)
    assert abs(y.real.std().item() - 0.1) < 0.003 and abs(y.imag.std().item() - 0.1) < 0.003


def test_poisson_matches_scipy(gen):
    model = noise.Poisson(rate=0.5)
    y_clean = torch.rand(2, 6, generator=gen, dtype=torch.float64) * 2 - 1
    y = model.sample(y_clean, gen)
    counts = ((y + 1) / 2 * 0.5 * 255).round().numpy()
    lam = ((y_clean + 1) / 2 * 0.5 * 255).numpy()
    assert np.allclose(counts, np.round(counts))
    expected = stats.poisson(lam).logpmf(counts).sum(1)
    assert np.allclose(model.log_likelihood(y, y_clean).numpy(), expected)
