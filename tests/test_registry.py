import sys
import textwrap

import pytest

from invprob import registry
from invprob.solvers import DPS


def test_available_lists_every_group():
    menu = registry.available()
    assert set(menu) == {"solvers", "operators", "priors"}
    assert {"dps", "dps-inpainting", "dps-gmm-tuned"} <= set(menu["solvers"])
    assert "gmm-testbed" in menu["priors"]
    assert "gmm-inpainting" in menu["operators"]


def test_presets_build_with_their_defaults_and_overrides():
    dps = registry.get_solver("dps")
    assert isinstance(dps, DPS) and dps.scale == 1.0 and dps.num_steps == 1000
    assert registry.get_solver("dps-inpainting").scale == 0.5
    assert registry.get_solver("dps", scale=0.25).scale == 0.25
    assert registry.get_operator("gmm-gaussian-matrix").A.shape == (16, 64)
    assert registry.get_prior("gmm-testbed").x_shape == (1, 8, 8)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(KeyError, match="available: .*dps-inpainting"):
        registry.get_solver("dpss")
    with pytest.raises(TypeError, match="no argument"):
        registry.get_solver("dps", stepsize=1)


def test_entry_point_plugins(tmp_path, monkeypatch):
    pkg = tmp_path / "myplugin.py"
    pkg.write_text(textwrap.dedent("""
        from invprob.solvers import DPS
        class MySolver(DPS):
            pass
    """))
    dist = tmp_path / "myplugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myplugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[invprob.solvers]\nmy-solver = myplugin:MySolver\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "my-solver" in registry.available()["solvers"]
    solver = registry.get_solver("my-solver", scale=0.2)
    assert type(solver).__name__ == "MySolver" and solver.scale == 0.2


def test_core_does_not_import_hydra():
    import subprocess

    code = "import invprob, invprob.registry, invprob.solvers, sys; print('hydra' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
