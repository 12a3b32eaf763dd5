"""The documentation site builds with warnings as errors (examples run with ``--quick``).

Slow (a few minutes: every example runs); CI builds the site with ``make docs`` after the
tests (``.ci/run``)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import needs_data

ROOT = Path(__file__).resolve().parents[1]


def build_docs(out: Path, execute: str = "1") -> subprocess.CompletedProcess:
    """``sphinx -W --keep-going -b html docs <out>/html`` in quick mode; ``execute="0"`` renders
    the example gallery without running it."""
    env = dict(os.environ, INVPROB_DOCS_QUICK="1", INVPROB_DOCS_EXECUTE=execute, MPLBACKEND="Agg")
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
               "-d", str(out / "doctrees"), str(ROOT / "docs"), str(out / "html")]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)


@pytest.mark.slow
@needs_data
@pytest.mark.skipif(importlib.util.find_spec("sphinx") is None or importlib.util.find_spec("sphinx_gallery") is None
                    or importlib.util.find_spec("myst_parser") is None,
                    reason="the docs extra is not installed (pip install -e '.[docs]')")
def test_docs_build_quick(tmp_path):
    proc = build_docs(tmp_path)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-6000:]
        print(tail)
    assert proc.returncode == 0, f"sphinx exited with status {proc.returncode}; output tail:\n{(proc.stdout + proc.stderr)[-3000:]}"
    assert (tmp_path / "html" / "index.html").is_file()
