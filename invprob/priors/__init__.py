"""Priors: denoisers in σ-space (DESIGN contract 2)."""

from .base import Prior
from .gaussian import GaussianMixture, GaussianMixturePrior, GaussianPrior

__all__ = ["Prior", "GaussianPrior", "GaussianMixturePrior", "GaussianMixture"]
