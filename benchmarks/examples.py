"""Run every example of ``examples/`` at its defaults: wall time, exit status, what it printed.

What it measures: the wall time of ``python examples/<name>.py --out <folder>`` for each
example, one after another in fresh processes (nothing else should run on the machine), and the
lines each prints (its metrics). The figures go to ``benchmarks/results/examples/``; the table
to ``benchmarks/results/examples.md`` with the machine, the date and the commit. The target is
at most 5 minutes per example on 2 CPU cores.

Command of the committed results: ``python benchmarks/examples.py`` (with ``$INVPROB_DATA``
pointing at the data sets, or online).

Usage: python benchmarks/examples.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=None, help="example names (default: all)")
    args = parser.parse_args()
    names = args.only or sorted(p.stem for p in (ROOT / "examples").glob("*.py"))
    figures = RESULTS / "examples"
    figures.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
    rows = []
    for name in names:
        clock = time.perf_counter()
        proc = subprocess.run([sys.executable, str(ROOT / "examples" / f"{name}.py"), "--out", str(figures)],
                              capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, MPLBACKEND="Agg"))
        seconds = time.perf_counter() - clock
        printed = [line.strip() for line in proc.stdout.replace("\r", "\n").splitlines() if line.strip()]
        rows.append((name, proc.returncode, seconds, printed if proc.returncode == 0 else proc.stderr.splitlines()[-3:]))
        print(f"{name}: exit {proc.returncode}, {seconds:.0f} s", flush=True)
    lines = [f"# Examples at their defaults\n",
             f"`python benchmarks/examples.py{' --only ' + ' '.join(args.only) if args.only else ''}` — "
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
             f"{datetime.date.today().isoformat()}, commit {commit.strip() or 'unknown'}. Figures: `examples/`.\n",
             "| example | exit | wall time (s) |", "|---|---|---|"]
    lines += [f"| `{name}` | {rc} | {seconds:.0f} |" for name, rc, seconds, _ in rows]
    for name, _, _, printed in rows:
        lines += ["", f"## `{name}`", "", "```", *printed, "```"]
    out = RESULTS / ("examples.md" if not args.only else f"examples_{'_'.join(args.only)}.md")
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
