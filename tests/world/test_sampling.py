"""sample_independent: determinism, CSR invariants, and statistics against theory and the oracle.

Statistical tolerances: every check is a 5-sigma bound (two-sided tail 5.7e-7 per check) from the
exact sampling distribution stated next to it; seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

import itertools
import os
import signal
import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import synthsae
from synthsae import reference
from tests.conftest import assert_csr_equal

Z = 5.0
TAIL = stats.norm.sf(Z)  # one-sided 5-sigma tail, for exact binomial tests of small counts


def probability_vectors(max_size: int = 200) -> st.SearchStrategy[np.ndarray]:
    """Vectors mixing p = 0, p = 1, tiny p and uniform p."""
    entry = st.one_of(st.just(0.0), st.just(1.0), st.floats(1e-12, 1e-6), st.floats(0.0, 1.0))
    return st.lists(entry, min_size=1, max_size=max_size).map(np.array)


def binomial_violations(counts: np.ndarray, n: int, p: np.ndarray) -> np.ndarray:
    """Features whose count is implausible under Binomial(n, p): |z| > 5 where n·p·(1-p) >= 25,
    else an exact binomial tail below the 5-sigma level."""
    var = n * p * (1 - p)
    normal = var >= 25
    z = np.zeros_like(p)
    z[normal] = (counts[normal] - n * p[normal]) / np.sqrt(var[normal])
    bad = normal & (np.abs(z) > Z)
    small = ~normal
    lower = stats.binom.cdf(counts[small], n, p[small])
    upper = stats.binom.sf(counts[small] - 1, n, p[small])
    bad[small] = np.minimum(lower, upper) < TAIL
    return np.flatnonzero(bad)


def check_csr(batch: synthsae.SparseBatch, n: int, num_features: int) -> None:
    assert batch.shape == (n, num_features) and len(batch) == n
    assert batch.indptr.dtype == np.int64 and batch.indices.dtype == np.int32
    assert batch.values.dtype == np.float32
    assert batch.indptr.shape == (n + 1,) and batch.indptr[0] == 0 and batch.indptr[-1] == batch.nnz
    assert np.all(np.diff(batch.indptr) >= 0)
    assert np.all((batch.indices >= 0) & (batch.indices < num_features))
    assert np.all(np.isfinite(batch.values)) and np.all(batch.values > 0)
    row_ids = batch.row_ids()
    same_row = row_ids[1:] == row_ids[:-1]
    assert np.all(np.diff(batch.indices.astype(np.int64))[same_row] > 0), "indices not ascending"


@given(
    p=probability_vectors(),
    seed=st.integers(0, 2**64 - 1),
    n=st.integers(0, 700),
    std=st.sampled_from([0.0, 0.5]),
    data=st.data(),
)
@settings(max_examples=60)
def test_rows_identical_for_any_threads_and_split(p, seed, n, std, data):
    kwargs = dict(seed=seed, mean_magnitudes=1.5, std_magnitudes=std)
    whole = synthsae.sample_independent(p, n, num_threads=1, **kwargs)
    check_csr(whole, n, len(p))
    for threads in (2, 4, None):
        assert_csr_equal(synthsae.sample_independent(p, n, num_threads=threads, **kwargs), whole)
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=4)))
    bounds = [0, *cuts, n]
    pieces = [
        synthsae.sample_independent(
            p, hi - lo, start=lo, num_threads=data.draw(st.sampled_from([1, 2])), **kwargs
        )
        for lo, hi in itertools.pairwise(bounds)
    ]
    assert_csr_equal(synthsae.SparseBatch.concat([*pieces, whole.take([])]), whole)


# Python >= 3.12 warns about fork() in a multi-threaded process; forking is the point here.
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_sampling_works_in_a_forked_child():
    """A child made by fork (DataLoader workers, multiprocessing) builds its own thread pool instead of
    waiting on the parent's threads, which fork does not copy."""
    p = synthsae.zipfian_firing_probabilities(500)
    parent = synthsae.sample_independent(p, 5000, seed=2)  # starts the parent's pool
    pid = os.fork()
    if pid == 0:  # pragma: no cover (child)
        signal.alarm(60)
        child = synthsae.sample_independent(p, 5000, seed=2)
        os._exit(0 if np.array_equal(child.indices, parent.indices) else 1)
    deadline = time.monotonic() + 90
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert done[0] == pid and os.waitstatus_to_exitcode(done[1]) == 0


