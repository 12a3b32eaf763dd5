"""The foundation's operators: MatrixOperator, Identity, BlackBox (the full suite lives with the operator issue)."""

import numpy as np
import pytest
import torch

from invprob.errors import CapabilityError
from invprob.operators import BlackBox, Identity, MatrixOperator


def inner(a, b):
    return (a.flatten(1) * b.flatten(1)).sum()


@pytest.fixture
def mat(gen):
    return MatrixOperator(torch.randn(5, 12, generator=gen, dtype=torch.float64), (3, 2, 2))


def test_matrix_adjoint_pinv_svd_prox(mat, gen):
    x = torch.randn(4, 3, 2, 2, generator=gen, dtype=torch.float64)
    y = torch.randn(4, 5, generator=gen, dtype=torch.float64)
    assert abs(inner(mat(x), y) - inner(x, mat.adjoint(y))) < 1e-10 * inner(x, x).sqrt() * inner(y, y).sqrt()
    # the autograd adjoint of the base class agrees with the closed form
    from invprob.operators.base import LinearOperator
    assert torch.allclose(LinearOperator.adjoint(mat, y), mat.adjoint(y), atol=1e-12)
    assert torch.allclose(mat(mat.pinv(mat(x))), mat(x), atol=1e-10)
    assert torch.allclose(mat.pinv(y), (y @ torch.linalg.pinv(mat.A).T).reshape(4, 3, 2, 2), atol=1e-10)
    svd = mat.svd()
    z = svd.Vt(x)
    assert torch.allclose(svd.U(svd.singular_values * z), mat(x), atol=1e-10)
    rho = 0.7
    prox = mat.prox_data(x, y, rho)
    A = mat.A
    expected = torch.linalg.solve(A.T @ A + rho * torch.eye(12, dtype=A.dtype), (y @ A + rho * x.flatten(1)).T).T
    assert torch.allclose(prox.flatten(1), expected, atol=1e-10)


def test_matrix_batch_equals_single_calls(mat, gen):
    x = torch.randn(3, 3, 2, 2, generator=gen, dtype=torch.float64)
    assert torch.allclose(mat(x), torch.cat([mat(x[i : i + 1]) for i in range(3)]))


def test_matrix_state_dict_roundtrip(mat):
    other = MatrixOperator(torch.zeros(5, 12, dtype=torch.float64), (3, 2, 2))
    other.load_state_dict(mat.state_dict())
    assert torch.equal(other.A, mat.A)
    assert mat.to(torch.float32).A.dtype == torch.float32


def test_identity(gen):
    op = Identity((1, 2, 2))
    x = torch.randn(2, 1, 2, 2, generator=gen)
    assert torch.equal(op(x), x) and torch.equal(op.adjoint(x), x)
    assert torch.allclose(op.prox_data(x, 3 * x, 1.0), 2 * x)


def test_black_box_numpy_and_no_gradients(gen):
    calls = []

    def fn(x):
        calls.append(type(x))
        return np.tanh(x.reshape(x.shape[0], -1)[:, :3])

    box = BlackBox(fn, output_shape=(3,), x_shape=(1, 2, 2), numpy=True)
    x = torch.randn(2, 1, 2, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    y = box(x)
    assert calls == [np.ndarray] and y.shape == (2, 3) and not y.requires_grad
    assert torch.allclose(y, torch.tanh(x.detach().flatten(1)[:, :3]))
    with pytest.raises(CapabilityError):
        box.adjoint(y)
    bad = BlackBox(lambda x: x[:, 0], output_shape=(3,), x_shape=(1, 2, 2))
    with pytest.raises(ValueError, match="output_shape"):
        bad(x.detach())
