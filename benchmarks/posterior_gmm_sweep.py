"""Tune a preset on some test-bed seeds, report it on others: a grid sweep on the exact posteriors.

What it does: every combination of the ``--grid`` values, applied as overrides to ``--preset``,
runs on both linear problems of the exact Gaussian-mixture test bed
(:func:`benchmarks.posterior_gmm.run`: SW2 to the exact posterior over the noise floor, 90 %
coverage, 500 samples) for each seed of ``--tune-seeds``. The chosen setting is the one with the
lowest geometric mean of SW2/floor over those seeds and both problems; a setting refused (or
giving a non-finite distance) on any cell scores infinity and is never chosen, and a tie goes to
the first setting in grid order. The chosen setting and the preset itself are then scored on
``--report-seeds``, which the choice never saw. The test bed is the ``smooth`` family
(``run``'s default); ``--latent`` runs the latent test bed (:func:`invprob.evaluation.latent_problem`).

Command of the committed results: ``python benchmarks/posterior_gmm_sweep.py --latent --preset
latent-daps-inpainting-random --grid num_steps=50,100,200 ode_steps=2,5 lr=4.2e-6,8.4e-6,1.68e-5
grad_clamp=1.0,none --json benchmarks/results/latent_daps_gmm_sweep.json`` (writes the ``.md``
beside it).

Usage:
    python benchmarks/posterior_gmm_sweep.py --preset NAME --grid KEY=V1,V2 ... [--latent]
        [--tune-seeds 1 2 3] [--report-seeds 7 20 21 22] [--num-samples 500] --json OUT.json
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import platform
import shlex
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from invprob.registry import get_solver
from posterior_gmm import run  # benchmarks/posterior_gmm.py, beside this script


def parse_value(text: str):
    """A grid value: ``none`` → None, ``true``/``false`` → bool, else int, float or the string."""
    low = text.lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_grid(items: list[str]) -> dict:
    """``["lr=1e-5,2e-5", "num_steps=50"]`` → ``{"lr": [1e-5, 2e-5], "num_steps": [50]}``."""
    grid = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise SystemExit(f"--grid: expected KEY=V1,V2,... , got {item!r}")
        grid[key] = [parse_value(v) for v in values.split(",")]
    return grid


def score(seeds: list[int], preset: str, overrides: dict, num_samples: int, latent: bool) -> dict:
    """SW2/floor and coverage of one setting on each seed and problem, and their geometric mean."""
    cells, start = {}, time.perf_counter()
    for seed in seeds:
        report = run(seed, num_samples, {"row": (preset, overrides)}, latent=latent, quiet=True,
                     deepinv_solvers={})
        for problem, section in report["problems"].items():
            row = section["solvers"]["row"]
            cells[f"{problem}, seed {seed}"] = ({"refused": row["refused"]} if "refused" in row else
                                                 {"ratio": row["ratio"], "coverage90": row["coverage90"]})
    ratios = [c["ratio"] for c in cells.values() if "ratio" in c and math.isfinite(c["ratio"]) and c["ratio"] > 0]
    geo = math.exp(sum(map(math.log, ratios)) / len(ratios)) if len(ratios) == len(cells) else math.inf
    return {"overrides": overrides, "cells": cells, "geometric_mean_ratio": geo,
            "seconds": time.perf_counter() - start}


def markdown(report: dict) -> str:
    def label(ov: dict) -> str:
        return ", ".join(f"{k}={v}" for k, v in ov.items()) or "(the preset)"

    lines = [f"Produced by `{report['command']}` on {report['machine']} ({report['threads']} threads), torch "
             f"{report['torch']}, {report['date']}, {report['minutes']:.0f} min. Preset `{report['preset']}`"
             f"{' on the latent test bed' if report['latent'] else ''}, {report['num_samples']} samples per row; "
             f"chosen on seeds {report['tune_seeds']} by the geometric mean of SW2/floor over the seeds and both "
             f"problems; reported on seeds {report['report_seeds']}, which the choice never saw.", "",
             "## Report seeds", "", "| setting | " + " | ".join(report["report"]["preset"]["cells"]) +
             " | geometric mean |", "|---" * (len(report["report"]["preset"]["cells"]) + 2) + "|"]
    for name in ("preset", "chosen"):
        row = report["report"][name]
        cells = " | ".join(f"{c['ratio']:.2f} · {c['coverage90']:.2f}" if "ratio" in c else "refused"
                           for c in row["cells"].values())
        lines.append(f"| {name}: {label(row['overrides'])} | {cells} | {row['geometric_mean_ratio']:.2f} |")
    lines += ["", "Each cell: SW2/floor · cov90.", "", "## Tuning seeds (the grid, best first)", "",
              "| setting | geometric mean SW2/floor | worst cell | seconds |", "|---|---|---|---|"]
    for row in sorted(report["grid"], key=lambda r: r["geometric_mean_ratio"]):
        worst = max((c.get("ratio", math.inf) for c in row["cells"].values()), default=math.inf)
        mean = f"{row['geometric_mean_ratio']:.2f}" if math.isfinite(row["geometric_mean_ratio"]) else "refused or diverged"
        lines.append(f"| {label(row['overrides'])} | {mean} | {worst:.2f} | "
                     f"{row['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", required=True, help="the solver preset whose settings are swept")
    parser.add_argument("--grid", nargs="+", required=True, metavar="KEY=V1,V2", help="override values to combine")
    parser.add_argument("--latent", action="store_true", help="the latent test bed")
    parser.add_argument("--tune-seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--report-seeds", type=int, nargs="+", default=[7, 20, 21, 22])
    parser.add_argument("--num-samples", type=int, default=500)
    parser.add_argument("--json", type=Path, required=True, help="write the report here (and the .md beside it)")
    args = parser.parse_args(argv)
    if set(args.tune_seeds) & set(args.report_seeds):
        parser.error("--tune-seeds and --report-seeds must not share a seed")
    grid = parse_grid(args.grid)
    settings = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    for overrides in settings:  # an unknown preset, argument or value: one line before any solve
        try:
            get_solver(args.preset, **overrides)
        except (KeyError, TypeError, ValueError) as err:
            parser.error(f"--preset {args.preset} with --grid {overrides}: {err.args[0] if err.args else err}")
    start = time.perf_counter()
    rows = []
    for overrides in tqdm(settings, desc="grid"):
        rows.append(score(args.tune_seeds, args.preset, overrides, args.num_samples, args.latent))
    best = min(rows, key=lambda r: r["geometric_mean_ratio"])
    if not math.isfinite(best["geometric_mean_ratio"]):
        raise SystemExit("every setting of the grid was refused (or diverged) on some tuning cell; nothing to choose")
    chosen = best["overrides"]
    report = {"command": "python benchmarks/posterior_gmm_sweep.py " + shlex.join(sys.argv[1:] if argv is None else argv),
              "machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
              "torch": torch.__version__, "date": datetime.date.today().isoformat(), "preset": args.preset,
              "latent": args.latent, "num_samples": args.num_samples, "tune_seeds": args.tune_seeds,
              "report_seeds": args.report_seeds, "grid": rows,
              "report": {"preset": score(args.report_seeds, args.preset, {}, args.num_samples, args.latent),
                         "chosen": score(args.report_seeds, args.preset, chosen, args.num_samples, args.latent)}}
    report["minutes"] = (time.perf_counter() - start) / 60
    args.json.write_text(json.dumps(report, indent=1))
    args.json.with_suffix(".md").write_text(markdown(report))
    print(args.json.with_suffix(".md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
