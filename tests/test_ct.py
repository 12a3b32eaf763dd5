"""CT operators, photon-count noise, slice-wise priors and the z-TV coupling of DiffusionMBIR."""

import json
import math

import numpy as np
import pytest
import torch

from invprob import Problem, noise
from invprob.errors import UnsupportedProblemError
from invprob.operators import CT, TransmissionCT, ct_angles
from invprob.priors import GaussianPrior, SliceWisePrior
from invprob.solvers import DPS, ZTV, DiffusionMBIR, EnKG, SliceCoupled


def adjoint_gap(op, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((2, *op.x_shape), generator=g, dtype=torch.float64)
    y = torch.randn((2, *op.y_shape), generator=g, dtype=torch.float64)
    lhs, rhs = (op(x) * y).sum(), (x * op.adjoint(y)).sum()
    return float((lhs - rhs).abs() / lhs.abs())


@pytest.mark.parametrize("kwargs", [dict(size=24, angles=ct_angles(7)),
                                    dict(size=24, angles=ct_angles(30, span=90.0)),
                                    dict(size=16, angles=ct_angles(5), slices=3),
                                    dict(size=16, angles=ct_angles(6, span=360.0), fan_beam=True)])
def test_adjoint_is_the_transpose(kwargs):
    op = CT(**kwargs).double()
    assert adjoint_gap(op) < 1e-12


def test_geometry_and_shapes():
    op = CT(64, ct_angles(18))
    assert op.x_shape == (1, 64, 64) and op.y_shape == (1, 18, math.ceil(math.sqrt(2) * 64))
    vol = CT(32, ct_angles(8), slices=5)
    assert vol.x_shape == (5, 1, 32, 32) and vol.y_shape == (5, 1, 8, 46)
    assert torch.allclose(ct_angles(4), torch.tensor([0.0, 45.0, 90.0, 135.0], dtype=torch.float64))
    assert torch.allclose(ct_angles(90, span=90.0)[:3], torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64))
    # a ray through n pixels of value 1 sums to n: line integrals in pixel units
    assert torch.allclose(op(torch.ones(1, 1, 64, 64))[0, 0, 0].max(), torch.tensor(64.0))


def phantom(size):
    skimage = pytest.importorskip("skimage")
    from skimage.transform import resize

    return resize(skimage.data.shepp_logan_phantom(), (size, size), anti_aliasing=True)


def test_agrees_with_skimage_radon():
    """The projector against an independent implementation on identical inputs."""
    from skimage.transform import radon

    img = phantom(64)
    angles = ct_angles(18, span=180.0, start=3.0)
    ref = radon(img, theta=angles.numpy(), circle=False)  # (N, A)
    ours = CT(64, angles).double()(torch.tensor(img)[None, None])[0, 0].T.numpy()
    assert ours.shape == ref.shape
    assert np.linalg.norm(ours - ref) / np.linalg.norm(ref) < 1e-5


def test_agrees_with_deepinv_and_volume_is_slice_by_slice():
    from deepinv.physics import Tomography

    g = torch.Generator().manual_seed(0)
    angles = ct_angles(9)
    op = CT(32, angles, slices=3)
    x = torch.randn(2, 3, 1, 32, 32, generator=g)
    ref = Tomography(angles=angles.float(), img_width=32, normalize=False)
    expected = ref.A(x.reshape(6, 1, 32, 32)).transpose(-1, -2).reshape(2, 3, 1, 9, -1)
    assert torch.allclose(op(x), expected, atol=1e-5)


def test_fbp_reconstructs_with_many_views_and_streaks_with_few():
    img = torch.tensor(phantom(64))[None, None]
    errors = {}
    for views in (8, 180):
        op = CT(64, ct_angles(views)).double()
        rec = op.fbp(op(img))
        errors[views] = float((rec - img)[..., 8:-8, 8:-8].pow(2).mean().sqrt())
    assert errors[180] < 0.05 < errors[8]


def test_bad_input_names_the_argument():
    vol = CT(16, ct_angles(4), slices=5)
    with pytest.raises(ValueError, match="slice axis D comes first"):
        vol(torch.zeros(2, 1, 5, 16, 16))
    with pytest.raises(ValueError, match="add the batch dim"):
        vol(torch.zeros(5, 1, 16, 16))
    with pytest.raises(TypeError, match=r"operator.to\(torch.float64\)"):
        vol(torch.zeros(1, 5, 1, 16, 16, dtype=torch.float64))
    with pytest.raises(ValueError, match="`angles`"):
        CT(16, [])
    with pytest.raises(ValueError, match="`fan_parameters`"):
        CT(16, ct_angles(4), fan_parameters={"source_radius": 40})
    with pytest.raises(ValueError, match="`views`"):
        ct_angles(0)
    with pytest.raises(ValueError, match="`slices`"):
        CT(16, ct_angles(4), slices=0)


