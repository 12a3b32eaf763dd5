"""``invprob train key=value ...``: the Hydra app over :func:`invprob.training.train`.

Its settings are the fields of :class:`invprob.training.TrainConfig` (a structured config: one
definition, type-checked by Hydra); ``invprob/conf/train.yaml`` only sets where Hydra writes.
"""

from __future__ import annotations

from typing import Any

from .configs import run_app

__all__ = ["main"]


def train_from_config(cfg: Any) -> None:
    """Train (or resume) the prior the composed config describes."""
    from omegaconf import OmegaConf

    from ..training import TrainConfig, train

    config: TrainConfig = OmegaConf.to_object(cfg)
    config.block_out_channels = tuple(config.block_out_channels)
    out = train(config, progress=not config.quiet)
    print(f"trained: {out} (model.safetensors, ema.safetensors, loss.png, samples.png)")


def main(argv: list[str] | None = None) -> int:
    """Train (or resume) a prior; 0 on success, 2 with one line on stderr for bad settings or data."""
    return run_app("train", train_from_config, argv)
