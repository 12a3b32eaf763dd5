"""Registry-driven checks over every operator preset, references (deepinv, scipy, numpy FFT),
real multi-coil MRI data and bad input."""

import numpy as np
import pytest
import torch

from conftest import DATA, needs_data
from invprob import registry
from invprob.operators import (MRI, CodedDiffraction, FromDeepinv, GaussianBlur, Inpainting, KernelBlur,
                               MotionBlur, MultiCoilMRI, PhaseRetrieval, SuperResolution, estimate_coil_maps,
                               gaussian_kernel, load_kernel, mri_mask, to_deepinv)

PRESETS = registry.available()["operators"]


def build(name):
    op = registry.get_operator(name)
    if op.x_shape is None:
        op = registry.get_operator(name, x_shape=(1, 16, 16))
    return op.to(torch.float64)


def real_inner(a, b):
    return (a.conj() * b).real.sum() if a.is_complex() or b.is_complex() else (a * b).sum()


def rand_x(op, B=2, seed=0):
    return torch.randn((B, *op.x_shape), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def rand_y(op, like):
    g = torch.Generator().manual_seed(1)
    if like.is_complex():
        return torch.complex(torch.randn(like.shape, generator=g, dtype=torch.float64),
                             torch.randn(like.shape, generator=g, dtype=torch.float64))
    return torch.randn(like.shape, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_forward_shape_and_batch(name):
    op = build(name)
    x = rand_x(op, B=3)
    y = op(x)
    assert tuple(y.shape) == (3, *op.y_shape)
    singles = torch.cat([op(x[i : i + 1]) for i in range(3)])
    assert torch.allclose(y, singles, atol=1e-10)


@pytest.mark.parametrize("name", [n for n in PRESETS if build(n).linear])
def test_preset_adjointness(name):
    op = build(name)
    x = rand_x(op)
    y = rand_y(op, op(x))
    lhs, rhs = real_inner(op(x), y), real_inner(x, op.adjoint(y))
    assert abs(lhs - rhs) / abs(lhs) < 1e-5, (lhs, rhs)


@pytest.mark.parametrize("name", [n for n in PRESETS if build(n).has_pinv])
def test_preset_pinv_is_a_projection(name):
    op = build(name)
    x = rand_x(op)
    projected = op.pinv(op(x))
    assert torch.allclose(op.pinv(op(projected)), projected, atol=1e-7 * projected.abs().max())
    # A A⁺ A = A up to the rcond truncation of numerically zero singular values (≤ 1e-6)
    assert torch.allclose(op(projected), op(x), atol=1e-5 * op(x).abs().max())


@pytest.mark.parametrize("name", [n for n in PRESETS if build(n).has_svd])
def test_preset_svd_reconstructs_the_operator(name):
    op = build(name)
    x = rand_x(op)
    svd = op.svd()
    rebuilt = svd.U(svd.singular_values * svd.Vt(x))
    assert torch.allclose(rebuilt, op(x), atol=1e-9 * op(x).abs().max())


@pytest.mark.parametrize("name", [n for n in PRESETS if build(n).has_svd])
def test_preset_prox_is_optimal(name):
    op = build(name)
    z = rand_x(op)
    y = op(rand_x(op, seed=3))
    rho = 0.3
    p = op.prox_data(z, y, rho)
    grad = op.adjoint(op(p) - y) + rho * (p - z)  # gradient of ½‖Ap − y‖² + ρ/2‖p − z‖²
    assert grad.abs().max() < 1e-8 * (1 + z.abs().max())


@pytest.mark.parametrize("name", PRESETS)
def test_preset_state_dict_and_dtype_roundtrip(name):
    op = build(name)
    fresh = registry.get_operator(name, **({"x_shape": (1, 16, 16)} if registry.get_operator(name).x_shape is None else {}))
    fresh.load_state_dict(op.state_dict())
    fresh = fresh.to(torch.float64)
    x = rand_x(op)
    assert torch.allclose(fresh(x), op(x))
    y32 = op.to(torch.float32)(x.float())
    assert y32.dtype in (torch.float32, torch.complex64)
    assert op.to("cpu").device == torch.device("cpu")


# -- references -----------------------------------------------------------------------------
def test_gaussian_kernel_matches_scipy():
    from scipy.ndimage import gaussian_filter

    delta = np.zeros((61, 61))
    delta[30, 30] = 1
    assert np.allclose(gaussian_kernel(61, 3.0).numpy(), gaussian_filter(delta, 3.0), atol=1e-12)


@needs_data
def test_circular_blur_matches_deepinv_blurfft():
    import deepinv

    kernel = load_kernel(DATA / "blur_kernels" / "Levin09.mat", index=2)
    x = torch.randn(2, 3, 48, 40, dtype=torch.float64)
    ours = KernelBlur(kernel, "circular", x_shape=(3, 48, 40)).to(torch.float64)
    ref = deepinv.physics.BlurFFT(img_size=(3, 48, 40), filter=kernel[None, None].float())
    assert torch.allclose(ours(x).float(), ref.A(x.float()), atol=1e-5)
    assert torch.allclose(ours.adjoint(x).float(), ref.A_adjoint(x.float()), atol=1e-5)


@needs_data
def test_reflect_blur_matches_scipy_convolve():
    from scipy.ndimage import convolve

    kernel = load_kernel(DATA / "blur_kernels" / "Levin09.mat", index=0).numpy()
    img = np.random.default_rng(0).standard_normal((30, 33))
    ours = KernelBlur(torch.as_tensor(kernel), "reflect").to(torch.float64)(torch.as_tensor(img)[None, None])[0, 0]
    # numpy 'symmetric' padding excludes the edge: scipy's mode='mirror' is torch's 'reflect'.
    ref = convolve(img, kernel, mode="mirror")
    assert np.allclose(ours.numpy(), ref, atol=1e-12)


def test_inpainting_matches_deepinv():
    import deepinv

    op = Inpainting((3, 32, 32), kind="random", missing=0.7, seed=4)
    ref = deepinv.physics.Inpainting(img_size=(3, 32, 32), mask=op.mask[0].expand(3, -1, -1).clone())
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(op(x), ref.A(x))
    assert abs(op.mask.mean().item() - 0.3) < 1 / 1024


def test_single_and_multicoil_mri_match_deepinv():
    import deepinv

    mask = mri_mask((32, 32), "gaussian", acceleration=4, center_fraction=0.08, seed=1)
    x = torch.randn(2, 2, 32, 32, dtype=torch.float64)
    ours = MRI(mask, image_mode="channels").to(torch.float64)
    ref = deepinv.physics.MRI(mask=mask[None, None].double(), img_size=(32, 32))
    y = ref.A(x)
    assert torch.allclose(ours(x)[:, 0], torch.complex(y[:, 0], y[:, 1]), atol=1e-12)
    maps = torch.randn(4, 32, 32, dtype=torch.complex128)
    ours_mc = MultiCoilMRI(mask, maps, image_mode="channels")
    ref_mc = deepinv.physics.MultiCoilMRI(mask=mask[None, None].double(), coil_maps=maps[None], img_size=(32, 32))
    y = ref_mc.A(x)  # (B, 2, N_c, H, W)
    assert torch.allclose(ours_mc(x), torch.complex(y[:, 0], y[:, 1]), atol=1e-12)


def test_phase_retrieval_matches_numpy_fft():
    op = PhaseRetrieval((1, 32, 32), oversampling=2.0)
    assert op.pad == 8  # int(2/8 · 32), the DPS convention
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32))
    padded = np.pad(x, ((0, 0), (0, 0), (8, 8), (8, 8)))
    ref = np.abs(np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(padded, axes=(-2, -1)), norm="ortho"), axes=(-2, -1)))
    assert np.allclose(op(torch.as_tensor(x)).numpy(), ref, atol=1e-12)
    # Trivial ambiguities: a sign flip and (up to the padding) a 180° rotation give the same data.
    t = torch.as_tensor(x)
    assert torch.allclose(op(-t), op(t))
    # DAPS's convention measures x/2 + 1/2; both conventions' four trivial images give the same y
    daps = PhaseRetrieval((1, 32, 32), oversampling=2.0, unit_range=True)
    ref = np.abs(np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(np.pad(x / 2 + 0.5, ((0, 0), (0, 0), (8, 8), (8, 8))),
                                                              axes=(-2, -1)), norm="ortho"), axes=(-2, -1)))
    assert np.allclose(daps(t).numpy(), ref, atol=1e-12)
    for operator in (op, daps):
        images = operator.trivial_images(t)
        assert images.shape == (4, *t.shape) and (images[1:] - t).abs().amax() > 0.1
        for image in images:
            assert torch.allclose(operator(image), operator(t), atol=1e-10)
    assert not torch.allclose(daps(-t), daps(t))  # −x is not an ambiguity of x/2 + 1/2
    # Two channels are measured separately: 4² images, each channel with its own choice
    t2 = torch.randn(2, 2, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    for unit_range in (False, True):
        op2 = PhaseRetrieval((2, 8, 8), oversampling=2.0, unit_range=unit_range).to(torch.float64)
        images = op2.trivial_images(t2)
        assert images.shape == (16, *t2.shape) and torch.equal(images[0], t2)
        assert len({tuple(im.flatten().tolist()) for im in images}) == 16  # all distinct
        for image in images:
            assert torch.allclose(op2(image), op2(t2), atol=1e-10)
        mixed = t2.clone()
        mixed[:, 1] = -t2[:, 1] - 2 if unit_range else -t2[:, 1]  # flip channel 1 only
        assert any(torch.equal(im, mixed) for im in images)
    with pytest.raises(ValueError, match="unit_range"):
        PhaseRetrieval((1, 8, 8), unit_range="yes")
    cd = CodedDiffraction((1, 16, 16), num_patterns=2).to(torch.float64)
    xs = torch.as_tensor(x[:, :, :16, :16])
    masks = np.exp(1j * cd.phases.double().numpy())
    ref = np.abs(np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(xs.numpy()[:, None] * masks[None], axes=(-2, -1)),
                                             norm="ortho"), axes=(-2, -1))).reshape(2, 2, 16, 16)
    assert np.allclose(cd(xs).numpy(), ref, atol=1e-12)


