"""Exceptions raised by invprob.

Every error names the argument, the value received, what was expected and a fix.
"""

from __future__ import annotations

__all__ = ["UnsupportedProblemError", "CapabilityError", "CheckpointError", "InputError", "DataNotFoundError", "USER_ERRORS"]


class UnsupportedProblemError(ValueError):
    """A solver was given a problem (operator, noise, prior) it cannot handle.

    Raised at ``Solver.init`` — never mid-run — e.g. when a gradient-based solver is
    handed a black-box operator, or a projection solver an operator without ``pinv``.
    """


class CapabilityError(NotImplementedError):
    """An operator was asked for something its mathematics does not offer
    (``adjoint`` of a nonlinear map, ``svd`` of an operator without one, ...)."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, corrupt, tampered, unsafe or mismatched."""


class InputError(ValueError):
    """A user's input that cannot be used as given: a missing or unreadable file, a
    measurement or image of the wrong shape, type or range, a bad setting of a run.
    The message names the argument and the fix; the CLI prints it as one line (exit 2)."""


class DataNotFoundError(FileNotFoundError):
    """A file of a named data set (:mod:`invprob.datasets`) is missing and cannot be
    downloaded, or does not match its pinned sha256. The message names the file, its source,
    its checksum and where to place it."""


#: What the CLI reports as one line and exit status 2 (validation errors of the library and
#: of the user's files); anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    InputError, CheckpointError, UnsupportedProblemError, CapabilityError, ValueError, TypeError,
    KeyError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, OverflowError)
