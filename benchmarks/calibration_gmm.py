"""Do calibrated presets transfer? ``invprob calibrate`` on the exact Gaussian-mixture test beds.

What it measures: for each test-bed family (``smooth``, ``anisotropic``), linear problem
(``inpainting``, ``gaussian_matrix``) and seed of ``--seeds`` (20–22 by default: no preset was
tuned, chosen or reported on them before), each solver is calibrated with
:func:`invprob.calibrate` on that seed's prior and operator from pairs simulated from the prior
alone — never the exact posterior, never the test measurement — and the calibrated preset is
then scored on the seed's test measurement against its exact posterior like every row of
``benchmarks/posterior_gmm.py`` (SW2 over the noise floor, 90 % coverage, 500 samples), beside
the paper preset and the ``*-gmm-tuned`` preset (tuned on seed 1 of ``smooth``).

Calibration settings (per solver): ``criterion=combined`` (best PSNR of the posterior mean
among the settings whose 90 % coverage is within 0.05 of 0.90), the default budget
(grid of 5 + 4 golden-section steps per hyper-parameter), pairs drawn with seed 0. DPS, MCG,
RED-Diff and the peers' solvers (DiffPIR, ΠGDM, DDRM, DDNM; ``--solvers``) use 16 pairs × 16
samples; DAPS 8 × 16 (its 1000 NFE with 100 Langevin steps per level cost ~8× DPS's per row);
EnKG 4 pairs with its ensemble of 512 (``enkg`` with ``ensemble_size=512``, as
``enkg-gmm-tuned``: the released 2048 costs 4× more), 16 of it scored.

Command of the committed results: ``python benchmarks/calibration_gmm.py`` (writes
``benchmarks/results/calibration_gmm.json``, one cell at a time, resumable), then
``python benchmarks/calibration_gmm.py --render`` writes ``benchmarks/results/calibration_gmm.md``.

Usage:
    python benchmarks/calibration_gmm.py [--seeds 20 21 22] [--families smooth anisotropic] [--solvers dps ...]
        (a cell run again with other --solvers gains their rows)
    python benchmarks/calibration_gmm.py --seeds 21 --families smooth --json part.json   # one of several processes
    python benchmarks/calibration_gmm.py --merge-from part.json                          # then into the results
    python benchmarks/calibration_gmm.py --render
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

import invprob
from invprob.evaluation import FAMILIES, PROBLEMS, make_problem
from posterior_gmm import run  # benchmarks/posterior_gmm.py, beside this script

RESULTS = Path(__file__).resolve().parent / "results"
OUT = RESULTS / "calibration_gmm.json"
SEEDS = (20, 21, 22)
# solver -> (base preset, overrides of the base, pairs, samples per pair, tuned preset or None)
SOLVERS = {
    "dps": ("dps", {}, 16, 16, "dps-gmm-tuned"),
    "mcg": ("mcg", {}, 16, 16, "mcg-gmm-tuned"),
    "daps": ("daps", {}, 8, 16, None),
    "reddiff": ("reddiff", {}, 16, 16, None),
    "enkg": ("enkg", {"ensemble_size": 512}, 4, 16, "enkg-gmm-tuned"),
    # the peers' methods at their paper presets (100 or 20 network calls)
    "diffpir": ("diffpir", {}, 16, 16, None),
    "pigdm": ("pigdm", {}, 16, 16, None),
    "ddrm": ("ddrm", {}, 16, 16, None),
    "ddnm": ("ddnm", {}, 16, 16, None),
}
DEFAULT_SOLVERS = ["dps", "mcg", "daps", "reddiff", "enkg"]
NUM_SAMPLES = 500


def cell(family: str, problem_name: str, seed: int, solvers: list[str]) -> dict:
    """Calibrate each solver on simulated pairs of this instance, then score the rows."""
    prior, problem, _ = make_problem(problem_name, seed=seed, family=family)
    calibrations, rows = {}, {}
    for name in solvers:
        base, overrides, pairs, samples, tuned = SOLVERS[name]
        cal = invprob.calibrate(base, problem.operator, problem.noise, prior, overrides=overrides, num_pairs=pairs,
                                num_samples=samples, seed=0, progress=False)
        chosen = cal.chosen
        calibrations[name] = {"best": cal.best, "start": cal.start, "psnr": chosen.psnr, "coverage": chosen.coverage,
                              "solves": len(cal.candidates), "network_images": cal.network_images,
                              "seconds": cal.seconds, "trace": [c.__dict__ for c in cal.candidates]}
        suffix = f" ({', '.join(f'{k} {v}' for k, v in overrides.items())})" if overrides else ""
        rows[f"{base}{suffix}"] = (base, overrides)
        if tuned:
            rows[tuned] = (tuned, {})
        rows[f"{base}{suffix} calibrated"] = (base, {**overrides, **cal.best})
        print(f"{family} {problem_name} seed {seed} {name}: {cal.best} (from {cal.start}), "
              f"{len(cal.candidates)} solves, {cal.seconds:.0f}s", flush=True)
    report = run(seed, NUM_SAMPLES, rows, problems=(problem_name,), deepinv_solvers={}, family=family, quiet=True)
    scored = report["problems"][problem_name]["solvers"]
    for label, row in scored.items():
        if "ratio" in row:
            print(f"  {label:40s} SW2/floor {row['ratio']:6.2f}  cov90 {row['coverage90']:.3f}", flush=True)
    return {"calibrations": calibrations, "rows": scored}


def render() -> str:
    data = json.loads(OUT.read_text())  # the committed results file
    cells = data["cells"]
    columns = [(f, p) for f in FAMILIES for p in PROBLEMS if any(k.startswith(f"{f}/{p}/") for k in cells)]
    labels: list[str] = []
    for c in cells.values():
        labels += [label for label in c["rows"] if label not in labels]
    seeds = sorted({int(k.split("/")[2]) for k in cells})
    lines = [f"SW2/floor to the exact posterior (mean ± standard deviation over seeds {', '.join(map(str, seeds))}; "
             "1 is as close as two exact sample sets) and mean 90 % coverage (0.90 is calibrated), "
             f"{data['num_samples']} samples per row. `calibrated` rows: the preset chosen by `invprob calibrate` "
             "on that seed's prior and operator from simulated pairs only. Produced by:", ""]
    lines += [f"- `{r['command']}` ({r['machine']}, {r['threads']} thread(s), {r['date']}, {round(r['seconds'] / 60)} min"
              f"{'; ' + r['note'] if r.get('note') else ''})" for r in data["runs"]]
    if any("--json" in r["command"] for r in data["runs"]):
        lines.append("- `python benchmarks/calibration_gmm.py --merge-from <file>` for each run above that wrote its "
                     "own `--json` file")
    lines += ["- `python benchmarks/calibration_gmm.py --render`", "",
              "| solver | " + " | ".join(f"{f} · {p}" for f, p in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for label in labels:
        out = []
        for f, p in columns:
            rows = [c["rows"].get(label) for k, c in cells.items() if k.startswith(f"{f}/{p}/")]
            ratios = [r["ratio"] for r in rows if r and "ratio" in r]
            if not ratios:
                out.append("refused" if any(r and "refused" in r for r in rows) else "")
                continue
            sd = statistics.stdev(ratios) if len(ratios) > 1 else 0.0
            cov = statistics.mean(r["coverage90"] for r in rows if r and "ratio" in r)
            refused = sum(1 for r in rows if r and "refused" in r)
            out.append(f"{statistics.mean(ratios):.2f} ± {sd:.2f} · cov {cov:.2f}"
                       + (f" ({refused} refused)" if refused else ""))
        lines.append(f"| {label} | " + " | ".join(out) + " |")
    lines += ["", "Chosen values per cell (family / problem / seed: solver value, solves, network images, seconds):", ""]
    for k, c in cells.items():
        parts = [f"{n} {', '.join(f'{p}={v:g}' for p, v in cal['best'].items())} ({cal['solves']} solves, "
                 f"{cal['network_images'] / 1e6:.1f} M images, {cal['seconds']:.0f} s)" for n, cal in c["calibrations"].items()]
        lines.append(f"- {k}: " + "; ".join(parts))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=PROBLEMS)
    parser.add_argument("--solvers", nargs="+", default=DEFAULT_SOLVERS, choices=list(SOLVERS))
    parser.add_argument("--note", default="")
    parser.add_argument("--json", type=Path, default=OUT, help="the results file (default: the committed one)")
    parser.add_argument("--merge-from", type=Path, nargs="+", default=[],
                        help="add the cells and runs of these results files (runs split over processes)")
    parser.add_argument("--render", action="store_true")
    args = parser.parse_args(argv)
    out = args.json
    if args.render:
        (RESULTS / "calibration_gmm.md").write_text(render())
        print(RESULTS / "calibration_gmm.md")
        return 0
    data = json.loads(out.read_text()) if out.is_file() else {"num_samples": NUM_SAMPLES, "cells": {}, "runs": []}
    if args.merge_from:
        for path in args.merge_from:
            other = json.loads(path.read_text())
            data["cells"].update(other["cells"])
            data["runs"] += other["runs"]
        out.write_text(json.dumps(data, indent=1))
        return 0
    command = "python benchmarks/calibration_gmm.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    run_record = {"command": command.strip(), "machine": platform.processor() or platform.machine(),
                  "threads": torch.get_num_threads(), "torch": torch.__version__,
                  "date": time.strftime("%Y-%m-%d"), "seconds": 0.0, "note": args.note}
    data["runs"].append(run_record)
    for seed in args.seeds:
        for family in args.families:
            for problem_name in args.problems:
                key = f"{family}/{problem_name}/{seed}"
                done = data["cells"].get(key, {"calibrations": {}, "rows": {}})
                missing = [s for s in args.solvers if s not in done["calibrations"]]
                if not missing:
                    continue
                start = time.perf_counter()
                new = cell(family, problem_name, seed, missing)  # added to the cell's rows
                data["cells"][key] = {"calibrations": {**done["calibrations"], **new["calibrations"]},
                                      "rows": {**done["rows"], **new["rows"]}}
                run_record["seconds"] += time.perf_counter() - start
                out.write_text(json.dumps(data, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