def test_start_offset_is_row_identity():
    p = synthsae.zipfian_firing_probabilities(300)
    for threads in (1, 2, 4):
        a = synthsae.sample_independent(p, 10, seed=11, start=5, num_threads=threads)
        b = synthsae.sample_independent(p, 20, seed=11, num_threads=threads)
        np.testing.assert_array_equal(a.to_dense(), b.to_dense()[5:15])


def test_certain_and_impossible_features():
    p = np.array([0.0, 1.0, 0.3, 1.0, 0.0])
    batch = synthsae.sample_independent(p, 1000, seed=1)
    counts = np.bincount(batch.indices, minlength=5)
    assert counts[0] == counts[4] == 0 and counts[1] == counts[3] == 1000


def test_float32_float64_torch_and_list_inputs_agree():
    p32 = synthsae.zipfian_firing_probabilities(500)
    ref = synthsae.sample_independent(p32, 300, seed=2)
    for p in (p32.astype(np.float64), torch.from_numpy(p32), p32.tolist()):
        assert_csr_equal(synthsae.sample_independent(p, 300, seed=2), ref)


def test_seeds_differ():
    p = synthsae.zipfian_firing_probabilities(500)
    a = synthsae.sample_independent(p, 200, seed=0).to_dense()
    assert not np.array_equal(a, synthsae.sample_independent(p, 200, seed=1).to_dense())


@pytest.mark.parametrize("seed", [0, 1])
def test_marginals_16k_zipf(zipf_16k, seed):
    n = 100_000
    batch = synthsae.sample_independent(zipf_16k, n, seed=seed)
    p = zipf_16k.astype(np.float64)
    counts = np.bincount(batch.indices, minlength=len(p))
    assert binomial_violations(counts, n, p).size == 0
    # Mean of z^2 over features: ~1 with variance ~2/N (normal approximation, n·p >= 50 here).
    z2 = (counts - n * p) ** 2 / (n * p * (1 - p))
    assert abs(z2.mean() - 1) < Z * np.sqrt(2 / len(p))
    # L0 = sum of independent Bernoullis: mean Σp, variance σ² = Σp(1-p), 4th cumulant
    # κ4 = Σp(1-p)(1-6p(1-p)); Var(sample variance) ≈ (κ4 + 2σ⁴)/n.
    l0 = np.diff(batch.indptr)
    var = (p * (1 - p)).sum()
    kappa4 = (p * (1 - p) * (1 - 6 * p * (1 - p))).sum()
    assert abs(l0.mean() - p.sum()) < Z * np.sqrt(var / n)
    assert abs(l0.var() - var) < Z * np.sqrt((kappa4 + 2 * var**2) / n)


@given(p=probability_vectors(60), seed=st.integers(0, 2**64 - 1))
@settings(max_examples=25, derandomize=True)
def test_marginals_random_vectors(p, seed):
    n = 20_000
    batch = synthsae.sample_independent(p, n, seed=seed)
    counts = np.bincount(batch.indices, minlength=len(p))
    assert binomial_violations(counts, n, p).size == 0


