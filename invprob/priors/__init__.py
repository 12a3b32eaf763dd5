"""Priors: denoisers in σ-space (DESIGN contract 2), analytic or adapted from networks."""

from .adapters import EDMPrior, FlowPrior, VPPrior
from .base import Prior
from .gaussian import GaussianMixture, GaussianMixturePrior, GaussianPrior
from .loading import CheckpointError, from_diffusers, load_state_dict, sha256

__all__ = ["Prior", "GaussianPrior", "GaussianMixturePrior", "GaussianMixture", "VPPrior", "FlowPrior",
           "EDMPrior", "from_diffusers", "load_state_dict", "sha256", "CheckpointError"]
