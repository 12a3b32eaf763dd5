"""Speed and memory of every solver against the cost of its network, in one run on one machine.

What it measures, every figure a ratio or a curve timed in the same run:

* **overhead**: each solver preset's wall time ÷ the network-cost limit: each of its network
  calls at the network's own forward time for that call's rows, plus each backward pass that
  reaches a call's input at the network's own backward time (one per ``autograd`` pass: DPS makes
  one per call, MMPS ``cg_iterations + 1``), the network timed alone in the same run. 1.0 is the
  limit; the rest is the solver's own arithmetic, operator calls and Python. Steps are reduced
  (``STEPS``) so that every solver fits: the ratio is per network call, the step count only sets
  how long it is averaged.
* **against deepinv**: our DPS, DiffPIR and DDRM and deepinv 0.5's (``deepinv.sampling``) on the
  same wrapped network, problem, steps and batch: time ratio (ours ÷ theirs), also per network call
  (deepinv's calls counted: its DPS makes one fewer than its step count), and PSNR of one sample.
* **batch scaling**: images per second of DPS for M × K = 1, 4, 16 (64 on GPU) rows in one batch
  against the same rows solved one at a time.
* **gradient checkpointing**: DPS with and without ``gradient_checkpointing`` (time; peak memory
  on CUDA).
* **memory** (CUDA only: ``torch.cuda.max_memory_allocated``): each solver's peak at its batch;
  and ``--memory``, on any device: every solver's peak at 3×256² (``natural-gray``'s network with
  3 channels, random weights) for 1 × 4 and 4 × 4 rows, each solve in a fresh process, beside
  the peak of the network pass it makes, alone (:func:`memory_rows`).
* **precision and layout**: DPS (20 steps) on ``natural-gray`` with the network in bf16, in
  ``channels_last`` and (``--full``) under ``torch.compile`` (:func:`invprob.priors.loading.set_network_options`;
  the solver state stays float32): time ratio to float32 and PSNR difference of the same sample.
* **quality per second**: PSNR of the posterior mean (2 samples) on Set12 crops against wall time
  for DPS, DAPS, DiffPIR, DDNM+, ΠGDM and RED-Diff at three budgets (a Pareto plot).

Settings: ``--quick`` (CPU; ``natural-gray`` at 64², random 70 % inpainting of Set12 centre crops,
batch 8 = 2 measurements × 4 samples; a few minutes on 2 cores) and ``--full`` (GPU; ``natural-gray``
at 256² and deepinv's ``DiffUNet`` in the FFHQ-256 ADM configuration with random weights,
batch 16). Results: ``benchmarks/results/speed_<setting>.{json,md}`` and
``speed_<setting>_pareto.png``, with the device, torch / deepinv versions and the commit.
Nothing else may run on the machine while it times.

Usage:
    python benchmarks/speed.py --quick
    python benchmarks/speed.py --full --device cuda        # benchmarks/gpu/speed.sh
    python benchmarks/speed.py --memory                    # CPU: speed_memory.{json,md}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

from invprob import Problem
from invprob.evaluation import psnr, set12
from invprob.noise import Gaussian
from invprob.operators import Inpainting
from invprob.registry import get_prior, get_solver
from restoration_set12 import run_deepinv  # benchmarks/restoration_set12.py, beside this script

RESULTS = Path(__file__).resolve().parent / "results"
SIGMA_Y = 0.05
# preset -> overrides reducing its steps (the overhead is per network call)
STEPS = {
    "dps": {"num_steps": 20}, "mcg": {"num_steps": 20}, "reddiff": {"num_steps": 20},
    "daps": {"num_steps": 4, "ode_steps": 2, "langevin_steps": 20},
    "daps-hmc-inpainting-random": {"num_steps": 4, "ode_steps": 2},
    "diffpir-inpainting": {}, "ddnm": {"num_steps": 20}, "ddrm": {}, "pigdm": {"num_steps": 20},
    "mmps": {"num_steps": 8}, "tds": {"num_steps": 20, "num_particles": 4},
    "enkg": {"num_steps": 4, "ensemble_size": 8}, "tempered-smc": {"num_steps": 4, "langevin_steps": 5,
                                                                   "num_particles": 8, "prior_steps": 5},
}
# Pareto: solver preset -> (three budgets as overrides)
PARETO = {
    "dps-inpainting": [{"num_steps": n} for n in (10, 25, 50)],
    "daps": [{"num_steps": n, "ode_steps": 2, "langevin_steps": 20} for n in (5, 10, 20)],
    "diffpir-inpainting": [{"num_steps": n} for n in (10, 20, 50)],
    "ddnm": [{"num_steps": n} for n in (10, 25, 50)],
    "pigdm": [{"num_steps": n} for n in (10, 25, 50)],
    "reddiff": [{"num_steps": n} for n in (10, 25, 50)],
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeat: int = 1) -> float:
    """Seconds of one call of ``fn`` (the best of ``repeat``, after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def network_seconds(prior, x_shape, rows: int, backward: bool, device: torch.device, cache: dict) -> float:
    """One denoiser call on ``rows`` images at σ = 1 (with a backward pass to the input when
    ``backward``), timed alone, memoised per ``(rows, backward)``."""
    key = (rows, backward)
    if key not in cache:
        x = torch.randn((rows, *x_shape), device=device, dtype=prior.dtype)
        sigma = torch.ones(rows, device=device, dtype=prior.dtype)

        def call():
            if backward:
                xg = x.clone().requires_grad_(True)
                torch.autograd.grad(prior.denoise(xg, sigma).sum(), xg)
            else:
                with torch.no_grad():
                    prior.denoise(x, sigma)

        with prior.suspend_denoise_hooks():
            cache[key] = timed(call, device, repeat=3)
    return cache[key]


def problem_for(images: torch.Tensor, device: torch.device) -> Problem:
    operator = Inpainting(tuple(images.shape[1:]), kind="random", missing=0.7, seed=0).to(device)
    return Problem.simulate(operator, images.to(device), Gaussian(SIGMA_Y),
                            generator=torch.Generator(device).manual_seed(0))


def count_network_passes(prior, log: dict):
    """Register a denoise hook that logs, in ``log``, the rows of every network call
    (``"forward"``) and of every backward pass that reaches a call's input (``"backward"``: one
    per ``autograd`` pass, so MMPS's extra vector–Jacobian products count). Returns its handle."""
    mark = f"_speed_counted_{id(log)}"  # per log: two live counters each hook an input once

    def hook(_prior, x, _sigma):
        log["forward"].append(x.shape[0])
        if x.requires_grad and not getattr(x, mark, False):  # hooked once, however often denoised
            setattr(x, mark, True)
            x.register_hook(lambda grad: log["backward"].append(grad.shape[0]))

    return prior.register_denoise_hook(hook)


def overhead_rows(prior, problem, num_samples: int, device: torch.device) -> dict:
    """Each preset's wall time ÷ the network-cost limit: its logged forward calls, each at the
    network's own forward time for its rows, plus its logged backward passes, each at the
    network's backward time (forward + backward, less forward) for its rows."""
    cache: dict = {}
    rows = {}
    for preset, overrides in STEPS.items():
        solver = get_solver(preset, **overrides)
        log = {"forward": [], "backward": []}
        handle = count_network_passes(prior, log)
        try:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            solver.solve(problem, prior, num_samples=num_samples, generator=0, progress=False)  # warm-up
            log["forward"].clear(), log["backward"].clear()
            sync(device)
            result = solver.solve(problem, prior, num_samples=num_samples, generator=0, progress=False)
            sync(device)
        except Exception as err:  # noqa: BLE001 — a row that cannot run says why
            rows[preset] = {"error": " ".join(str(err).split())[:200]}
            continue
        finally:
            handle.remove()
        x_shape = problem.operator.x_shape
        limit = sum(network_seconds(prior, x_shape, n, False, device, cache) for n in log["forward"])
        limit += sum(network_seconds(prior, x_shape, n, True, device, cache)
                     - network_seconds(prior, x_shape, n, False, device, cache) for n in log["backward"])
        batch = result.state.x.shape[0]
        calls = len(log["forward"])
        rows[preset] = {"overrides": overrides, "batch": batch, "nfe": result.nfe, "network_calls": calls,
                        "backward": bool(log["backward"]),
                        "backward_per_call": len(log["backward"]) / calls if calls else 0.0,
                        "seconds": result.seconds, "network_limit_seconds": limit,
                        "overhead": result.seconds / limit if limit else None}
        if device.type == "cuda":
            rows[preset]["peak_memory_bytes"] = torch.cuda.max_memory_allocated(device)
        print(f"{preset:28s} batch {batch:3d} NFE {result.nfe:4d} {passes(rows[preset]):12s} "
              f"{result.seconds:7.2f}s  overhead {rows[preset]['overhead'] or float('nan'):.2f}", flush=True)
    return rows


def passes(row: dict) -> str:
    """``fwd``, ``fwd+bwd`` or ``fwd+2 bwd``: the network passes per call of an overhead row."""
    per = row.get("backward_per_call", 1.0 if row["backward"] else 0.0)
    if not per:
        return "fwd"
    return "fwd+bwd" if round(per, 2) == 1 else f"fwd+{per:.3g} bwd"


def deepinv_rows(prior, problem, truth, device: torch.device) -> dict:
    """Our DPS (20 steps), DiffPIR and DDRM (their inpainting presets) against deepinv's samplers on
    the same network, problem, steps and batch (one sample per measurement), each in the units
    deepinv expects (``restoration_set12.run_deepinv``); the second of two runs is timed."""
    pairs = {"dps": ("dps", {"num_steps": 20}), "diffpir": ("diffpir-inpainting", {}), "ddrm": ("ddrm", {})}
    out = {}
    for kind, (preset, overrides) in pairs.items():
        ours = get_solver(preset, **overrides)
        steps = overrides.get("num_steps", ours.num_steps)
        runs = [ours.solve(problem, prior, num_samples=1, generator=0, progress=False) for _ in range(2)]
        calls: list = []
        handle = prior.register_denoise_hook(lambda *_: calls.append(1))  # deepinv's own network calls
        try:
            theirs = [run_deepinv(kind, problem, prior, {"diffpir": preset}, num_steps=steps) for _ in range(2)]
        finally:
            handle.remove()
        their_nfe = len(calls) // 2
        p_ours = float(psnr(runs[1].samples[:, 0].detach().cpu(), truth).mean())
        p_theirs = float(psnr(theirs[1].samples[:, 0].detach().cpu().float(), truth).mean())
        out[kind] = {"preset": preset, "num_steps": steps, "batch": problem.num_measurements,
                     "ours_seconds": runs[1].seconds, "deepinv_seconds": theirs[1].seconds,
                     "time_ratio": runs[1].seconds / theirs[1].seconds, "nfe_ours": runs[1].nfe, "nfe_deepinv": their_nfe,
                     "time_ratio_per_call": (runs[1].seconds / runs[1].nfe) / (theirs[1].seconds / their_nfe),
                     "psnr_ours": p_ours, "psnr_deepinv": p_theirs,
                     "psnr_difference": p_ours - p_theirs}
        print(f"{kind} vs deepinv: time ratio {out[kind]['time_ratio']:.2f} (per network call "
              f"{out[kind]['time_ratio_per_call']:.2f}), PSNR {p_ours:.2f} vs {p_theirs:.2f}", flush=True)
    return out


def batch_scaling(prior, image: torch.Tensor, sizes: list[int], device: torch.device) -> dict:
    """Images per second of DPS (20 steps) for ``n`` rows (n measurements × 1 sample) in one batch
    and one at a time."""
    solver = get_solver("dps", num_steps=20)
    out = {}
    for n in sizes:
        problem = problem_for(image.expand(n, *image.shape[1:]).clone(), device)
        together = timed(lambda: solver.solve(problem, prior, num_samples=1, generator=0, progress=False), device)
        single = problem_for(image, device)
        alone = timed(lambda: solver.solve(single, prior, num_samples=1, generator=0, progress=False), device) * n
        out[n] = {"one_batch_images_per_second": n / together, "one_at_a_time_images_per_second": n / alone,
                  "speedup": alone / together}
        print(f"batch {n:3d}: {n / together:.2f} img/s in one batch, {n / alone:.2f} one at a time", flush=True)
    return out


def checkpointing(prior, problem, num_samples: int, device: torch.device) -> dict:
    out = {}
    for flag in (False, True):
        solver = get_solver("dps", num_steps=20, gradient_checkpointing=flag)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        seconds = timed(lambda: solver.solve(problem, prior, num_samples=num_samples, generator=0, progress=False),
                        device)
        out["on" if flag else "off"] = {"seconds": seconds, **({"peak_memory_bytes": torch.cuda.max_memory_allocated(
            device)} if device.type == "cuda" else {})}
    out["time_ratio"] = out["on"]["seconds"] / out["off"]["seconds"]
    if device.type == "cuda":
        out["memory_ratio"] = out["off"]["peak_memory_bytes"] / out["on"]["peak_memory_bytes"]
    print(f"gradient checkpointing: time x{out['time_ratio']:.2f}", flush=True)
    return out


def network_options(problem, truth: torch.Tensor, num_samples: int, device: torch.device, compile_too: bool) -> dict:
    """DPS (20 steps) on ``natural-gray`` built with each network option, against float32."""
    options = {"float32": {}, "bf16": {"dtype": "bfloat16"}, "channels_last": {"channels_last": True}}
    if compile_too:
        options["compile"] = {"compile": True}
    solver = get_solver("dps", num_steps=20)
    out = {}
    for label, kwargs in options.items():
        prior = get_prior("natural-gray", **kwargs).to(device)
        holder = {}
        try:
            seconds = timed(lambda: holder.__setitem__("r", solver.solve(problem, prior, num_samples=num_samples,
                                                                          generator=0, progress=False)), device)
        except Exception as err:  # noqa: BLE001 — an option this machine lacks says why
            out[label] = {"error": " ".join(str(err).split())[:200]}
            continue
        mean = holder["r"].samples.mean(1).detach().cpu().float()
        out[label] = {"seconds": seconds, "psnr": float(psnr(mean, truth).mean())}
    base = out["float32"]
    for row in out.values():
        if "seconds" in row:
            row["time_ratio"], row["psnr_difference"] = row["seconds"] / base["seconds"], row["psnr"] - base["psnr"]
    print("network options: " + ", ".join(f"{k} x{v['time_ratio']:.2f} ({v['psnr_difference']:+.2f} dB)"
                                          for k, v in out.items() if "seconds" in v), flush=True)
    return out


def pareto(prior, images: torch.Tensor, device: torch.device) -> dict:
    problem = problem_for(images, device)
    out = {}
    for preset, budgets in PARETO.items():
        out[preset] = []
        for overrides in budgets:
            solver = get_solver(preset, **overrides)
            sync(device)
            result = solver.solve(problem, prior, num_samples=2, generator=0, progress=False)
            sync(device)
            value = float(psnr(result.samples.mean(1).detach().cpu(), images).mean())
            out[preset].append({"overrides": overrides, "nfe": result.nfe, "seconds": result.seconds, "psnr": value})
            print(f"{preset:20s} {overrides} PSNR {value:.2f} in {result.seconds:.1f}s", flush=True)
    return out


# --memory: (label, preset, overrides): a few steps each, since every state and temporary exists
# from the first step on (the two DAPS rows show it: 20 and the paper's 100 Langevin steps).
MEMORY_ROWS = [
    ("dps", "dps", {"num_steps": 3}),
    ("dps, gradient checkpointing", "dps", {"num_steps": 3, "gradient_checkpointing": True}),
    ("mcg", "mcg", {"num_steps": 3}), ("reddiff", "reddiff", {"num_steps": 3}),
    ("daps, 20 Langevin steps", "daps", {"num_steps": 2, "ode_steps": 2, "langevin_steps": 20}),
    ("daps, 100 Langevin steps", "daps", {"num_steps": 2, "ode_steps": 2, "langevin_steps": 100}),
    ("daps-hmc-inpainting-random", "daps-hmc-inpainting-random", {"num_steps": 2, "ode_steps": 2}),
    ("diffpir-inpainting", "diffpir-inpainting", {"num_steps": 3}), ("ddnm", "ddnm", {"num_steps": 3}),
    ("ddrm", "ddrm", {"num_steps": 3}), ("pigdm", "pigdm", {"num_steps": 3}), ("mmps", "mmps", {"num_steps": 2}),
    ("tds", "tds", {"num_steps": 3, "num_particles": 4}), ("enkg", "enkg", {"num_steps": 2, "ensemble_size": 8}),
    ("tempered-smc", "tempered-smc", {"num_steps": 2, "langevin_steps": 5, "num_particles": 8, "prior_steps": 2}),
]


def random_gray_architecture(channels: int, size: int):
    """``natural-gray``'s network (its shipped ``config.json``) with ``channels`` input and
    output channels and random weights (seed 0), wrapped as the same EDM prior at ``size``²."""
    from diffusers import UNet2DModel

    import invprob
    from invprob.priors.shipped import prior_from_network

    config = json.loads((Path(invprob.__file__).parent / "weights" / "natural-gray" / "config.json").read_text())
    torch.manual_seed(0)
    unet = UNet2DModel(**{**config["unet"], "in_channels": channels, "out_channels": channels, "sample_size": size})
    return prior_from_network(unet, {**config, "x_shape": [channels, size, size]})


def _resident(field: str) -> int:
    """``VmRSS`` or ``VmHWM`` of this process, bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_cell(label: str, measurements: int, num_samples: int, size: int, device: str) -> dict:
    """One ``--memory`` row, in a fresh process: the peak memory of a solve (or, for the labels
    ``network forward`` / ``network forward+backward``, of one such pass on ``rows`` images)
    above the process's memory just before it — resident set on the CPU (``VmHWM`` after
    resetting it through ``/proc/self/clear_refs``), torch's allocations on CUDA."""
    import ctypes
    import gc

    dev = torch.device(device)
    prior = random_gray_architecture(3, size).to(dev)
    if not label.startswith("network"):
        top = (256 - size) // 2
        images = set12()[:measurements, :, top:top + size, top:top + size].expand(-1, 3, -1, -1).clone()
        problem = problem_for(images, dev)
    x = torch.randn((1, 3, size, size), device=dev, requires_grad=True)
    torch.autograd.grad(prior.denoise(x, torch.ones(1, device=dev)).sum(), x)  # warm-up: libraries' own buffers
    del x
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        start = torch.cuda.memory_allocated(dev)
    else:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        start = _resident("VmRSS")
    began = time.perf_counter()
    if label.startswith("network"):
        rows = measurements * num_samples
        x = torch.randn((rows, 3, size, size), device=dev, requires_grad="backward" in label)
        with torch.set_grad_enabled("backward" in label):
            out = prior.denoise(x, torch.ones(rows, device=dev))
            if "backward" in label:
                torch.autograd.grad(out.sum(), x)
        nfe = 1
    else:
        _, preset, overrides = next(row for row in MEMORY_ROWS if row[0] == label)
        grads = []
        handle = prior.register_denoise_hook(lambda _p, x, _s: grads.append(x.requires_grad))
        result = get_solver(preset, **overrides).solve(problem, prior, num_samples=num_samples, generator=0,
                                                       progress=False)
        handle.remove()
        rows, nfe = result.state.x.shape[0], result.nfe
    sync(dev)
    seconds = time.perf_counter() - began
    peak = (torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else _resident("VmHWM")) - start
    return {"rows": rows, "nfe": nfe, "seconds": seconds, "peak_bytes": peak,
            "backward": "backward" in label if label.startswith("network") else any(grads),
            "batch_copy_bytes": rows * 3 * size * size * 4}


