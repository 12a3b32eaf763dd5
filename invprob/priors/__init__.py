"""Priors: σ-space denoisers, analytic or adapted from networks (contract 2 of ``docs/design.md``)."""

from .adapters import EDMPrior, FlowPrior, VPPrior
from .base import Prior
from .gaussian import GaussianMixture, GaussianMixturePrior, GaussianPrior
from .latent import LatentPrior, load_ldm_vq, load_stable_diffusion
from .loading import block_checkpointing, from_diffusers, has_block_checkpointing, load_state_dict, sha256
from .volume import SliceWisePrior

__all__ = ["Prior", "GaussianPrior", "GaussianMixturePrior", "GaussianMixture", "VPPrior", "FlowPrior",
           "EDMPrior", "from_diffusers", "load_state_dict", "sha256", "LatentPrior", "load_stable_diffusion",
           "load_ldm_vq", "SliceWisePrior", "block_checkpointing", "has_block_checkpointing"]
