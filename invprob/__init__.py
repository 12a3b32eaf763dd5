"""invprob — inverse problems with diffusion and flow priors.

The four contracts (see DESIGN.md): :class:`Problem` (operator + measurement + noise),
:class:`invprob.priors.Prior` (``denoise(x, sigma)``), :class:`invprob.operators.Operator`
and :class:`invprob.solvers.Solver` (``init`` / ``step`` / ``result`` / ``solve``).
"""

from . import noise, operators, priors, schedules, solvers
from .problem import Problem

__version__ = "0.1.0"

__all__ = ["Problem", "noise", "operators", "priors", "schedules", "solvers", "__version__"]
