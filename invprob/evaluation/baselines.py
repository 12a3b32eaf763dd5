"""Classical reconstructions that the diffusion solvers are compared with."""

from __future__ import annotations

import torch
from torch import Tensor

from ..operators.base import Operator

__all__ = ["tv_baseline"]


def tv_baseline(operator: Operator, y: Tensor, lam: float, iters: int = 200, stepsize: float = 1.0,
                init: Tensor | None = None) -> Tensor:
    """Total-variation regularised least squares, ``argmin_x ½‖A x − y‖² + λ TV(x)``.

    Proximal gradient descent (deepinv's ``PGD`` with ``L2`` data fidelity and ``TVPrior``,
    whose proximal operator runs at most 50 inner iterations), step 1 (``1/‖A‖²`` for the
    normalised operators of the benchmarks: blurs, super-resolution, inpainting), ``iters``
    iterations from ``init`` (deepinv's default ``Aᵀy`` when ``None``), no early stopping (Rudin, Osher & Fatemi
    1992 for TV; Beck & Teboulle 2009 for the proximal gradient).

    Args:
        operator: a linear :class:`~invprob.operators.Operator` with ``‖A‖ ≤ 1``, bridged to a
            deepinv physics by :func:`~invprob.operators.to_deepinv`.
        y: measurements ``(B, *y_shape)``, images in [-1, 1].
        lam: the TV weight λ (no default: it depends on the task and the noise level).
        iters: proximal gradient iterations.
        stepsize: the gradient step, at most ``1/‖A‖²`` (1 for the normalised operators; e.g.
            ``1 / spectral_norm(A)**2`` for CT, whose line integrals are not normalised).
        init: the first iterate ``(B, *x_shape)``; for an operator far from unit norm ``Aᵀy``
            is off in scale (CT: start from the filtered back-projection).

    Returns:
        Reconstructions ``(B, *x_shape)``, clamped to [-1, 1].
    """
    from deepinv.optim import optim_builder
    from deepinv.optim.data_fidelity import L2
    from deepinv.optim.prior import TVPrior

    from ..operators import to_deepinv

    physics = to_deepinv(operator)
    model = optim_builder("PGD", prior=TVPrior(n_it_max=50), data_fidelity=L2(), max_iter=iters,
                          params_algo={"stepsize": float(stepsize), "lambda": float(lam)}, early_stop=False)
    with torch.no_grad():
        return model(y, physics, init=init).clamp(-1, 1)
