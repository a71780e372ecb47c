"""linear_sum_assignment against scipy; MCC and uniqueness against plain numpy (SAELens definitions)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.optimize import linear_sum_assignment as scipy_lsa

import synthsae


def check_same_optimum(cost: np.ndarray, maximize: bool = False, exact: bool = False) -> None:
    rows, cols = synthsae.linear_sum_assignment(cost, maximize=maximize)
    r2, c2 = scipy_lsa(cost, maximize=maximize)
    k = min(cost.shape)
    assert len(rows) == len(cols) == k
    assert rows.dtype == np.int64 and cols.dtype == np.int64
    assert np.all(np.diff(rows) > 0), "row_ind sorted, each row once"
    assert len(np.unique(cols)) == k, "each column once"
    ours = cost[rows, cols].astype(np.float64).sum()
    theirs = cost[r2, c2].astype(np.float64).sum()
    if exact:
        assert ours == theirs
    else:
        assert abs(ours - theirs) <= 1e-9 * max(1.0, abs(theirs)), (ours, theirs)


shapes = st.tuples(st.integers(0, 40), st.integers(0, 40))


@settings(max_examples=300, deadline=None)
@given(hnp.arrays(np.float64, shapes, elements=st.floats(-1e3, 1e3, allow_nan=False)), st.booleans())
def test_random_real_matrices(cost, maximize):
    check_same_optimum(cost, maximize)


@settings(max_examples=300, deadline=None)
@given(hnp.arrays(np.int64, shapes, elements=st.integers(0, 3)), st.booleans())
def test_integer_costs_with_many_ties_are_exact(cost, maximize):
    check_same_optimum(cost.astype(np.float64), maximize, exact=True)
    # Integer input is converted to float64, as scipy does.
    rows, cols = synthsae.linear_sum_assignment(cost, maximize=maximize)
    r2, c2 = scipy_lsa(cost, maximize=maximize)
    assert cost[rows, cols].sum() == cost[r2, c2].sum()


@settings(max_examples=150, deadline=None)
@given(
    hnp.arrays(np.float32, shapes, elements=st.floats(0, 1, width=32)),
    hnp.arrays(np.bool_, (40, 40)),
)
def test_float32_with_forbidden_pairs(cost, forbid):
    cost = cost.copy()
    cost[forbid[: cost.shape[0], : cost.shape[1]]] = np.inf
    try:
        scipy_lsa(cost)
    except ValueError:
        with pytest.raises(ValueError, match="infeasible"):
            synthsae.linear_sum_assignment(cost)
        return
    check_same_optimum(cost)


@pytest.mark.parametrize("shape", [(300, 300), (500, 200), (200, 500)])
@pytest.mark.parametrize("structure", ["mixed", "random", "adversarial"])
def test_larger_matrices_beyond_the_first_core(shape, structure):
    """Cores keep 32 entries per row and 8 per column, so these exercise the certificate and repair."""
    rng = np.random.default_rng(sum(shape))
    n, m = shape
    if structure == "random":
        cost = rng.random(shape).astype(np.float32)
    elif structure == "mixed":
        cost = rng.uniform(0.9, 1.0, shape)
        k = min(shape)
        planted = rng.permutation(m)[:k]
        live = rng.random(k) > 0.2
        cost[np.arange(k)[live], planted[live]] = rng.uniform(0.0, 0.8, live.sum())
    else:
        # c_ij = -(i+1)(j+1) plus noise: the optimum pairs indices in order (rearrangement
        # inequality), yet those entries rank last in their rows and columns: far outside any core.
        cost = -np.outer(np.arange(1, n + 1), np.arange(1, m + 1)) + rng.random(shape)
    check_same_optimum(cost)
    check_same_optimum(cost, maximize=True)


def mcc_like(rows: int, cols: int, seed: int, dim: int = 16) -> np.ndarray:
    """1 - |cos| of noisy permuted copies with 20 % dead rows (low dim: many near-ties)."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((cols, dim))
    d = rng.standard_normal((rows, dim))
    k = min(rows, cols)
    keep = rng.random(k) >= 0.2
    noisy = g[rng.permutation(cols)[:k]] + rng.uniform(0, 4, (k, 1)) * rng.standard_normal((k, dim)) / 4
    d[:k][keep] = noisy[keep]
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    return 1.0 - np.abs(d @ g.T)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([(150, 150), (151, 150), (150, 151), (400, 120), (120, 400), (257, 33)]),
    st.sampled_from(["mcc", "random", "ties", "adversarial"]),
    st.sampled_from([np.float32, np.float64]),
    st.booleans(),
)
def test_structured_matrices_of_every_shape(seed, shape, structure, dtype, maximize):
    """Greedy start, row reduction, repairs and bounded certificate rounds, in both orientations
    (a tall matrix is solved on its transpose) and both senses."""
    rng = np.random.default_rng(seed)
    if structure == "mcc":
        cost = mcc_like(*shape, seed)
    elif structure == "random":
        cost = rng.random(shape) * rng.choice([1e-3, 1.0, 1e4])
    elif structure == "adversarial":
        # Optimal pairs rank last in their rows and columns (see the test above).
        n, m = shape
        scale = rng.choice([0.0, 1.0, 30.0])
        cost = -np.outer(np.arange(1, n + 1), np.arange(1, m + 1)) + scale * rng.random(shape)
    else:
        cost = rng.integers(0, 4, shape).astype(np.float64)
    check_same_optimum(cost.astype(dtype), maximize, exact=structure == "ties")


