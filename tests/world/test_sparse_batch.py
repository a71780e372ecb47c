"""SparseBatch conversions to numpy and torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import synthsae


@pytest.fixture
def batch() -> synthsae.SparseBatch:
    p = synthsae.zipfian_firing_probabilities(300, 1.0, 0.5, 0.01)
    return synthsae.sample_independent(p, 257, seed=4, std_magnitudes=0.3)


def test_to_dense_places_every_entry(batch):
    dense = batch.to_dense()
    assert dense.shape == (257, 300) and dense.dtype == np.float32
    for r in (0, 100, 256):
        lo, hi = batch.indptr[r], batch.indptr[r + 1]
        np.testing.assert_array_equal(np.flatnonzero(dense[r]), batch.indices[lo:hi])
        np.testing.assert_array_equal(dense[r, batch.indices[lo:hi]], batch.values[lo:hi])
    assert np.count_nonzero(dense) == batch.nnz


def test_to_torch_layouts(batch):
    csr = batch.to_torch()
    assert csr.layout == torch.sparse_csr and csr.shape == (257, 300) and csr.dtype == torch.float32
    np.testing.assert_array_equal(csr.to_dense().numpy(), batch.to_dense())
    dense = batch.to_torch(device="cpu", layout="dense")
    assert dense.layout == torch.strided
    np.testing.assert_array_equal(dense.numpy(), batch.to_dense())
    with pytest.raises(ValueError, match="layout"):
        batch.to_torch(layout="coo")


def test_empty_batch_converts():
    empty = synthsae.sample_independent([0.5, 0.5], 0, seed=0)
    assert empty.shape == (0, 2) and empty.nnz == 0
    assert empty.to_dense().shape == (0, 2)
    assert empty.to_torch().shape == (0, 2) and empty.to_torch(layout="dense").shape == (0, 2)
    assert "SparseBatch(shape=(0, 2)" in repr(empty)


def test_inconsistent_arrays_are_rejected():
    with pytest.raises(ValueError, match="inconsistent"):
        synthsae.SparseBatch(np.array([0, 2]), np.array([1], np.int32), np.array([1.0], np.float32), (1, 3))


def test_take_gathers_rows_in_any_order(batch):
    rows = np.array([5, 0, 256, 5, 17])
    taken = batch.take(rows)
    assert taken.shape == (5, 300)
    np.testing.assert_array_equal(taken.to_dense(), batch.to_dense()[rows])
    assert batch.take(np.array([], dtype=np.int64)).shape == (0, 300)
    with pytest.raises(ValueError, match="rows must be"):
        batch.take([257])
    with pytest.raises(ValueError, match="rows must be"):
        batch.take([-1])


def test_concat_stacks_rows(batch):
    parts = [batch.take(np.arange(0, 100)), batch.take(np.arange(100, 100)), batch.take(np.arange(100, 257))]
    joined = synthsae.SparseBatch.concat(parts)
    for name in ("indptr", "indices", "values"):
        np.testing.assert_array_equal(getattr(joined, name), getattr(batch, name))
    assert joined.shape == batch.shape and joined.indptr.dtype == np.int64
    with pytest.raises(ValueError, match="different numbers of columns"):
        synthsae.SparseBatch.concat([batch, synthsae.sample_independent(np.full(3, 0.5), 2, seed=0)])
    with pytest.raises(ValueError, match="must not be empty"):
        synthsae.SparseBatch.concat([])
