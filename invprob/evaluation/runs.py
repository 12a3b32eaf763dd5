"""Running benchmark solves: measurements one at a time, each with its own seed, and the peak memory of a run."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from ..problem import Problem

__all__ = ["solve_each", "PeakMemory"]


def solve_each(solver, problem: Problem, prior, num_samples: int = 1, progress: bool = False) -> SimpleNamespace:
    """Solve measurement ``i`` of ``problem`` alone with seed ``i``.

    One solve of ``M`` measurements gives sample ``k`` of every measurement the same noise (a
    sample's seed does not depend on its measurement, so that a measurement solved alone
    reproduces its batch result); a mean over the measurements is then closer to one draw than
    to an average of ``M``. Returns ``samples (M, K, *x_shape)`` (on the CPU), ``nfe`` and
    ``decoder_calls`` (means over the measurements) and ``seconds`` (their sum)."""
    results = [solver.solve(Problem(problem.operator, problem.measurement[i:i + 1], problem.noise), prior,
                            num_samples=num_samples, generator=i, progress=progress)
               for i in range(problem.num_measurements)]
    return SimpleNamespace(samples=torch.cat([r.samples.detach().cpu() for r in results]),
                           nfe=sum(r.nfe for r in results) / len(results),
                           decoder_calls=sum(r.decoder_calls for r in results) / len(results),
                           seconds=sum(r.seconds for r in results))


class PeakMemory:
    """Peak memory of a block, in bytes above its start: the CUDA allocator's peak on a GPU; on
    the CPU the peak resident set size, sampled every 5 ms from ``/proc/self/statm`` (Linux),
    after glibc's ``malloc_trim`` has returned the memory earlier blocks freed."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.bytes = device, 0

    @staticmethod
    def rss() -> int:
        import os

        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self._peak = max(self._peak, self.rss())

    def __enter__(self) -> "PeakMemory":
        import threading

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
        else:
            try:  # hand freed heap memory back to the OS, so that reused pool memory counts again
                import ctypes

                ctypes.CDLL("libc.so.6").malloc_trim(0)
            except (OSError, AttributeError):
                pass
            self._start = self._peak = self.rss()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.bytes = torch.cuda.max_memory_allocated(self.device) - self._start
        else:
            self._stop.set()
            self._thread.join()
            self.bytes = max(self._peak, self.rss()) - self._start