def test_photon_counts_and_transmission():
    op = CT(16, ct_angles(6)).double()
    tct = TransmissionCT(op, photons=1e4, attenuation=0.05)
    x = torch.rand(2, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    counts = tct(x)
    assert torch.allclose(tct.post_log(counts), op((x + 1) / 2))
    y = noise.PhotonCounts().sample(counts, generator=torch.Generator().manual_seed(2))
    assert torch.equal(y, y.round()) and (y >= 0).all()
    ll = noise.PhotonCounts().log_likelihood(y, counts)
    ref = torch.distributions.Poisson(counts).log_prob(y).flatten(1).sum(1)
    assert torch.allclose(ll, ref)
    with pytest.raises(ValueError, match="negative photon counts"):
        Problem(tct, y - 1e4, noise.PhotonCounts())


def gaussian_slices(size=6, dtype=torch.float64):
    """An exact Gaussian prior on ``size``² slices with a smooth covariance (a test slice prior)."""
    idx = torch.arange(size * size)
    r, c = idx // size, idx % size
    dist2 = (r[:, None] - r[None]) ** 2 + (c[:, None] - c[None]) ** 2
    cov = 0.3 * torch.exp(-dist2.to(dtype) / 8) + 0.01 * torch.eye(size * size, dtype=dtype)
    return GaussianPrior(torch.zeros(1, size, size, dtype=dtype), cov)


def test_slice_wise_prior_denoises_each_slice():
    base = gaussian_slices()
    prior = SliceWisePrior(base, 4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 1, 6, 6, generator=g, dtype=torch.float64)
    sigma = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    out = prior.denoise(x, sigma)
    ref = base.denoise(x.reshape(12, 1, 6, 6), sigma.repeat_interleave(4)).reshape(x.shape)
    assert torch.allclose(out, ref) and prior.x_shape == (4, 1, 6, 6) and prior.dtype == torch.float64
    with pytest.raises(ValueError, match="`slices`"):
        SliceWisePrior(base, 0)
    with pytest.raises(TypeError, match="already slice-wise"):
        SliceWisePrior(prior, 2)


def test_dz_transpose_and_admm_reaches_the_tv_minimiser():
    g = torch.Generator().manual_seed(3)
    v, w = torch.randn(2, 4, 1, 5, 5, generator=g, dtype=torch.float64).unbind(0)
    assert torch.allclose((ZTV.dz(v[None]) * w[None]).sum(), (v[None] * ZTV.dzt(w[None])).sum())
    op = CT(8, ct_angles(3), slices=4).double()
    x_true = torch.randn(1, 4, 1, 8, 8, generator=g, dtype=torch.float64)
    y = op(x_true)
    admm = ZTV(lam=0.5, rho=2.0, admm_iters=3000, cg_iters=3)
    zeros = torch.zeros_like(x_true)
    x, vv, u = admm(zeros, y, op, zeros, zeros)
    # KKT of min ½‖Ax − y‖² + λ‖D_z x‖₁: Aᵀ(Ax − y) + ρ D_zᵀ u = 0, |ρ u| ≤ λ, D_z x = v
    stationarity = op.adjoint(op(x) - y) + admm.rho * ZTV.dzt(u)
    assert float(stationarity.abs().max()) < 1e-4 * float(op.adjoint(y).abs().max())
    assert float((admm.rho * u).abs().max()) <= admm.lam * (1 + 1e-6)
    assert float((ZTV.dz(x) - vv).abs().max()) < 1e-4


def volume_problem(slices=4, size=6, views=2, seed=0):
    prior = gaussian_slices(size)
    g = torch.Generator().manual_seed(seed)
    one = prior.sample(1, g)  # the same slice repeated: a volume constant along z
    x = one[:, None].repeat(1, slices, 1, 1, 1)
    op = CT(size, ct_angles(views), slices=slices).double()
    return SliceWisePrior(prior, slices), Problem.simulate(op, x, noise.Gaussian(0.05), generator=g), x


def test_coupling_makes_slices_consistent():
    prior, problem, x = volume_problem()
    coupled = DiffusionMBIR(num_steps=60, sigma_max=20.0, lam=5.0).solve(problem, prior, 4, generator=0,
                                                                         progress=False)
    free = DiffusionMBIR(num_steps=60, sigma_max=20.0, lam=0.0).solve(problem, prior, 4, generator=0,
                                                                      progress=False)

    def z_variation(s):
        return float(ZTV.dz(s.samples[0]).abs().mean())

    assert coupled.nfe == free.nfe == 120
    assert z_variation(coupled) < 0.5 * z_variation(free)


def test_slice_coupled_wraps_a_pixel_solver():
    prior, problem, _ = volume_problem()
    dps = DPS(scale=0.3, num_steps=20)
    result = SliceCoupled(dps, lam=5.0).solve(problem, prior, 2, generator=0, progress=False)
    assert result.samples.shape == (1, 2, 4, 1, 6, 6) and torch.isfinite(result.samples).all()
    assert result.nfe == dps.nfe_per_sample
    # seeded runs do not depend on the batch
    alone = SliceCoupled(dps, lam=5.0).solve(problem, prior, 1, generator=0, progress=False)
    assert torch.allclose(alone.samples[0, 0], result.samples[0, 0])
    with pytest.raises(TypeError, match="population solver"):
        SliceCoupled(EnKG(num_steps=5, ensemble_size=4))
    tct = TransmissionCT(problem.operator)
    nonlinear = Problem(tct, torch.full((1, *tct.y_shape), 100.0, dtype=torch.float64), noise.PhotonCounts())
    with pytest.raises(UnsupportedProblemError, match="linear"):
        SliceCoupled(dps).init(nonlinear, prior)


def test_cli_solves_a_volume_from_a_sinogram_file(tmp_path):
    from test_cli import invprob

    g = torch.Generator().manual_seed(0)
    vol = torch.rand(3, 1, 128, 128, generator=g) * 2 - 1
    op = CT(128, ct_angles(18), slices=3)
    sino = op(vol[None])[0, :, 0].numpy()  # (slices, views, detectors)
    np.savez(tmp_path / "sino.npz", sinogram=sino, angles=ct_angles(18).numpy())
    np.savez(tmp_path / "no_angles.npz", sinogram=sino)
    np.savez(tmp_path / "transposed.npz", sinogram=np.swapaxes(sino, -1, -2))
    args = ["solve", "operator=ct-parallel-18", "operator.size=128", "prior=brain-mri", "solver=diffusion-mbir",
            "solver.num_steps=2", "num_samples=2", "quiet=true"]
    proc = invprob([*args, "measurement=sino.npz", "hydra.run.dir=run"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert np.load(tmp_path / "run" / "samples.npy").shape == (1, 2, 3, 1, 128, 128)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["nfe_per_sample"] == 4 and metrics["operator_class"] == "CT"
    # the geometry from the preset when the file has no angles; bad files give one line
    proc = invprob([*args, "measurement=no_angles.npz", "operator.angles.views=8", "hydra.run.dir=bad"], tmp_path)
    assert proc.returncode == 2 and "has 18 views but the operator's geometry has 8" in proc.stderr
    proc = invprob([*args, "measurement=transposed.npz", "hydra.run.dir=bad"], tmp_path)
    assert proc.returncode == 2 and "looks transposed" in proc.stderr and "Traceback" not in proc.stderr
    proc = invprob([*args, "measurement=no_angles.npz", "operator.size=64", "hydra.run.dir=bad"], tmp_path)
    assert proc.returncode == 2 and "operator.size" in proc.stderr
    assert not (tmp_path / "bad" / "metrics.json").exists()


def test_slice_stack_is_multi_slice_mri_for_the_coupled_solvers():
    from invprob.operators import MRI, SliceStack

    g = torch.Generator().manual_seed(4)
    masks = (torch.rand(2, 6, 6, generator=g) < 0.5).float()  # one mask per measurement
    op = SliceStack(MRI(masks), 4).double()
    x = torch.randn(2, 4, 1, 6, 6, generator=g, dtype=torch.float64)
    y = torch.randn(2, 4, 1, 6, 6, generator=g, dtype=torch.complex128)
    lhs, rhs = (op(x).conj() * y).sum().real, (x * op.adjoint(y)).sum()
    assert float((lhs - rhs).abs() / lhs.abs()) < 1e-12
    # each volume's slices see that volume's mask
    assert torch.allclose(op(x)[1, 2], MRI(masks[1]).double()(x[1, 2][None])[0])
    prior = SliceWisePrior(gaussian_slices(), 4)
    problem = Problem.simulate(op, x, noise.Gaussian(0.05), generator=g)
    result = DiffusionMBIR(num_steps=10, sigma_max=20.0).solve(problem, prior, 2, generator=0, progress=False)
    assert result.samples.shape == (2, 2, 4, 1, 6, 6) and torch.isfinite(result.samples).all()
    with pytest.raises(TypeError, match="linear"):
        SliceStack(TransmissionCT(CT(6, ct_angles(2))), 2)
    with pytest.raises(ValueError, match="`slices`"):
        SliceStack(MRI(masks), 0)


def test_real_ct_slice_and_tv_from_the_fbp():
    pytest.importorskip("pydicom")
    from invprob.evaluation import tv_baseline
    from invprob.evaluation.datasets import ct_slice
    from invprob.operators.base import spectral_norm

    x = ct_slice()
    assert x.shape == (1, 1, 128, 128) and x.min() >= -1 and x.max() <= 1 and x.std() > 0.2
    op = CT(128, ct_angles(18))
    y = op(x)
    fbp = op.fbp(y)
    step = 1 / spectral_norm(op, torch.float32, "cpu") ** 2
    tv = tv_baseline(op, y, lam=3.0, iters=50, stepsize=step, init=fbp)
    assert float((tv - x).pow(2).mean()) < 0.5 * float((fbp.clamp(-1, 1) - x).pow(2).mean())