def test_deepinv_bridge_both_ways():
    import deepinv

    blur = deepinv.physics.BlurFFT(img_size=(1, 16, 16), filter=gaussian_kernel(5, 1.0)[None, None].float())
    op = FromDeepinv(blur, (1, 16, 16))
    x = torch.randn(2, 1, 16, 16)
    assert op.linear and torch.allclose(op(x), blur.A(x))
    assert torch.allclose(op.adjoint(x), blur.A_adjoint(x))
    ours = SuperResolution(2, (1, 16, 16), kind="block")
    physics = to_deepinv(ours)
    y = ours(x)
    assert torch.allclose(physics.A(x), y) and torch.allclose(physics.A_adjoint(y), ours.adjoint(y))


def test_motion_blur_kernels_are_seeded_normalised_and_varied():
    a, b = MotionBlur(31, 0.5, seed=3).kernel, MotionBlur(31, 0.5, seed=3).kernel
    c = MotionBlur(31, 0.5, seed=4).kernel
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert abs(a.sum().item() - 1) < 1e-6 and (a >= 0).all() and (a > 0).sum() > 10


def test_per_measurement_masks_follow_the_solver_row_order():
    op = Inpainting((1, 8, 8), kind="random", missing=0.5, num_masks=2, seed=0)
    x = torch.ones(4, 1, 8, 8)  # rows: (m0,k0) (m0,k1) (m1,k0) (m1,k1)
    y = op(x)
    assert torch.equal(y[0], op.mask[0]) and torch.equal(y[1], op.mask[0]) and torch.equal(y[3], op.mask[1])
    with pytest.raises(ValueError, match="batch of 2"):
        op(torch.ones(3, 1, 8, 8))


