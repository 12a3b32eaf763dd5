"""The GMM benchmark's report keeps a log of every command that produced its rows."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import posterior_gmm  # noqa: E402


def test_merging_a_subset_keeps_the_rows_and_logs_both_commands(tmp_path):
    out = str(tmp_path / "gmm.json")
    first = ["--seed", "1", "--num-samples", "8", "--solvers", "reddiff", "--json", out]
    posterior_gmm.main(first)
    rows = json.loads(Path(out).read_text())["problems"]["inpainting"]["solvers"]
    posterior_gmm.main(first[:2] + ["--num-samples", "6"] + first[4:])  # same row, other command
    report = json.loads(Path(out).read_text())
    assert [r["command"].split("--num-samples ")[1][0] for r in report["runs"]] == ["8", "6"]
    assert set(report["problems"]["inpainting"]["solvers"]) == set(rows)
    md = (tmp_path / "gmm.md").read_text()
    assert md.index("--num-samples 8") < md.index("--num-samples 6") < md.index("| solver |")
