import math

import pytest
import torch

from invprob.evaluation import metrics


def test_sliced_wasserstein_of_shifted_gaussians(gen):
    d, n = 16, 20000
    shift = torch.full((d,), 0.5, dtype=torch.float64)
    a = torch.randn(n, d, generator=gen, dtype=torch.float64)
    b = torch.randn(n, d, generator=gen, dtype=torch.float64) + shift
    # Along a unit direction θ the two laws are N(0,1) and N(θ·shift, 1): W2 = |θ·shift|,
    # and E[(θ·shift)²] = |shift|² / d over uniform directions.
    expected = shift.norm() / math.sqrt(d)
    sw = metrics.sliced_wasserstein(a, b, num_projections=2000, generator=gen)
    assert abs(sw.item() - expected.item()) < 0.03
    assert metrics.sliced_wasserstein(a, a, generator=gen).item() == 0.0


def test_sliced_wasserstein_unequal_sizes_and_floor(gen):
    a = torch.randn(3000, 4, generator=gen, dtype=torch.float64)
    b = torch.randn(1000, 4, generator=gen, dtype=torch.float64)
    assert metrics.sliced_wasserstein(a, b, generator=gen) < 0.1
    floor = metrics.sliced_wasserstein_floor(lambda n, g: torch.randn(n, 4, generator=g, dtype=torch.float64),
                                             1000, generator=gen)
    assert 0 < floor < 0.1
    with pytest.raises(ValueError, match="dimensions"):
        metrics.sliced_wasserstein(a, torch.zeros(5, 3))


def test_coverage_calibrated_and_not(gen):
    samples = torch.randn(4000, 50, generator=gen, dtype=torch.float64)
    exact = torch.randn(4000, 50, generator=gen, dtype=torch.float64)
    assert abs(metrics.coverage(samples, exact, 0.9).item() - 0.9) < 0.01
    assert metrics.coverage(0.3 * samples, exact, 0.9).item() < 0.5  # over-confident sampler


def test_psnr_against_formula():
    ref = torch.zeros(1, 1, 8, 8)
    x = ref + 0.2  # in [-1,1] -> error 0.1 in [0,1] units
    assert abs(metrics.psnr(x, ref).item() - 20.0) < 1e-4
    assert metrics.ssim(ref + 0.0, ref).item() == pytest.approx(1.0, abs=1e-6)


def test_posterior_mean_error():
    s = torch.ones(10, 1, 2, 2)
    assert metrics.posterior_mean_error(s, torch.zeros(1, 2, 2)).item() == pytest.approx(1.0)


def test_std_error_correlation_marks_where_the_mean_is_wrong():
    from invprob.evaluation import std_error_correlation

    g = torch.Generator().manual_seed(0)
    error = torch.randn(2, 1, 16, 16, generator=g)
    assert torch.allclose(std_error_correlation(2 * error.abs() + 1, error), torch.ones(2), atol=1e-5)
    speckle = torch.rand(2, 1, 16, 16, generator=g)  # independent of the error
    assert std_error_correlation(speckle, error).abs().max() < 0.3
    blocks = std_error_correlation(error.abs(), error, block=8)
    assert blocks.shape == (2,) and torch.allclose(blocks, torch.ones(2), atol=1e-5)
    with pytest.raises(ValueError, match="same shape"):
        std_error_correlation(speckle, error[:1])
    with pytest.raises(ValueError, match="divides"):
        std_error_correlation(speckle, error, block=5)
    assert std_error_correlation(torch.zeros_like(error), error).isnan().all()  # a constant std map: undefined
    assert std_error_correlation(speckle.double(), error.double()).dtype == torch.float64


def test_metrics_json_correlation_is_null_for_identical_samples():
    from invprob.app.report import compute_metrics
    from invprob.evaluation import testbed

    _, problem, x_true = testbed.make_problem("inpainting", seed=0)
    same = (x_true[:, None] + 0.1).repeat(1, 3, *[1] * (x_true.dim() - 1))  # three identical samples (M, K, ...)
    assert compute_metrics(problem, same, x_true, None, None)["std_error_correlation"] == [None]
    spread = same + 0.1 * torch.randn(same.shape, generator=torch.Generator().manual_seed(0), dtype=same.dtype)
    value = compute_metrics(problem, spread, x_true, None, None)["std_error_correlation"][0]
    assert isinstance(value, float) and -1 <= value <= 1
