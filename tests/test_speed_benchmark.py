"""The speed benchmark's network-cost limit counts every network pass a solver makes."""

import pytest

from conftest import load_benchmark
from invprob.evaluation import make_problem
from invprob.registry import get_solver

speed = load_benchmark("speed")


@pytest.mark.parametrize("preset, overrides, backward_per_call", [
    ("dps", {"num_steps": 3}, 1),
    ("mmps", {"num_steps": 3}, 2),  # one CG iteration: two vector-Jacobian products per call
    ("mmps", {"num_steps": 3, "cg_iterations": 3}, 4),
    ("ddrm", {"num_steps": 3}, 0),
])
def test_each_backward_pass_through_the_network_is_counted(preset, overrides, backward_per_call):
    prior, problem, _ = make_problem("inpainting", seed=1)
    log = {"forward": [], "backward": []}
    handle = speed.count_network_passes(prior, log)
    try:
        result = get_solver(preset, **overrides).solve(problem, prior, num_samples=2, generator=0, progress=False)
    finally:
        handle.remove()
    assert len(log["forward"]) == result.nfe
    assert set(log["forward"]) == {result.state.x.shape[0]}
    assert len(log["backward"]) == backward_per_call * result.nfe
    row = {"backward": bool(log["backward"]), "backward_per_call": len(log["backward"]) / len(log["forward"])}
    assert speed.passes(row) == {0: "fwd", 1: "fwd+bwd"}.get(backward_per_call, f"fwd+{backward_per_call} bwd")