@pytest.mark.parametrize("shape", [(200, 200), (201, 200), (200, 201), (600, 150)])
def test_many_repair_rounds_in_both_orientations(shape):
    """Planted pairs ranked past every core, under noise: warm repairs and the bounds that let
    later certificate rounds skip rows."""
    n, m = shape
    for seed in range(6):
        rng = np.random.default_rng(seed)
        # -(i+1)(j+1) pairs indices in order (rearrangement inequality) with those entries ranked
        # last in their rows and columns; the noise breaks that order up in places.
        cost = -np.outer(np.arange(1, n + 1), np.arange(1, m + 1)) + (seed * 50) * rng.random(shape)
        cost = cost[rng.permutation(n)][:, rng.permutation(m)]
        check_same_optimum(cost.astype(np.float32))
        check_same_optimum(-cost, maximize=True)


def test_costs_near_the_top_of_float32():
    """c - v overflows float32 in the certificate's screen: the row bounds must stay finite."""
    n = 128
    rng = np.random.default_rng(6)
    i = np.arange(1, n + 1)[:, None]
    noise = 1 - 0.15 * rng.random((n, n))
    cost = np.minimum(3.0e38 + 0.4e38 * (1 - i * i.T / n / n) * noise, 3.4e38).astype(np.float32)
    check_same_optimum(cost)


def test_sae_like_square_matrix_needs_repair_rounds():
    """1200² with 20 % dead rows / orphan columns: optimal partners far beyond the first core (the
    Rust unit test on the same construction asserts that the certificate loop runs)."""
    rng = np.random.default_rng(7)
    n = 1200
    cost = rng.uniform(0.9, 1.0, (n, n)).astype(np.float32)
    live = np.arange(n) % 5 != 0
    cost[np.arange(n)[live], (np.arange(n)[live] * 37 + 11) % n] = rng.uniform(0, 0.8, live.sum())
    check_same_optimum(cost)


def test_degenerate_shapes_and_constant_matrices():
    for shape in [(0, 0), (0, 5), (5, 0)]:
        rows, cols = synthsae.linear_sum_assignment(np.zeros(shape))
        assert rows.shape == cols.shape == (0,)
    rows, cols = synthsae.linear_sum_assignment(np.array([[7.0]]))
    assert rows.tolist() == [0] and cols.tolist() == [0]
    check_same_optimum(np.ones((50, 70)), exact=True)
    check_same_optimum(np.zeros((70, 50), dtype=np.float32), exact=True)


