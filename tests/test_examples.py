"""Every example runs at its defaults and saves its figure (slow: up to 5 minutes each on 2
CPU cores). Their ``--quick`` form runs in the documentation build (``tests/test_docs.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import needs_data

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FIGURES = {"python_api": ["python_api.png"], "mri_reconstruction": ["mri_cartesian_4x.png"],
           "mri_multicoil_real_kspace": ["mri_multicoil_real_kspace.png"],
           "restoration_benchmark": ["restoration_benchmark.png", "restoration_benchmark.md"],
           "phase_retrieval": ["phase_retrieval.png"], "black_box_physics": ["black_box_physics.png"],
           "latent_posterior_sampling": ["latent_posterior_sampling.png"]}


def test_every_example_has_a_test_and_a_gallery_header():
    scripts = sorted(p.stem for p in EXAMPLES.glob("*.py"))
    assert scripts == sorted(FIGURES)
    for name in scripts:
        text = (EXAMPLES / f"{name}.py").read_text()
        assert len(text.splitlines()) < 150, name
        title = text.split('"""')[1].strip().splitlines()
        assert set(title[1]) == {"="} and len(title[1]) >= len(title[0]), name  # sphinx-gallery title


@pytest.mark.slow
@needs_data
@pytest.mark.parametrize("name", sorted(FIGURES))
def test_example_runs_at_its_defaults(name, tmp_path):
    proc = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), "--out", str(tmp_path)], capture_output=True,
                          text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for figure in FIGURES[name]:
        assert (tmp_path / figure).stat().st_size > 1000, figure
