"""Recovery by threshold, firing-probability decile and hierarchy depth; splitting; chance level."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment as scipy_lsa

import synthsae
from synthsae import EvalAccumulator
from synthsae.evaluation.recovery import (
    THRESHOLDS,
    feature_depths,
    probability_deciles,
    random_baseline,
)


def dense_recovery(dec, gt, deciles, depths, z, a):
    """The definitions of synthsae.evaluation.recovery, computed densely from the float32 |cos| matrix (as the
    library and SAELens use it, so values at a threshold fall the same side) and the rows' latents
    ``z`` and activations ``a``."""
    s = synthsae.abs_cos_matrix(dec, gt).astype(np.float64)
    rows, cols = scipy_lsa(-s)
    matched = np.zeros(len(gt))
    matched[cols] = s[rows, cols]
    groups = {f"/decile_{k}": deciles == k for k in range(1, 11) if (deciles == k).any()}
    groups |= {f"/depth_{d}": depths == d for d in sorted(set(depths.tolist()) - {-1})}
    if (depths == -1).any():
        groups["/free"] = depths == -1
    out = {}
    for kind, values in (("best", s.max(0)), ("matched", matched)):
        for t in THRESHOLDS:
            out[f"recovery/{kind}@{t}"] = (values >= t).mean()
            for suffix, members in groups.items():
                out[f"recovery/{kind}@{t}{suffix}"] = (values[members] >= t).mean()
    best = s.argmax(1)
    counts = np.array([((best == j) & (s.max(1) >= 0.5)).sum() for j in range(len(gt))])
    out["splitting/split_fraction"] = (counts >= 2).mean()
    out["splitting/latents_per_split_feature"] = counts[counts >= 2].mean() if (counts >= 2).any() else 0.0
    union, single = [], []
    for j in np.flatnonzero(counts >= 2):
        members = (best == j) & (s.max(1) >= 0.5)
        active = a[:, j] > 0
        fires = z[:, members] != 0
        rows = active.sum()
        union.append((fires.any(1) & active).sum() / rows if rows else 0.0)
        single.append(max((fires[:, k] & active).sum() for k in range(members.sum())) / rows if rows else 0.0)
    out["splitting/union_recall"] = np.mean(union) if union else 0.0
    out["splitting/best_single_recall"] = np.mean(single) if single else 0.0
    return out, counts


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    d=st.integers(2, 6),
    d_sae=st.integers(1, 12),
    num_features=st.integers(1, 12),
    n=st.integers(0, 60),
    cut=st.integers(0, 60),
)
def test_recovery_matches_dense_definitions(seed, d, d_sae, num_features, n, cut):
    rng = np.random.default_rng(seed)
    gt = rng.normal(size=(num_features, d)).astype(np.float32)
    # Latents near random features (some duplicated, so splits happen) plus noise of random size.
    dec = gt[rng.integers(0, num_features, d_sae)] + rng.normal(size=(d_sae, d)) * rng.random((d_sae, 1))
    dec = dec.astype(np.float32)
    p = rng.random(num_features)
    depths = rng.integers(-1, 3, num_features)
    acc = EvalAccumulator(dec, gt, firing_probabilities=p, feature_depth=depths)
    z = np.where(rng.random((n, d_sae)) < 0.4, rng.random((n, d_sae)), 0.0).astype(np.float32)
    a = np.where(rng.random((n, num_features)) < 0.5, 1.0, 0.0).astype(np.float32)
    for lo, hi in ((0, min(cut, n)), (min(cut, n), n)):  # any split into two batches
        acc.add_batch(a[lo:hi] @ gt, a[lo:hi] @ gt, z[lo:hi], a[lo:hi])
    got = acc.compute()
    want, counts = dense_recovery(dec, gt, probability_deciles(p), depths, z, a)
    np.testing.assert_array_equal(got.feature_split_count, counts)
    assert set(got.recovery) == set(want)
    for key, value in want.items():
        assert got.recovery[key] == pytest.approx(value, rel=1e-12, abs=0), key


def test_planted_saes():
    """The ground-truth dictionary recovers everything and splits nothing; two copies of it split every
    feature into two latents."""
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(10, 6)).astype(np.float32)
    p = np.linspace(0.01, 0.3, 10)
    depths = np.array([0, 1, 1, 2, 0, 1, -1, -1, -1, -1])
    oracle = EvalAccumulator(gt, gt, firing_probabilities=p, feature_depth=depths).compute()
    assert all(v == 1.0 for k, v in oracle.recovery.items() if k.startswith("recovery/"))
    assert oracle.recovery["splitting/split_fraction"] == 0.0
    np.testing.assert_array_equal(oracle.feature_split_count, np.ones(10))
    assert {"recovery/best@0.9/depth_2", "recovery/matched@0.5/free", "recovery/best@0.7/decile_10"} <= set(
        oracle.recovery
    )
    doubled = EvalAccumulator(np.concatenate([gt, gt]), gt).compute()
    np.testing.assert_array_equal(doubled.feature_split_count, np.full(10, 2))
    assert doubled.recovery["splitting/split_fraction"] == 1.0
    assert doubled.recovery["splitting/latents_per_split_feature"] == 2.0
    # Each copy fires on its own half of a feature's rows: the union recalls every row, either copy half.
    a = np.kron(np.eye(10), np.ones((2, 1)))  # rows 2j, 2j + 1: feature j
    z = np.zeros((20, 20))
    z[np.arange(0, 20, 2), np.arange(10)] = 1.0  # copy 1 on even rows
    z[np.arange(1, 20, 2), np.arange(10, 20)] = 1.0  # copy 2 on odd rows
    split = EvalAccumulator(np.concatenate([gt, gt]), gt)
    split.add_batch(a @ gt, a @ gt, z, a)
    result = split.compute().recovery
    assert result["splitting/union_recall"] == 1.0 and result["splitting/best_single_recall"] == 0.5
    half = EvalAccumulator(gt[:5], gt).compute()  # half the features have no latent at all
    assert half.recovery["recovery/best@0.9"] == half.recovery["recovery/matched@0.9"] == 0.5
    assert half.to_log_dict()["recovery/matched@0.9"] == 0.5


def test_depths_and_deciles_of_a_world():
    world = synthsae.World(synthsae.preset("tiny"))
    depth = feature_depths(world.hierarchy, world.num_features)
    # tiny: 16 trees of branching 3 and depth 2 -> 16 roots, 48 children, 144 grandchildren.
    assert [(depth == d).sum() for d in (0, 1, 2)] == [16, 48, 144]
    assert (depth == -1).sum() == world.num_features - 208
    assert (feature_depths(None, 5) == -1).all()
    deciles = probability_deciles(world.firing_probabilities.numpy())
    sizes = np.bincount(deciles, minlength=11)[1:]
    assert sizes.sum() == 1024 and set(sizes.tolist()) == {102, 103}  # ten near-equal tenths
    p = world.firing_probabilities.numpy()
    assert p[deciles == 1].max() <= p[deciles == 10].min()


def test_random_baseline_is_chance_level_and_cached():
    world = synthsae.World(synthsae.preset("tiny"))
    chance = random_baseline(world, 256, seed=1)
    assert 0.1 < chance["baseline/mcc"] < 0.6  # random 64-d directions against 1,024 features
    assert chance["baseline/recovery/best@0.9"] == 0.0
    assert random_baseline(world, 256, seed=1) == chance
    rows = np.random.default_rng(1).normal(size=(256, world.hidden_dim)).astype(np.float32)
    direct = EvalAccumulator(rows, world.feature_vectors).compute()
    assert chance["baseline/mcc"] == direct.mcc
    assert chance["baseline/recovery/matched@0.5"] == direct.recovery["recovery/matched@0.5"]
    assert random_baseline(world, 256, seed=2) != chance
    with pytest.raises(ValueError, match=r"^width"):
        random_baseline(world, 0)


def test_bad_world_arrays():
    gt = np.eye(4, dtype=np.float32)
    with pytest.raises(ValueError, match=r"^firing_probabilities"):
        EvalAccumulator(gt, gt, firing_probabilities=np.ones(3))
    with pytest.raises(TypeError, match=r"^feature_depth"):
        EvalAccumulator(gt, gt, feature_depth=np.ones(4))
    with pytest.raises(ValueError, match=r"^feature_depth"):
        EvalAccumulator(gt, gt, feature_depth=np.ones(5, dtype=np.int64))