def test_pairwise_cofiring_is_independent(zipf_16k):
    # Top-20 features (p 0.4 .. 0.08): co-firing count ~ Binomial(n, p_i p_j) under independence.
    n, k = 100_000, 20
    batch = synthsae.sample_independent(zipf_16k, n, seed=3)
    keep = batch.indices < k
    x = np.zeros((n, k), dtype=np.float64)
    x[batch.row_ids()[keep], batch.indices[keep]] = 1
    co = x.T @ x
    p = zipf_16k[:k].astype(np.float64)
    q = np.outer(p, p)
    z = (co - n * q) / np.sqrt(n * q * (1 - q))
    pairs = z[np.triu_indices(k, 1)]
    assert np.abs(pairs).max() < Z
    assert abs((pairs**2).mean() - 1) < Z * np.sqrt(2 / pairs.size)


def test_per_feature_magnitudes():
    # mean/std far from 0, so relu never clips (P < 1e-15): values ~ N(mean_i, std_i).
    num_features, n = 40, 40_000
    mean = np.linspace(2.0, 4.0, num_features, dtype=np.float32)
    std = np.linspace(0.1, 0.25, num_features, dtype=np.float32)
    batch = synthsae.sample_independent(
        np.full(num_features, 0.3), n, seed=5, mean_magnitudes=mean, std_magnitudes=std
    )
    for i in range(num_features):
        v = batch.values[batch.indices == i].astype(np.float64)
        c = v.size
        assert abs(v.mean() - mean[i]) < Z * std[i] / np.sqrt(c)
        # sample sd of c normals: sd(s) ≈ σ / sqrt(2(c - 1))
        assert abs(v.std(ddof=1) - std[i]) < Z * std[i] / np.sqrt(2 * (c - 1))


def test_relu_drops_nonpositive_magnitudes():
    # mean 0, std 1: a firing entry is stored iff its normal draw is > 0 (prob 1/2), so each
    # feature's stored count ~ Binomial(n, p/2); stored values are half-normal.
    n, p = 40_000, 0.5
    batch = synthsae.sample_independent(np.full(20, p), n, seed=6, mean_magnitudes=0.0, std_magnitudes=1.0)
    counts = np.bincount(batch.indices, minlength=20)
    assert binomial_violations(counts, n, np.full(20, p / 2)).size == 0
    half_normal_mean, half_normal_sd = np.sqrt(2 / np.pi), np.sqrt(1 - 2 / np.pi)
    assert abs(batch.values.mean() - half_normal_mean) < Z * half_normal_sd / np.sqrt(batch.nnz)


def test_agrees_with_dense_reference():
    # Two samples of n rows each, one from the Rust sampler, one from SAELens's dense algorithm.
    # Per feature: (c1 - c2) / sqrt(2 n p̂ (1 - p̂)) ~ N(0, 1) under equal p.
    rng = np.random.default_rng(0)
    num_features, n = 400, 40_000
    p = rng.uniform(0, 0.5, num_features)
    p[:5], p[5:8] = 0.0, 1.0
    mean, std = 1.5, 0.4
    ours = synthsae.sample_independent(p, n, seed=7, mean_magnitudes=mean, std_magnitudes=std)
    gen = torch.Generator().manual_seed(7)
    dense = reference.sample_independent(
        torch.tensor(p), n, generator=gen, mean_magnitudes=mean, std_magnitudes=std
    )
    c1 = np.bincount(ours.indices, minlength=num_features)
    c2 = (dense > 0).sum(0).numpy()
    pooled = (c1 + c2) / (2 * n)
    certain = (pooled == 0) | (pooled == 1)
    np.testing.assert_array_equal(c1[certain], c2[certain])
    z = (c1 - c2)[~certain] / np.sqrt(2 * n * pooled[~certain] * (1 - pooled[~certain]))
    assert np.abs(z).max() < Z
    v1, v2 = ours.values.astype(np.float64), dense[dense > 0].numpy().astype(np.float64)
    assert abs(v1.mean() - v2.mean()) < Z * np.sqrt(v1.var() / v1.size + v2.var() / v2.size)
    assert abs(v1.std() - v2.std()) < Z * std * np.sqrt(1 / (2 * v1.size) + 1 / (2 * v2.size))
