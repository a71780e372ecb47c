"""The streamed matching (a |cos| matrix that is never stored) against the stored one: the solver fed
blocks of a given matrix finds the same optimum (hypothesis, adversarial structures, stuck searches);
mcc, the evaluation's weight side and evaluate() give identical results in both modes; misuse of the
streamed solver is a named error."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import synthsae
from synthsae import _core
from synthsae.evaluation import assignment
from synthsae.evaluation.matching import weight_side
from tests.evaluation.test_assignment import mcc_like


def stream_solve(cost: np.ndarray, maximize: bool, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, values) of ``cost`` solved through StreamedAssignment, ``block`` rows at a time
    (the smaller side streamed, as mcc does)."""
    c = np.ascontiguousarray(cost.T if cost.shape[0] > cost.shape[1] else cost, dtype=np.float32)
    solver = _core.StreamedAssignment(c.shape[0], c.shape[1], maximize)
    for lo in range(0, c.shape[0], block):
        solver.add_rows(c[lo : lo + block])
    while len(asked := solver.next_rows()):
        for lo in range(0, len(asked), block):
            solver.supply(c[asked[lo : lo + block]])
    rows, cols, values = solver.assignment()
    if cost.shape[0] > cost.shape[1]:
        order = np.argsort(cols)
        rows, cols, values = cols[order], rows[order], values[order]
    return rows, cols, values


def check_same_as_stored(cost: np.ndarray, maximize: bool, block: int) -> None:
    cost = cost.astype(np.float32)
    rows, cols = synthsae.linear_sum_assignment(cost, maximize=maximize)
    r, c, values = stream_solve(cost, maximize, block)
    assert np.all(np.diff(r) > 0) and len(np.unique(c)) == len(c) == min(cost.shape)
    np.testing.assert_array_equal(values, cost[r, c].astype(np.float64))
    # The same optimum value, summed exactly (float64 of float32 entries); the same pairs when no two
    # entries tie (else either optimum may come out).
    assert np.sort(cost[r, c].astype(np.float64)).sum() == np.sort(cost[rows, cols].astype(np.float64)).sum()
    if len(np.unique(cost)) == cost.size:
        np.testing.assert_array_equal(r, rows)
        np.testing.assert_array_equal(c, cols)


shapes = hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=40)


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(np.float32, shapes, elements=st.floats(-1e3, 1e3, width=32, allow_nan=False)),
    st.booleans(),
    st.integers(1, 12),
)
def test_random_matrices_same_optimum(cost, maximize, block):
    check_same_as_stored(cost, maximize, block)


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.int64, shapes, elements=st.integers(0, 3)), st.booleans(), st.integers(1, 12))
def test_integer_costs_with_many_ties_same_value(cost, maximize, block):
    check_same_as_stored(cost, maximize, block)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([(60, 60), (40, 130), (130, 40), (1, 90)]),
    st.sampled_from([2, 16]),
    st.integers(1, 64),
)
def test_mcc_like_matrices_same_optimum(seed, shape, dim, block):
    """1 - |cos| of noisy copies (dim 2: near-ties everywhere)."""
    check_same_as_stored(mcc_like(*shape, seed, dim=dim), False, block)


@pytest.mark.parametrize("shape", [(300, 300), (120, 300), (300, 120)])
def test_optimum_far_outside_the_first_core(shape):
    """-(i+1)(j+1): the optimum pairs the largest indices in order, ranked far down every row and
    column, so certificate rounds must bring it in."""
    i, j = np.indices(shape)
    check_same_as_stored(-((i + 1) * (j + 1)).astype(np.float32), False, 16)


def test_identical_rows_get_stuck_and_join_the_core_whole():
    """100 equal rows sharing 40 cheap columns: Hall's condition fails on the first core."""
    cost = np.tile(np.where(np.arange(300) < 40, np.arange(300), 1000 + np.arange(300)), (100, 1))
    check_same_as_stored(cost, False, 32)
    check_same_as_stored(np.zeros((50, 80)), True, 7)


