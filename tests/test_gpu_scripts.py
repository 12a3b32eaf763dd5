"""The device-call helpers of benchmarks/gpu/: every script parses, and tree.sh leaves paths out
of what a call sends and puts them back exactly (in a scratch git repository)."""

import shutil
import subprocess
from pathlib import Path

import pytest

GPU = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu"


@pytest.mark.parametrize("script", sorted(p.name for p in GPU.glob("*.sh")))
def test_scripts_parse(script):
    result = subprocess.run(["bash", "-n", str(GPU / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_tree_drop_size_and_restore(tmp_path):
    repo = tmp_path / "repo"
    (repo / "weights" / "big").mkdir(parents=True)
    (repo / "weights" / "big" / "model.bin").write_bytes(b"\0" * (3 << 20))  # 3 MiB
    (repo / "weights" / "small.txt").write_text("kept")
    (repo / "code.py").write_text("x = 1\n")
    _git(repo, "init", "-q")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    tree = ["bash", str(GPU / "tree.sh")]
    run = lambda *a: subprocess.run(tree + list(a), cwd=repo, capture_output=True, text=True)  # noqa: E731
    before = run("size")
    assert before.returncode == 0 and before.stdout.startswith("tree 3.0 MiB")
    assert run("drop", "weights/big").returncode == 0
    assert "weights/big/model.bin" not in _git(repo, "ls-files")
    assert _git(repo, "status", "--porcelain", "--untracked-files=all").strip() == "D  weights/big/model.bin"
    assert (repo / "weights" / "big" / "model.bin").stat().st_size == 3 << 20  # still on disk
    assert run("size").stdout.startswith("tree 0.0 MiB")
    again = run("drop", "weights/small.txt")
    assert again.returncode == 2 and "already dropped" in again.stderr
    assert run("restore").returncode == 0
    assert _git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert "benchmarks/gpu/tree.sh" not in (repo / ".git" / "info" / "exclude").read_text()
    (repo / "code.py").write_text("x = 2\n")
    _git(repo, "add", "code.py")
    staged = run("drop", "weights/big")
    assert staged.returncode == 2 and "staged" in staged.stderr
    assert run("size", "weights").returncode == 0 and "carry 3.0 MiB" in run("size", "weights").stdout
    _git(repo, "reset", "-q")
    untracked = run("drop", "nowhere")
    assert untracked.returncode != 0 and "nowhere" in untracked.stderr
    assert "benchmarks/gpu/tree.sh" not in (repo / ".git" / "info" / "exclude").read_text()  # nothing half-done
    exclude = repo / ".git" / "info" / "exclude"
    exclude.write_text("/scratch")  # a last line with no newline
    assert run("drop", "weights/big").returncode == 0 and run("restore").returncode == 0
    assert exclude.read_text() == "/scratch\n" and _git(repo, "status", "--porcelain") == " M code.py\n"
    over = tmp_path / "over"
    over.mkdir()
    (over / "blob").write_bytes(b"\0" * (62 << 20))
    assert run("size", str(over)).returncode == 1  # 3 + 62 MiB is over the limit
