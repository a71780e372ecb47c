"""``ShardDataset``: every row exactly once, in order or shuffled by (seed, epoch), stored or computed
hidden activations, numpy or torch, and DataLoader workers splitting the shards."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import synthsae
from tests.conftest import assert_csr_equal

ROWS, SHARD_ROWS, SEED = 30_000, 7_000, 3  # 5 shards, the last one short


@pytest.fixture(scope="module")
def features_only(world, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("features") / "data"
    synthsae.generate(world, ROWS, out, seed=SEED, shard_rows=SHARD_ROWS, show_progress=False)
    return out


@pytest.fixture(scope="module")
def expected(world) -> tuple[torch.Tensor, synthsae.SparseBatch]:
    return world.sample(ROWS, seed=SEED, return_features=True)


def sorted_rows(hidden: torch.Tensor | np.ndarray) -> np.ndarray:
    """The rows in lexicographic order: equal for two arrays holding the same multiset of rows."""
    rows = np.asarray(hidden, dtype=np.float32)
    return rows[np.lexsort(rows.T[::-1])]


def test_in_order_batches_cross_shard_boundaries(features_only, expected):
    ds = synthsae.ShardDataset(features_only, batch_size=4096, return_features=True)
    batches = list(ds)
    assert [len(h) for h, _ in batches] == [4096] * 7 + [ROWS - 7 * 4096]
    hidden = torch.cat([h for h, _ in batches])
    assert hidden.dtype == torch.float32 and torch.equal(hidden, expected[0])
    assert_csr_equal(synthsae.SparseBatch.concat([f for _, f in batches]), expected[1])
    assert ds.num_rows == ROWS
    assert [len(b) for b in synthsae.ShardDataset(features_only, batch_size=4096, drop_last=True)] == [
        4096
    ] * 7


def test_shuffle_is_a_permutation_fixed_by_seed_and_epoch(features_only, expected):
    ds = synthsae.ShardDataset(features_only, batch_size=1000, shuffle=True, seed=5, format="numpy")
    first = np.concatenate(list(ds))
    assert isinstance(first, np.ndarray) and first.shape == (ROWS, 64)
    assert not np.array_equal(first, expected[0].numpy())
    reference = sorted_rows(expected[0])
    assert np.array_equal(sorted_rows(first), reference)
    assert np.array_equal(np.concatenate(list(ds)), first)
    ds.set_epoch(1)
    second = np.concatenate(list(ds))
    assert not np.array_equal(second, first) and np.array_equal(sorted_rows(second), reference)
    other_seed = synthsae.ShardDataset(features_only, batch_size=1000, shuffle=True, seed=6, format="numpy")
    assert not np.array_equal(np.concatenate(list(other_seed)), first)


@pytest.mark.parametrize(("dtype", "numpy_dtype"), [("float16", np.float16), ("bfloat16", np.float32)])
def test_stored_hidden_activations_are_yielded_as_stored(world, tmp_path, dtype, numpy_dtype):
    out = tmp_path / "data"
    synthsae.generate(
        world, 5_000, out, seed=1, shard_rows=2_000, hidden=True, dtype=dtype, show_progress=False
    )
    expected = world.sample(5_000, seed=1).to(getattr(torch, dtype))
    hidden = torch.cat(list(synthsae.ShardDataset(out, batch_size=1024)))
    assert hidden.dtype == getattr(torch, dtype) and torch.equal(hidden, expected)
    arrays = list(synthsae.ShardDataset(out, batch_size=1024, format="numpy"))
    assert arrays[0].dtype == numpy_dtype
    np.testing.assert_array_equal(np.concatenate(arrays), expected.float().numpy().astype(numpy_dtype))


# Python >= 3.12 warns about fork() in a multi-threaded process; forking is the point here.
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_dataloader_workers_split_the_shards(features_only, expected):
    """Forked workers compute hidden activations in Rust after the parent has used its thread pool."""
    ds = synthsae.ShardDataset(features_only, batch_size=2048, shuffle=True, seed=1)
    list(ds)  # the parent uses the Rust thread pool (and loads the world) before forking
    pickle.dumps(ds)  # the loaded world is not part of the pickled state
    loader = DataLoader(ds, batch_size=None, num_workers=2, timeout=120)
    hidden = torch.cat(list(loader))
    assert hidden.shape == (ROWS, 64)
    assert np.array_equal(sorted_rows(hidden), sorted_rows(expected[0]))


def test_an_incomplete_dataset_and_bad_arguments_are_refused(world, features_only, tmp_path):
    out = tmp_path / "partial"
    synthsae.generate(world, 4_000, out, seed=0, shard_rows=1_000, split=(0, 2), show_progress=False)
    with pytest.raises(ValueError, match="2 of 4 shards are not written yet"):
        synthsae.ShardDataset(out)
    with pytest.raises(FileNotFoundError, match="not a synthsae dataset"):
        synthsae.ShardDataset(tmp_path)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        synthsae.ShardDataset(features_only, batch_size=0)
    with pytest.raises(ValueError, match="format must be one of"):
        synthsae.ShardDataset(features_only, format="jax")
    with pytest.raises(TypeError, match="shuffle must be a bool"):
        synthsae.ShardDataset(features_only, shuffle="yes")
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        synthsae.ShardDataset(features_only).set_epoch(-1)