def _memory_child(queue, *args) -> None:
    try:
        queue.put(memory_cell(*args))
    except Exception as err:  # noqa: BLE001 — reported by the parent, which would otherwise wait
        queue.put({"error": f"{type(err).__name__}: {' '.join(str(err).split())[:200]}"})


def memory_rows(batches: list[tuple[int, int]], size: int, device: str) -> dict:
    """Every ``MEMORY_ROWS`` solve and the network's own passes, each in a fresh process, for
    each (measurements, samples) in ``batches``; then each solve's peak beyond the network pass it
    makes (forward, or forward+backward when it differentiates through the network) at its rows."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")

    def run(label, m, k):
        import queue as queues

        channel = context.Queue()
        child = context.Process(target=_memory_child, args=(channel, label, m, k, size, device))
        child.start()
        while True:  # a child killed for memory sends nothing: its exit code says so
            try:
                result = channel.get(timeout=5)
                break
            except queues.Empty:
                if not child.is_alive():
                    result = {"error": f"the process ended with exit code {child.exitcode} (out of memory?)"}
                    break
        child.join()
        return result

    out = {}
    for m, k in batches:
        section = {}
        for label, _, _ in MEMORY_ROWS:
            section[label] = run(label, m, k)
            print(f"{m}x{k} {label:32s} {section[label]}", flush=True)
        networks = {}
        for rows, backward in sorted({(r["rows"], r["backward"]) for r in section.values() if "rows" in r}):
            label = f"network forward{'+backward' if backward else ''}"
            networks[f"{label} | {rows}"] = run(label, rows, 1)  # the network alone on `rows` images
            print(f"{m}x{k} {label} on {rows} rows: {networks[f'{label} | {rows}']}", flush=True)
        for label, _, overrides in MEMORY_ROWS:
            row = section[label]
            if "rows" in row:
                net = networks[f"network forward{'+backward' if row['backward'] else ''} | {row['rows']}"]
                row["network_peak_bytes"] = net.get("peak_bytes")
                # a checkpointed pass keeps less than the plain pass it is compared with: no "beyond"
                if row["network_peak_bytes"] is not None and not overrides.get("gradient_checkpointing"):
                    row["beyond_network_batch_copies"] = (row["peak_bytes"] - row["network_peak_bytes"]) / row[
                        "batch_copy_bytes"]
        out[f"{m}x{k}"] = {"solves": section, "networks": networks}
    return out


def pareto_title(report: dict) -> str:
    return (f"{report['device']}, {report['network']}: Set12 centre crops, random 70 % inpainting, "
            f"{report['pareto_images']} images × 2 samples")


def plot(points: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for preset, rows in points.items():
        ax.plot([r["seconds"] for r in rows], [r["psnr"] for r in rows], "o-", label=preset)
    ax.set_xscale("log")
    ax.set_xlabel("wall time of the solve (s)")
    ax.set_ylabel("PSNR of the posterior mean (dB)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(report: dict) -> str:
    lines = [f"Produced by `{report['command']}` on {report['device']} ({report['threads']} threads), torch "
             f"{report['torch']}, deepinv {report['deepinv']}, commit {report['commit']}, {report['date']}. "
             f"{report['network']}, {report['images']}; each figure below is a ratio or curve of this one run.", ""]
    for network, section in report["networks"].items():
        lines += [f"## {network}", "", "| solver (reduced steps) | batch | NFE | network pass | seconds | overhead |"
                  + (" peak memory |" if report["device_type"] == "cuda" else ""),
                  "|---|---|---|---|---|---|" + ("---|" if report["device_type"] == "cuda" else "")]
        for preset, row in section["overhead"].items():
            if "error" in row:
                lines.append(f"| {preset} | | | | | failed: {row['error']} |")
                continue
            memory = f" {row['peak_memory_bytes'] / 2**30:.2f} GiB |" if "peak_memory_bytes" in row else ""
            lines.append(f"| {preset} {row['overrides']} | {row['batch']} | {row['nfe']} | "
                         f"{passes(row)} | {row['seconds']:.2f} | {row['overhead']:.2f} |{memory}")
        d = section.get("deepinv")
        if d:
            lines += ["", "| against deepinv (same network, problem, steps, batch) | steps | network calls ours / deepinv | "
                          "ours (s) | deepinv (s) | time ratio | per network call | PSNR ours / deepinv |",
                      "|---|---|---|---|---|---|---|---|"]
            lines += [f"| {k} ({r['preset']}) | {r['num_steps']} | {r['nfe_ours']} / {r['nfe_deepinv']} | "
                      f"{r['ours_seconds']:.2f} | {r['deepinv_seconds']:.2f} | {r['time_ratio']:.2f} | "
                      f"{r['time_ratio_per_call']:.2f} | {r['psnr_ours']:.2f} / {r['psnr_deepinv']:.2f} |" for k, r in d.items()]
        b = section.get("batch_scaling")
        if b:
            lines += ["", "| rows | images/s in one batch | images/s one at a time | speed-up |", "|---|---|---|---|"]
            lines += [f"| {n} | {r['one_batch_images_per_second']:.2f} | {r['one_at_a_time_images_per_second']:.2f} | "
                      f"{r['speedup']:.2f} |" for n, r in b.items()]
        c = section.get("checkpointing")
        if c:
            lines += ["", f"DPS with gradient checkpointing: {c['time_ratio']:.2f}× the time"
                          + (f", {c['memory_ratio']:.2f}× lower peak memory." if "memory_ratio" in c else
                             " (peak memory: CUDA only).")]
        o = section.get("options")
        if o:
            lines += ["", "| network option (DPS, 20 steps) | seconds | time ratio | PSNR difference |", "|---|---|---|---|"]
            lines += [f"| {k} | failed: {v['error']} | | |" if "error" in v else
                      f"| {k} | {v['seconds']:.2f} | {v['time_ratio']:.2f} | {v['psnr_difference']:+.2f} dB |"
                      for k, v in o.items()]
        if section.get("pareto"):
            lines += ["", f"Quality per second: `{section['pareto_plot']}` (PSNR of the mean of 2 samples, "
                          f"{report['pareto_images']} images).", "", "| solver | budget | NFE | seconds | PSNR |",
                      "|---|---|---|---|---|"]
            lines += [f"| {p} | {r['overrides']} | {r['nfe']} | {r['seconds']:.2f} | {r['psnr']:.2f} |"
                      for p, rows in section["pareto"].items() for r in rows]
        lines.append("")
    return "\n".join(lines)


def memory_markdown(report: dict) -> str:
    gib = 2**30
    lines = [f"Produced by `{report['command']}` on {report['device']} ({report['threads']} threads), torch "
             f"{report['torch']}, commit {report['commit']}, {report['date']}. {report['network']}. Peak memory "
             f"above the process's memory just before the solve ({report['measure']}), each row in a fresh "
             "process; a batch copy is one float32 array of the rows' images.", ""]
    for batch, section in report["memory"].items():
        m, k = batch.split("x")
        lines += [f"## {m} measurement{'s' if m != '1' else ''} × {k} samples", "",
                  "| solver (a few steps) | rows | NFE | network pass | peak (GiB) | that pass alone (GiB) | "
                  "beyond it (batch copies) | seconds (one cold run) |", "|---|---|---|---|---|---|---|---|"]
        for label, row in section["solves"].items():
            if "error" in row:
                lines.append(f"| {label} | failed: {row['error']} | | | | | | |")
                continue
            beyond = row.get("beyond_network_batch_copies")
            net_peak = "failed" if row.get("network_peak_bytes") is None else f"{row['network_peak_bytes'] / gib:.2f}"
            lines.append(f"| {label} | {row['rows']} | {row['nfe']} | {'fwd+bwd' if row['backward'] else 'fwd'} | "
                         f"{row['peak_bytes'] / gib:.2f} | {net_peak} | "
                         f"{'' if beyond is None else f'{beyond:.1f}'} | {row['seconds']:.1f} |")
        solves = section["solves"]
        off, on = solves.get("dps", {}), solves.get("dps, gradient checkpointing", {})
        if "peak_bytes" in off and "peak_bytes" in on:
            lines += ["", f"DPS with gradient checkpointing: {off['peak_bytes'] / on['peak_bytes']:.2f}× lower peak "
                          "(its time ratio: `speed_quick.md`)."]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--quick", action="store_true", help="CPU, natural-gray at 64²")
    mode.add_argument("--full", action="store_true", help="GPU, natural-gray and DiffUNet (FFHQ-256) at 256²")
    mode.add_argument("--memory", action="store_true",
                      help="peak memory of every solver at 3×256² (natural-gray's architecture, 3 channels)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--image-size", type=int, default=None, help="override the setting's image side")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    setting = "quick" if args.quick else "full" if args.full else "memory"
    device = torch.device(args.device or ("cuda" if args.full else "cpu"))
    size = args.image_size or (64 if args.quick else 256)
    measurements, num_samples = (2, 4) if args.quick else (4, 4)
    sizes = [1, 4, 16] if args.quick else [1, 4, 16, 64]
    top = (256 - size) // 2
    gray = set12()[:, :, top:top + size, top:top + size]
    networks = {"natural-gray": (get_prior("natural-gray").to(device), gray)}
    if args.full:
        from invprob.priors.adm import adm_prior, build_adm

        torch.manual_seed(0)
        adm = adm_prior(build_adm("ffhq"), size, clip_denoised=True).to(device)
        networks["DiffUNet FFHQ-256 (random weights)"] = (adm, gray.expand(-1, 3, -1, -1).clone())
    report = {"command": "python benchmarks/speed.py " + shlex.join(sys.argv[1:] if argv is None else argv),
              "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or
              platform.machine(), "device_type": device.type, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "deepinv": __import__("deepinv").__version__,
              # A device machine's copy of the tree has no .git: its call passes INVPROB_COMMIT.
              "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                       cwd=Path(__file__).parent).stdout.strip() or os.environ.get("INVPROB_COMMIT", ""),
              "date": time.strftime("%Y-%m-%d"), "network": f"{size}² images", "pareto_images": 2,
              "images": f"Set12 centre crops, random 70 % inpainting, σ_y = {SIGMA_Y}, batch {measurements} × "
                        f"{num_samples}", "networks": {}}
    args.out.mkdir(parents=True, exist_ok=True)
    if args.memory:
        report.update(network=f"3×{size}² images, natural-gray's network with 3 channels (random weights)",
                      measure="torch's allocations" if device.type == "cuda" else "resident set size",
                      memory=memory_rows([(1, 4), (4, 4)], size, str(device)))
        (args.out / "speed_memory.json").write_text(json.dumps(report, indent=1))
        (args.out / "speed_memory.md").write_text(memory_markdown(report))
        print(args.out / "speed_memory.md")
        return 0
    for name, (prior, images) in networks.items():
        print(f"== {name}", flush=True)
        problem = problem_for(images[:measurements], device)
        section = {"overhead": overhead_rows(prior, problem, num_samples, device)}
        one = problem_for(images[:measurements * num_samples], device)
        section["deepinv"] = deepinv_rows(prior, one, images[:measurements * num_samples], device)
        section["batch_scaling"] = batch_scaling(prior, images[:1], sizes, device)
        section["checkpointing"] = checkpointing(prior, problem, num_samples, device)
        if name == "natural-gray":
            section["options"] = network_options(problem, images[:measurements], num_samples, device, args.full)
            section["pareto"] = pareto(prior, images[:2], device)
            section["pareto_plot"] = f"speed_{setting}_pareto.png"
            plot(section["pareto"], args.out / section["pareto_plot"], pareto_title(report))
        report["networks"][name] = section
    (args.out / f"speed_{setting}.json").write_text(json.dumps(report, indent=1))
    (args.out / f"speed_{setting}.md").write_text(markdown(report))
    print(args.out / f"speed_{setting}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
