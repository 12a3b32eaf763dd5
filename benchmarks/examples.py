"""Run every example of ``examples/`` at its defaults: wall time, exit status, what it printed.

What it measures: the wall time of ``python examples/<name>.py --out <folder>`` for each
example, one after another in fresh processes (nothing else should run on the machine), and the
lines each prints (its metrics). The figures go to ``benchmarks/results/examples/``; the rows to
``benchmarks/results/examples.json`` and the table ``benchmarks/results/examples.md``, each row
with its command, machine, date and commit (``--only`` re-runs those examples and keeps the
other rows). The target is
at most 5 minutes per example on 2 CPU cores.

Each committed row names its command (``python benchmarks/examples.py`` or ``--only NAME``),
run with ``$INVPROB_DATA`` pointing at the data sets, or online.

Usage: python benchmarks/examples.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import datetime
import json
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
    store = RESULTS / "examples.json"  # one entry per example; --only replaces those it runs
    rows = json.loads(store.read_text()) if store.is_file() else {}
    command = "python benchmarks/examples.py" + (" --only " + " ".join(args.only) if args.only else "")
    for name in names:
        clock = time.perf_counter()
        proc = subprocess.run([sys.executable, str(ROOT / "examples" / f"{name}.py"), "--out", str(figures)],
                              capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, MPLBACKEND="Agg"))
        seconds = time.perf_counter() - clock
        printed = [line.strip() for line in proc.stdout.replace("\r", "\n").splitlines() if line.strip()]
        rows[name] = {"exit": proc.returncode, "seconds": seconds, "command": command,
                      "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                                 f"Python {platform.python_version()}",
                      "date": datetime.date.today().isoformat(), "commit": commit.strip() or "unknown",
                      "printed": printed if proc.returncode == 0 else proc.stderr.splitlines()[-3:]}
        print(f"{name}: exit {proc.returncode}, {seconds:.0f} s", flush=True)
        store.write_text(json.dumps(rows, indent=1))
    lines = ["# Examples at their defaults\n",
             "Each row: `python examples/<name>.py --out benchmarks/results/examples` run by the command, machine, "
             "date and commit it names. Figures: `examples/`.\n",
             "| example | exit | wall time (s) | command | machine, date, commit |", "|---|---|---|---|---|"]
    lines += [f"| `{name}` | {r['exit']} | {r['seconds']:.0f} | `{r['command']}` | {r['machine']}, {r['date']}, {r['commit']} |"
              for name, r in sorted(rows.items())]
    for name, r in sorted(rows.items()):
        lines += ["", f"## `{name}`", "", "```", *r["printed"], "```"]
    out = RESULTS / "examples.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
