"""Per-sample random streams: a sample's noise depends only on its own seed and the step.

Sample ``k`` of a solve seeded with ``S`` draws its step-``i`` noise from a generator seeded
with ``mix(mix(S, k), i, stream)``. Hence the same seed gives the same sample whatever the
batch size, whatever other samples share the batch, and ``step(state, i)`` is a pure
function of ``(state, i)`` (re-running a step reproduces it, so states can be checkpointed).
"""

from __future__ import annotations

import random
from typing import Sequence

import torch
from torch import Tensor

_MASK = (1 << 64) - 1


def _splitmix64(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def mix(*values: int) -> int:
    """Hash integers into a 63-bit seed (order matters)."""
    h = 0
    for v in values:
        h = _splitmix64(h ^ (int(v) & _MASK))
    return h >> 1


def base_seed(generator: int | torch.Generator | None) -> int:
    """An integer seed from an int, a ``torch.Generator`` (advanced once) or ``None`` (fresh)."""
    if generator is None:
        return random.SystemRandom().getrandbits(62)
    if isinstance(generator, torch.Generator):
        return int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    if isinstance(generator, int) and not isinstance(generator, bool):
        return generator
    raise TypeError(f"`generator` must be an int seed, a torch.Generator or None, got "
                    f"{type(generator).__name__}.")


def sample_seeds(generator: int | torch.Generator | None, num_measurements: int,
                 num_samples: int) -> Tensor:
    """Seeds ``(M*K,)`` for ``M`` measurements × ``K`` samples; sample ``k`` gets the same seed
    for every measurement, so measurement ``m`` solved alone reproduces its batch samples."""
    base = base_seed(generator)
    per_k = [mix(base, k) for k in range(num_samples)]
    return torch.tensor(per_k * num_measurements, dtype=torch.int64)


def randn(seeds: Tensor | Sequence[int], step: int, shape: Sequence[int], *, stream: int = 0,
          dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Tensor:
    """Standard normal ``(B, *shape)``; row ``b`` comes from ``mix(seeds[b], step, stream)``."""
    device = torch.device(device)
    gen = torch.Generator(device=device)  # one per call, re-seeded per row: no shared state
    seeds = seeds.tolist() if isinstance(seeds, Tensor) else list(seeds)
    out = torch.empty((len(seeds), *shape), dtype=dtype, device=device)
    for b, seed in enumerate(seeds):
        gen.manual_seed(mix(seed, step, stream))
        out[b] = torch.randn(tuple(shape), generator=gen, dtype=dtype, device=device)
    return out