def planted(d_sae: int, n: int, seed: int, dim: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Features and a decoder whose first half are noisy copies of features (the rest random)."""
    rng = np.random.default_rng(seed)
    g = rng.normal(size=(n, dim)).astype(np.float32)
    d = rng.normal(size=(d_sae, dim)).astype(np.float32)
    k = min(d_sae, n) // 2
    d[:k] = g[rng.permutation(n)[:k]] + 0.3 * rng.normal(size=(k, dim)).astype(np.float32)
    return d, g


@pytest.mark.parametrize("shape", [(300, 1100), (1100, 300), (257, 257)])
def test_mcc_streamed_is_the_stored_mcc(shape, monkeypatch):
    """Small blocks (a tile of 256 rows or so each) so that rows arrive over many blocks."""
    monkeypatch.setattr(assignment, "STREAM_BLOCK_ENTRIES", 1000)
    d, g = planted(*shape, seed=3)
    stored, m1 = synthsae.mcc(d, g, return_matching=True, streaming=False)
    streamed, m2 = synthsae.mcc(d, g, return_matching=True, streaming=True)
    assert streamed == stored
    for a, b in zip(m1, m2, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", [(300, 1100), (1100, 300)])
def test_weight_side_streamed_is_the_stored_one(shape, monkeypatch):
    monkeypatch.setattr(assignment, "STREAM_BLOCK_ENTRIES", 1000)
    d, g = assignment.unit_pair(*planted(*shape, seed=5))
    parents = np.arange(0, shape[1], 5)
    stored = weight_side(d, g, parents, streaming=False)
    streamed = weight_side(d, g, parents, streaming=True)
    for name in ("latent_matched_feature", "latent_abs_cos", "feature_best_abs_cos"):
        np.testing.assert_array_equal(getattr(stored, name), getattr(streamed, name), err_msg=name)
    for a, b in zip(stored.matching, streamed.matching, strict=True):
        np.testing.assert_array_equal(a, b)
    near = [stored.near_parents, streamed.near_parents]
    assert near[0] is not None and near[1] is not None and len(near[0].ks) > 0
    for field in ("ks", "latents", "cos"):
        sort = [np.lexsort((p.latents, p.ks)) for p in near]
        np.testing.assert_array_equal(*(getattr(p, field)[o] for p, o in zip(near, sort, strict=True)))


def test_evaluate_streamed_is_the_stored_evaluation(monkeypatch):
    world = synthsae.World(synthsae.preset("tiny"), show_progress=False)
    sae = synthsae.saes.create_sae("batchtopk", world.hidden_dim, 300, l0=8, seed=0)
    stored = synthsae.evaluate(sae, world, num_samples=4096, show_progress=False, streaming=False)
    monkeypatch.setattr(assignment, "STREAM_BLOCK_ENTRIES", 1000)
    synthsae.evaluation.recovery._BASELINES.clear()  # the baseline too, streamed this time
    streamed = synthsae.evaluate(sae, world, num_samples=4096, show_progress=False, streaming=True)
    a, b = stored.to_dict(), streamed.to_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == b[key], key


def test_the_default_streams_only_large_matrices():
    assert not assignment.streams(4096, 16384, None)
    assert assignment.streams(65536, 262144, None)
    assert assignment.streams(2, 2, True) and not assignment.streams(10**6, 10**6, False)
    with pytest.raises(TypeError, match="streaming"):
        synthsae.mcc(np.eye(2), np.eye(2), streaming="yes")


def test_infeasible_streamed_matrices_raise_instead_of_asking_forever():
    inf = np.inf
    for cost in ([[inf, inf], [1, 2]], [[inf, 1], [inf, 2]]):
        c = np.array(cost, np.float32)
        with pytest.raises(ValueError, match="infeasible"):
            synthsae.linear_sum_assignment(c)
        with pytest.raises(ValueError, match="infeasible"):
            stream_solve(c, False, 1)


def test_misuse_is_a_named_error():
    with pytest.raises(ValueError, match="rows"):
        _core.StreamedAssignment(3, 2)
    s = _core.StreamedAssignment(2, 3)
    with pytest.raises(ValueError, match="no rows were asked for"):
        s.supply(np.ones((0, 3), np.float32))
    with pytest.raises(ValueError, match="whole rows"):
        s.add_rows(np.ones((1, 2), np.float32))
    with pytest.raises(ValueError, match="only 0 of 2 rows"):
        s.next_rows()
    s.add_rows(np.array([[1, 2, 3]], np.float32))
    with pytest.raises(ValueError, match="3 rows given"):
        s.add_rows(np.ones((2, 3), np.float32))
    with pytest.raises(TypeError):
        s.add_rows(np.ones((1, 3)))  # float64
    with pytest.raises(ValueError, match="not solved"):
        s.assignment()
    s.add_rows(np.array([[3, 1, 2]], np.float32))
    assert len(s.next_rows()) == 0  # the core holds every entry: nothing to check
    rows, cols, values = s.assignment()
    assert rows.tolist() == [0, 1] and cols.tolist() == [0, 1] and values.tolist() == [1.0, 1.0]
    # Entries supplied wrongly, on a matrix whose certificate asks for rows.
    i, j = np.indices((100, 100))
    c = -((i + 1) * (j + 1)).astype(np.float32)
    s = _core.StreamedAssignment(100, 100)
    s.add_rows(c)
    asked = s.next_rows()
    assert len(asked)
    with pytest.raises(ValueError, match="invalid"):
        s.supply(np.full((1, 100), np.nan, np.float32))
    with pytest.raises(ValueError, match="supplied"):
        s.next_rows()
    with pytest.raises(ValueError, match="asked for"):
        s.supply(np.ones((len(asked) + 1, 100), np.float32))
    s.supply(c[asked])
    while len(asked := s.next_rows()):
        s.supply(c[asked])
    assert s.assignment()[1].tolist() == list(range(100))
