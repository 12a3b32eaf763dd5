"""invprob — inverse problems with diffusion and flow priors.

The four contracts (``docs/design.md``): :class:`Problem` (operator + measurement + noise),
:class:`invprob.priors.Prior` (``denoise(x, sigma)``), :class:`invprob.operators.Operator`
and :class:`invprob.solvers.Solver` (``init`` / ``step`` / ``result`` / ``solve``).
"""

from . import noise, operators, priors, sampling, solvers
from .problem import Problem


def calibrate(*args, **kwargs):
    """:func:`invprob.calibration.calibrate` (imported on first use): choose a solver's
    hyper-parameters for an operator, noise model and prior from pairs simulated from the prior."""
    from .calibration import calibrate as run

    return run(*args, **kwargs)


__version__ = "0.1.0"

__all__ = ["Problem", "calibrate", "noise", "operators", "priors", "sampling", "solvers", "__version__"]
