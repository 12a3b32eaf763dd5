"""Posterior samplers on the common step API (DESIGN contract 4)."""

from .base import SolveResult, Solver, State
from .dps import DPS

__all__ = ["Solver", "State", "SolveResult", "DPS"]
