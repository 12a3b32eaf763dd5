"""Per-sample random streams: a sample's noise depends only on its own seed and the step.

Sample ``k`` of a solve seeded with ``S`` gets the seed ``mix(S, k)``; its step-``i`` noise is a
counter-based function of that seed, ``i`` and a stream number (:func:`randn`). Hence the same seed gives the same sample whatever the
batch size, whatever other samples share the batch, and ``step(state, i)`` is a pure
function of ``(state, i)`` (re-running a step reproduces it, so states can be checkpointed).
"""

from __future__ import annotations

import math
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


def _to_signed(value: int) -> int:
    value &= _MASK
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN = _to_signed(0x9E3779B97F4A7C15)
_MUL1 = _to_signed(0xBF58476D1CE4E5B9)
_MUL2 = _to_signed(0x94D049BB133111EB)


def _srl(z: Tensor, k: int) -> Tensor:
    """Logical right shift of int64 tensors (``>>`` is arithmetic on signed integers)."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def _splitmix64_tensor(z: Tensor) -> Tensor:
    """Vectorised splitmix64 on int64 tensors (two's-complement wrap-around arithmetic)."""
    z = z + _GOLDEN
    z = (z ^ _srl(z, 30)) * _MUL1
    z = (z ^ _srl(z, 27)) * _MUL2
    return z ^ _srl(z, 31)


def randn(seeds: Tensor | Sequence[int], step: int, shape: Sequence[int], *, stream: int = 0,
          dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Tensor:
    """Standard normal ``(B, *shape)``; row ``b`` is a function of ``(seeds[b], step, stream)`` only.

    A counter-based generator: splitmix64 hashes of (row key, element index) give uniform
    bits, Box–Muller turns pairs into normals. Vectorised over the batch, so per-sample
    streams cost no more than one ``torch.randn``; integer arithmetic makes it identical on
    every device.
    """
    n = math.prod(int(size) for size in shape)
    rows = torch.as_tensor(seeds).shape[0]
    return randn_slice(seeds, step, shape, 0, n, stream=stream, dtype=dtype, device=device).reshape(
        rows, *[int(size) for size in shape])


def randn_slice(seeds: Tensor | Sequence[int], step: int, shape: Sequence[int], start: int, stop: int, *,
                stream: int = 0, dtype: torch.dtype = torch.float32,
                device: torch.device | str = "cpu") -> Tensor:
    """Elements ``start:stop`` of the flattened per-row draw ``randn(seeds, step, shape)``: ``(B, stop − start)``.

    Bit-identical to slicing the full draw, while computing (and holding float64/int64
    temporaries for) only the requested elements: a solver can take its noise for one inner step
    of a long chain at a time (DAPS's Langevin steps) with the samples of a single draw.
    """
    device = torch.device(device)
    seeds = torch.as_tensor(seeds, dtype=torch.int64).to(device)
    n = math.prod(int(size) for size in shape)
    if not 0 <= start <= stop <= n:
        raise ValueError(f"need 0 <= start <= stop <= {n}, got {start} and {stop}.")
    pairs = (n + 1) // 2
    salt = _to_signed(mix(step, stream))
    keys = _splitmix64_tensor(_splitmix64_tensor(seeds) ^ salt)  # (B,)
    out = torch.empty((seeds.shape[0], stop - start), dtype=dtype, device=device)
    # element k < pairs is r(u_k) cos(2π u_{pairs+k}); element k ≥ pairs is r(u_p) sin(2π u_{pairs+p}), p = k − pairs.
    # Computed in pieces of at most CHUNK_ELEMENTS values (element-wise, so bit-identical to one piece),
    # which bounds the int64 / float64 temporaries whatever the batch and the image size.
    width = max(1, CHUNK_ELEMENTS // max(1, seeds.shape[0]))
    for cut in (range(start, min(stop, pairs), width), range(max(start, pairs), stop, width)):
        for a in cut:
            b = min(a + width, pairs if a < pairs else stop, stop)
            p = torch.arange(a, b, dtype=torch.int64, device=device) - (pairs if a >= pairs else 0)
            radius = (-2.0 * _uniform(keys, p).log()).sqrt()
            angle = 2.0 * math.pi * _uniform(keys, pairs + p)
            out[:, a - start:b - start] = radius * (angle.cos() if a < pairs else angle.sin())
    return out


#: the most values :func:`randn_slice` computes at once (bounds its temporaries: ~8 MiB each)
CHUNK_ELEMENTS = 1 << 20


def _uniform(keys: Tensor, counter: Tensor) -> Tensor:
    """Uniform (0, 1) float64 ``(B, len)`` from the row keys ``(B,)`` and element counters ``(len,)``."""
    bits = _splitmix64_tensor(keys[:, None] ^ _splitmix64_tensor(counter)[None])
    return (_srl(bits, 11).to(torch.float64) + 0.5) / float(1 << 53)
