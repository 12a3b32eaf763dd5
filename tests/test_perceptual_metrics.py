"""LPIPS and FID/KID, offline: random or tiny stand-in feature networks, and the one notice
(no crash) when the pretrained weights are not in the torch cache."""

from __future__ import annotations

import pytest
import torch

from invprob.evaluation import lpips_metric, set_distances


@pytest.fixture
def empty_torch_cache(tmp_path):
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield
    torch.hub.set_dir(old)


def test_lpips_with_a_random_backbone_is_zero_on_equal_images_and_grows_with_the_difference():
    torch.manual_seed(0)  # the random backbone's weights
    metric = lpips_metric(backbone="random")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 32, 32, generator=g) * 2 - 1
    near = (x + 0.05 * torch.randn(3, 1, 32, 32, generator=g)).clamp(-1, 1)
    far = (x + 0.5 * torch.randn(3, 1, 32, 32, generator=g)).clamp(-1, 1)
    same, d_near, d_far = metric(x, x), metric(near, x), metric(far, x)
    assert same.shape == (3,) and torch.allclose(same, torch.zeros(3), atol=1e-6)
    assert (d_near > 0).all() and (d_far > d_near).all()


def test_missing_pretrained_weights_give_one_notice_and_no_metric(empty_torch_cache, capsys):
    assert lpips_metric() is None
    x = torch.rand(4, 1, 16, 16)
    assert set_distances(x, x) is None
    notices = capsys.readouterr().err.strip().splitlines()
    assert len(notices) == 2 and all(n.startswith("notice:") and "left out" in n for n in notices)


class Tiny(torch.nn.Module):
    """A tiny random feature extractor standing in for InceptionV3."""

    num_features = 8

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3, stride=2)

    def forward(self, x):
        return self.conv(x.float()).mean((2, 3))


def test_fid_and_kid_separate_equal_sets_from_shifted_sets():
    g = torch.Generator().manual_seed(1)
    real = torch.rand(40, 1, 16, 16, generator=g) * 2 - 1
    other = torch.rand(40, 1, 16, 16, generator=g) * 2 - 1            # same distribution
    shifted = (torch.rand(40, 1, 16, 16, generator=g) * 2 - 1) * 0.3 + 0.5
    same = set_distances(real, other, feature=Tiny(), kid_subset=20)
    apart = set_distances(real, shifted, feature=Tiny(), kid_subset=20)
    assert set(same) == {"fid", "kid", "kid_std"}
    assert apart["fid"] > 10 * same["fid"] and apart["kid"] > 10 * abs(same["kid"])
