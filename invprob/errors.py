"""Exceptions raised by invprob.

Every error names the argument, the value received, what was expected and a fix.
"""

from __future__ import annotations


class UnsupportedProblemError(ValueError):
    """A solver was given a problem (operator, noise, prior) it cannot handle.

    Raised at ``Solver.init`` — never mid-run — e.g. when a gradient-based solver is
    handed a black-box operator, or a projection solver an operator without ``pinv``.
    """


class CapabilityError(NotImplementedError):
    """An operator was asked for something its mathematics does not offer
    (``adjoint`` of a nonlinear map, ``svd`` of an operator without one, ...)."""
