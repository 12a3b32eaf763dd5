"""The per-sample counter-based normal generator."""

import numpy as np
import pytest
import torch
from scipy import stats

from invprob import streams


def test_normal_distribution_and_independence():
    seeds = torch.arange(200)
    x = streams.randn(seeds, 3, (500,), dtype=torch.float64)
    flat = x.flatten().numpy()
    assert abs(flat.mean()) < 0.01 and abs(flat.std() - 1) < 0.01
    assert stats.kstest(flat, "norm").pvalue > 1e-3
    y = streams.randn(seeds, 4, (500,), dtype=torch.float64)  # next step
    z = streams.randn(seeds, 3, (500,), stream=1, dtype=torch.float64)  # other stream
    for other in (y, z):
        assert abs(np.corrcoef(flat, other.flatten().numpy())[0, 1]) < 0.01
    rows = np.corrcoef(x[:, :400].numpy())  # rows (samples) are uncorrelated
    assert np.abs(rows[np.triu_indices(200, 1)]).max() < 0.25


def test_rows_depend_only_on_their_seed_step_and_stream():
    a = streams.randn(torch.tensor([5, 9, 11]), 7, (2, 3))
    b = streams.randn(torch.tensor([11]), 7, (2, 3))
    assert torch.equal(a[2], b[0])
    assert not torch.equal(a[0], a[1])
    odd = streams.randn(torch.tensor([5]), 7, (3, 3))  # odd element counts work too
    assert odd.shape == (1, 3, 3) and torch.isfinite(odd).all()


def test_sample_seeds_are_shared_across_measurements():
    s = streams.sample_seeds(42, num_measurements=2, num_samples=3)
    assert s.shape == (6,) and torch.equal(s[:3], s[3:]) and len(set(s[:3].tolist())) == 3


def test_a_slice_of_a_draw_is_the_draw_sliced():
    """randn_slice computes only part of a draw, bit for bit (DAPS takes its Langevin noise one
    step at a time from one draw per level)."""
    from invprob import streams

    seeds = streams.sample_seeds(11, 2, 3)
    for shape in [(1,), (5,), (4, 1, 3, 3), (3, 7)]:
        full = streams.randn(seeds, 2, shape, stream=1, dtype=torch.float64).flatten(1)
        n = full.shape[1]
        for start, stop in [(0, n), (0, 1), (n // 2, n), (n - 1, n), (1, max(1, n - 1))]:
            part = streams.randn_slice(seeds, 2, shape, start, stop, stream=1, dtype=torch.float64)
            assert torch.equal(part, full[:, start:stop])
    with pytest.raises(ValueError, match="start"):
        streams.randn_slice(seeds, 0, (3,), 2, 1)


def test_solve_each_gives_each_measurement_its_own_seed():
    from invprob import Problem
    from invprob.evaluation import make_problem, solve_each
    from invprob.registry import get_solver

    prior, problem, _ = make_problem("inpainting", seed=0, num_measurements=2)
    solver = get_solver("dps", num_steps=5)
    each = solve_each(solver, problem, prior, num_samples=1)
    second = Problem(problem.operator, problem.measurement[1:], problem.noise)
    alone = solver.solve(second, prior, num_samples=1, generator=1, progress=False).samples
    assert each.samples.shape == (2, 1, *prior.x_shape) and torch.allclose(each.samples[1:], alone, atol=1e-10)
    assert each.nfe == 5
    shared = solver.solve(problem, prior, num_samples=1, generator=0, progress=False).samples
    assert torch.allclose(each.samples[:1], shared[:1], atol=1e-10)  # seed 0 is the batch's
    assert not torch.allclose(each.samples[1:], shared[1:], atol=1e-3)  # seed 1 is not


def test_a_draw_computed_in_pieces_is_bit_identical(monkeypatch):
    """randn_slice bounds its temporaries by computing CHUNK_ELEMENTS values at a time; the pieces
    (cut inside the cosine half, at the cos/sin boundary and inside the sine half) give the draw
    of one piece bit for bit, in float64."""
    from invprob import streams

    seeds = streams.sample_seeds(5, 2, 3)
    shape = (3, 21, 19)  # odd sizes: pairs and rows that do not divide the pieces
    whole = streams.randn(seeds, 4, shape, stream=2, dtype=torch.float64)
    monkeypatch.setattr(streams, "CHUNK_ELEMENTS", 6 * 97)
    pieces = streams.randn(seeds, 4, shape, stream=2, dtype=torch.float64)
    assert torch.equal(whole, pieces)
    n = whole[0].numel()
    assert torch.equal(streams.randn_slice(seeds, 4, shape, 100, n - 3, stream=2, dtype=torch.float64),
                       whole.flatten(1)[:, 100:n - 3])