# -- real multi-coil data -------------------------------------------------------------------
@pytest.mark.skipif(not (DATA / "mri_sigpy_brain_8coil").is_dir(), reason="shared data not available")
def test_multicoil_mri_on_real_8coil_kspace():
    ksp = torch.as_tensor(np.load(DATA / "mri_sigpy_brain_8coil" / "cartesian_ksp.npy")).to(torch.complex128)
    mask = (ksp.abs().sum(0) > 0).double()
    assert 0.10 < mask.mean() < 0.15  # ~8x Poisson-disc undersampling
    maps = estimate_coil_maps(ksp, calib_size=20)
    op = MultiCoilMRI(mask, maps, image_mode="channels")
    y = ksp[None]
    adjoint = op.adjoint(y)[0]
    magnitude = adjoint.pow(2).sum(0).sqrt()
    # a brain image: bright in the middle, dark in the corners
    H, W = magnitude.shape
    centre = magnitude[H // 4 : 3 * H // 4, W // 4 : 3 * W // 4].mean()
    corners = torch.stack([magnitude[:20, :20].mean(), magnitude[-20:, -20:].mean()]).mean()
    assert centre > 5 * corners
    x, history = op.cg_sense(y, num_iters=30)
    # The relative data-consistency residual ‖A x − y‖/‖y‖ of CG-SENSE after 30 iterations is small
    # and under half its first-iteration value; it does not reach 0 (noise and what the estimated
    # maps miss).
    assert history[-1] < 0.055 and history[-1] < 0.5 * history[0]
    assert np.all(np.diff(history) < 1e-6)  # monotone: CG on the normal equations


# -- bad input ---------------------------------------------------------------------------------
def test_bad_operator_input():
    with pytest.raises(ValueError, match="odd"):
        GaussianBlur(kernel_size=60)
    with pytest.raises(ValueError, match="odd"):
        KernelBlur(torch.ones(4, 5))
    with pytest.raises(ValueError, match="`mask` has shape"):
        Inpainting((1, 8, 8), kind="mask", mask=torch.ones(9, 8))
    with pytest.raises(ValueError, match="only 0 and 1"):
        Inpainting((1, 8, 8), kind="mask", mask=torch.full((8, 8), 0.5))
    with pytest.raises(ValueError, match="`mask` is"):
        MultiCoilMRI(torch.ones(16, 16), torch.ones(2, 8, 8, dtype=torch.complex64))
    with pytest.raises(ValueError, match="`x` has shape"):
        MRI(torch.ones(16, 16))(torch.zeros(1, 1, 8, 8))
    with pytest.raises(TypeError, match="complex"):
        GaussianBlur(5, 1.0, x_shape=(1, 8, 8))(torch.zeros(1, 1, 8, 8, dtype=torch.complex64))
    with pytest.raises(ValueError, match="too small"):
        GaussianBlur(61, 3.0, x_shape=(1, 16, 16))
    with pytest.raises(ValueError, match="factor"):
        SuperResolution(3, (1, 16, 16))
    with pytest.raises(TypeError, match="coil_maps"):
        MultiCoilMRI(torch.ones(8, 8), torch.ones(2, 8, 8))


@pytest.mark.parametrize("name", [n for n in PRESETS if build(n).linear and not build(n).has_svd])
def test_preset_prox_without_closed_form_is_optimal(name):
    """Linear operators without an SVD (reflect-padded blur, magnitude MRI) solve the data prox by
    conjugate gradients: the optimality condition holds to the CG tolerance. ρ = 0.3 ‖A‖²: the
    same conditioning for unit-norm operators and for CT's unnormalised line integrals."""
    from invprob.operators.base import spectral_norm

    op = build(name)
    z = rand_x(op)
    y = op(rand_x(op, seed=3))
    rho = 0.3 * spectral_norm(op, z.dtype, z.device) ** 2
    p = op.prox_data(z, y, rho)
    grad = op.adjoint(op(p) - y) + rho * (p - z)
    assert grad.abs().max() < 1e-6 * (1 + op.adjoint(y).abs().max())
