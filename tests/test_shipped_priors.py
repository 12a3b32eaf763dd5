"""Shipped priors load offline and denoise held-apart images (numbers: benchmarks/results/priors.md)."""

import torch

from conftest import needs_data
from invprob.metrics import psnr
from invprob.registry import available, get_prior


def test_mnist_prior_is_listed_and_loads_with_its_checksum():
    assert "mnist" in available()["priors"]
    prior = get_prior("mnist")
    assert prior.x_shape == (1, 32, 32) and prior.data_range == (-1.0, 1.0)


@needs_data
def test_mnist_prior_denoises_held_apart_digits():
    from invprob.training import load_images

    prior = get_prior("mnist")
    clean = load_images("mnist", 32, holdout=500)[1][:2]  # MNIST test images 9500, 9501: never trained on
    g = torch.Generator().manual_seed(0)
    noisy = clean + 0.2 * torch.randn(clean.shape, generator=g)
    with torch.no_grad():
        denoised = prior.denoise(noisy, 0.2)
    gain = (psnr(denoised, clean) - psnr(noisy, clean)).min().item()
    # benchmark (64 images): 22.74 dB -> 30.40 dB at sigma = 0.2; allow slack for two images
    assert gain > 4.0, gain