def test_bad_input_raises_named_errors():
    with pytest.raises(ValueError, match="2-D"):
        synthsae.linear_sum_assignment(np.zeros(3))
    with pytest.raises(ValueError, match="invalid numeric"):
        synthsae.linear_sum_assignment(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="invalid numeric"):
        synthsae.linear_sum_assignment(np.array([[1.0, -np.inf]]))
    with pytest.raises(ValueError, match="invalid numeric"):
        synthsae.linear_sum_assignment(np.array([[1.0, np.inf]]), maximize=True)
    with pytest.raises(ValueError, match="infeasible"):
        synthsae.linear_sum_assignment(np.array([[np.inf, np.inf], [1.0, 2.0]]))
    with pytest.raises(TypeError, match="real numbers"):
        synthsae.linear_sum_assignment(np.array([["a", "b"]]))
    with pytest.raises(TypeError, match="real numbers"):
        synthsae.linear_sum_assignment(np.ones((2, 2), dtype=complex))


def test_accepts_non_contiguous_arrays_and_tensors():
    rng = np.random.default_rng(3)
    cost = rng.random((30, 20))
    expected = scipy_lsa(cost.T)
    for view in (cost.T, torch.from_numpy(cost).T, np.asfortranarray(cost).T):
        rows, cols = synthsae.linear_sum_assignment(view)
        assert np.asarray(cost.T)[rows, cols].sum() == pytest.approx(cost.T[expected].sum(), rel=1e-12)


# ---------------------------------------------------------------- MCC and uniqueness


def numpy_abs_cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-8)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-8)
    return np.abs(a @ b.T)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 30), st.integers(0, 30), st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_mcc_and_uniqueness_match_plain_numpy(d_sae, n, dim, seed):
    rng = np.random.default_rng(seed)
    dec = rng.standard_normal((d_sae, dim)).astype(np.float32)
    gt = rng.standard_normal((n, dim)).astype(np.float32)
    if d_sae:
        dec[0] = 0.0  # a dead latent: norm clamped, cos 0
    s = numpy_abs_cos(dec.astype(np.float64), gt.astype(np.float64))
    if min(d_sae, n) == 0:
        assert synthsae.mcc(dec, gt) == 0.0
    else:
        r, c = scipy_lsa(1.0 - s)
        assert synthsae.mcc(dec, gt) == pytest.approx(s[r, c].mean(), abs=1e-6)
    expected_u = len(np.unique(s.argmax(axis=1))) / d_sae if d_sae and n else 0.0
    assert synthsae.feature_uniqueness(dec, gt) == pytest.approx(expected_u, abs=1e-12)


def test_mcc_matching_torch_inputs_and_width_check():
    rng = np.random.default_rng(0)
    gt = rng.standard_normal((50, 16)).astype(np.float32)
    perm = rng.permutation(50)[:40]
    dec = gt[perm] * rng.uniform(0.5, 2.0, (40, 1)).astype(np.float32)  # scale-invariant
    dec[::2] *= -1  # sign-invariant
    value, match = synthsae.mcc(torch.from_numpy(dec), torch.from_numpy(gt), return_matching=True)
    assert value == pytest.approx(1.0, abs=1e-6)
    assert match.latents.tolist() == list(range(40))
    assert match.features.tolist() == perm.tolist()
    assert np.allclose(match.abs_cos, 1.0, atol=1e-6)
    assert synthsae.feature_uniqueness(dec, gt) == 1.0
    with pytest.raises(ValueError, match="width"):
        synthsae.mcc(dec[:, :8], gt)
    with pytest.raises(ValueError, match="2-D"):
        synthsae.mcc(dec[0], gt)
