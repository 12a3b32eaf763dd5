"""Forward operators (DESIGN contract 3)."""

from .base import SVD, LinearOperator, Operator
from .blackbox import BlackBox
from .matrix import Identity, MatrixOperator

__all__ = ["Operator", "LinearOperator", "SVD", "MatrixOperator", "Identity", "BlackBox"]
