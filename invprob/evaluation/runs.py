"""Running benchmark solves: measurements one at a time, each with its own seed, and the peak memory of a run."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from ..problem import Problem

__all__ = ["solve_each", "PeakMemory", "image_grid", "restoration_operators"]


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


def restoration_operators(n: int) -> dict:
    """The Set12 restoration tasks on ``1×n×n`` images: Gaussian deblurring (std 2 px, 25² kernel,
    reflect padding, float32), 4× bicubic super-resolution, 70 % random inpainting (mask seed 0)
    and a centred box of half the side: ``{task: operator}``."""
    from ..operators import GaussianBlur, Inpainting, SuperResolution

    shape = (1, n, n)
    return {"deblur (Gaussian)": GaussianBlur(kernel_size=25, std=2.0, padding="reflect", x_shape=shape).to(torch.float32),
            "4x SR (bicubic)": SuperResolution(factor=4, x_shape=shape, kind="bicubic"),
            "inpainting 70% random": Inpainting(shape, kind="random", missing=0.7, seed=0),
            "inpainting box": Inpainting(shape, kind="box", box_size=(n // 2, n // 2))}


def image_grid(figure: dict, path) -> None:
    """Write a figure of images in [-1, 1] to ``path``: one row per task (``{task: {label: image (1, H, W)}}``),
    one column per label (the benchmarks' restoration grids)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = max(len(v) for v in figure.values())
    fig, axes = plt.subplots(len(figure), cols, figsize=(1.8 * cols, 1.9 * len(figure)), squeeze=False)
    for r, (task, images) in enumerate(figure.items()):
        for c in range(cols):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(images):
                label, img = list(images.items())[c]
                ax.imshow(img[0].numpy(), cmap="gray", vmin=-1, vmax=1)
                ax.set_title(label if r == 0 or c > 1 else label, fontsize=6)
        axes[r][0].text(-0.1, 0.5, task, fontsize=7, rotation=90, va="center", ha="right",
                        transform=axes[r][0].transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
