"""Absorption on a world's hierarchy: dense definitions, planted SAEs with known answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import synthsae
from synthsae import EvalAccumulator, SparseBatch
from synthsae.evaluation.absorption import (
    ABSORBED_SHARE,
    ABSORBER_THRESHOLD,
    MAX_ABSORBERS,
    MIN_ROWS,
    NEAR_THRESHOLD,
    feature_parents,
)
from synthsae.evaluation.recovery import feature_depths


def dense_fraction(z, a, u, w, s, lp, p, rows):
    """SAEBench's absorption fraction (synthsae.evaluation.absorption's docstring), row by row in float64."""
    wp = w[p].astype(np.float64) / np.linalg.norm(w[p].astype(np.float64))
    proj = z.astype(np.float64) * (u.astype(np.float64) @ wp)[None, :]
    others = [lat for lat in range(len(u)) if lat != lp and s[lat, p] >= ABSORBER_THRESHOLD]
    values = []
    for r in np.flatnonzero(rows):
        target, main = float(a[r, p]), (proj[r, lp] if z[r, lp] != 0 else 0.0)
        top = sorted((proj[r, lat] for lat in others if z[r, lat] != 0 and proj[r, lat] > 0), reverse=True)
        absorbed = sum(top[:MAX_ABSORBERS])
        if main >= target or absorbed / target < ABSORBED_SHARE:
            values.append(0.0)
        elif main <= 0:
            values.append(1.0)
        else:
            absorbed = min(absorbed, target - main)
            values.append(min(max(absorbed / (absorbed + main), 0.0), 1.0))
    return float(np.mean(values))


def dense_absorption(z, a, s, latent_of, parent, depth, u, w, min_rows=MIN_ROWS):
    """The definitions of synthsae.evaluation.absorption, densely (float64); ``u`` the effective decoder,
    ``w`` the features."""
    fires, active = z != 0, a > 0
    figures = {"gap": {}, "full_rate": {}, "near_rate": {}, "fraction": {}}
    for p in sorted(set(parent[parent >= 0].tolist())):
        lp = latent_of[p]
        if lp < 0:
            continue
        kids = np.flatnonzero(parent == p)
        any_child = active[:, kids].any(1)
        alone, with_child = active[:, p] & ~any_child, active[:, p] & any_child
        if alone.sum() >= min_rows and with_child.sum() >= min_rows:
            figures["gap"][p] = fires[alone, lp].mean() - fires[with_child, lp].mean()
        if with_child.sum() >= min_rows:
            figures["fraction"][p] = dense_fraction(z, a, u, w, s, lp, p, with_child)
        near = [lat for lat in np.flatnonzero(s[:, p] >= NEAR_THRESHOLD) if lat != lp]
        absorbed = both_matched = near_hits = both_all = 0
        for c in kids:
            both = active[:, p] & active[:, c]
            silent = both & ~fires[:, lp]
            both_all += both.sum()
            near_hits += (silent & fires[:, near].any(1)).sum() if near else 0
            if latent_of[c] >= 0:
                both_matched += both.sum()
                absorbed += (silent & fires[:, latent_of[c]]).sum()
        if both_matched >= min_rows:
            figures["full_rate"][p] = absorbed / both_matched
        if both_all >= min_rows:
            figures["near_rate"][p] = near_hits / both_all
    out = {}
    for name, values in figures.items():
        out[f"absorption/{name}"] = float(np.mean(list(values.values()))) if values else 0.0
        for d in sorted({int(depth[p]) for p in values}):
            out[f"absorption/{name}/depth_{d}"] = float(
                np.mean([v for p, v in values.items() if depth[p] == d])
            )
    out["absorption/gap_parents"] = float(len(figures["gap"]))
    out["absorption/rate_parents"] = float(len(figures["full_rate"]))
    out["absorption/fraction_parents"] = float(len(figures["fraction"]))
    edges = dense_edges(z, a, latent_of, parent)
    eligible = [e for e in edges if e["absorption_gap"] is not None]
    out["absorption/edge_gap"] = float(np.mean([e["absorption_gap"] for e in eligible])) if eligible else 0.0
    out["absorption/eligible_edge_fraction"] = len(eligible) / len(edges) if edges else 0.0
    return out


def dense_edges(z, a, latent_of, parent):
    """SAELens #729's per-edge definitions, densely: for each parent→child edge (children grouped by
    parent, ascending), among rows where the parent is active, the recall of the parent's matched latent
    without and with the child, their difference, the counts; None ("unavailable") where a
    denominator is 0 or the parent has no latent."""
    fires, active = z != 0, a > 0
    out = []
    for p in sorted(set(parent[parent >= 0].tolist())):
        lp = latent_of[p]
        parent_fires = fires[:, lp] if lp >= 0 else np.zeros(len(z), dtype=bool)
        for c in np.flatnonzero(parent == p):
            with_c = active[:, p] & active[:, c]
            without_c = active[:, p] & ~active[:, c]
            counts = {
                "with_child": int(with_c.sum()),
                "with_child_fires": int((with_c & parent_fires).sum()),
                "without_child": int(without_c.sum()),
                "without_child_fires": int((without_c & parent_fires).sum()),
            }
            without = (
                counts["without_child_fires"] / counts["without_child"] if counts["without_child"] else None
            )
            with_ = counts["with_child_fires"] / counts["with_child"] if counts["with_child"] else None
            if lp < 0:
                without = with_ = None
            out.append(
                {
                    "parent": p,
                    "child": int(c),
                    "parent_latent": int(lp),
                    "parent_without_child_recall": without,
                    "parent_with_child_recall": with_,
                    "absorption_gap": None if without is None or with_ is None else without - with_,
                    **counts,
                }
            )
    return out


def to_sparse(a: np.ndarray) -> SparseBatch:
    rows, cols = np.nonzero(a > 0)
    indptr = np.concatenate([[0], np.cumsum((a > 0).sum(1))]).astype(np.int64)
    return SparseBatch(indptr, cols.astype(np.int32), a[rows, cols].astype(np.float32), a.shape)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 120), d_sae=st.integers(1, 10), data=st.data())
def test_absorption_matches_dense_definitions(seed, n, d_sae, data):
    rng = np.random.default_rng(seed)
    num_features, d = 9, 5
    # A random forest: each feature's parent is an earlier feature or none.
    parent = np.array([rng.integers(-1, j) if j and rng.random() < 0.7 else -1 for j in range(num_features)])
    depth = np.zeros(num_features, dtype=np.int64)
    for j in range(num_features):
        depth[j] = 0 if parent[j] < 0 else depth[parent[j]] + 1
    gt = rng.normal(size=(num_features, d)).astype(np.float32)
    dec = (gt[rng.integers(0, num_features, d_sae)] + rng.normal(size=(d_sae, d)) * 0.5).astype(np.float32)
    a = np.where(rng.random((n, num_features)) < 0.5, rng.random((n, num_features)), 0.0).astype(np.float32)
    z = np.where(rng.random((n, d_sae)) < 0.5, rng.random((n, d_sae)) * 2, 0.0).astype(np.float32)
    # What each latent adds to the reconstruction: its decoder row rescaled (as TopK's decode does).
    u = (dec * rng.uniform(0.5, 2.0, (d_sae, 1))).astype(np.float32)
    min_rows = data.draw(st.sampled_from([1, 3, MIN_ROWS]))
    sparse = data.draw(st.booleans())
    acc = EvalAccumulator(dec, gt, feature_parent=parent, feature_depth=depth, effective_decoder=u)
    cuts = sorted({0, n, *data.draw(st.lists(st.integers(0, n), max_size=3))})
    for lo, hi in itertools.pairwise(cuts):
        latents = to_sparse(z[lo:hi]) if sparse else z[lo:hi]
        acc.add_batch(a[lo:hi] @ gt, a[lo:hi] @ gt, latents, to_sparse(a[lo:hi]))
    assert acc._absorption is not None
    got = acc._absorption.metrics(min_rows)
    latent_of = acc.feature_mcc_latent
    s = synthsae.abs_cos_matrix(dec, gt)
    want = dense_absorption(z, a, s, latent_of, parent, depth, u, gt, min_rows)
    assert set(got) == set(want)
    for key, value in want.items():
        # Counts are exact; fractions are float64 sums (1e-9 relative tolerance).
        tol = 1e-9 if key.startswith("absorption/fraction") else 1e-12
        assert got[key] == pytest.approx(value, rel=tol, abs=1e-15), key
    # per edge: every count exact, every recall and gap the dense one (None where unavailable)
    edges = acc._absorption.edges().records()
    dense = dense_edges(z, a, latent_of, parent)
    assert [(e["parent"], e["child"]) for e in edges] == [(e["parent"], e["child"]) for e in dense]
    for mine, theirs in zip(edges, dense, strict=True):
        assert mine.keys() == theirs.keys()
        for key, value in theirs.items():
            assert (mine[key] is None) if value is None else mine[key] == pytest.approx(value, rel=1e-12)


def _world() -> synthsae.World:
    config = synthsae.preset("tiny")
    config.correlation = None  # features independent before the hierarchy: the analytic rate is exact
    return synthsae.World(config)


def test_oracle_absorbs_nothing_and_a_planted_absorber_matches_the_world():
    world = _world()
    n, num_features = 60_000, world.num_features
    feats = world.sample_features(n, seed=0)
    parent = feature_parents(world.hierarchy, num_features)
    depth = feature_depths(world.hierarchy, num_features)
    x = world.hidden_from_features(feats).numpy()
    gt = world.feature_vectors.numpy()

    def score(latents: SparseBatch) -> dict[str, float]:
        # decoder = dictionary: each latent is matched to its own feature
        acc = EvalAccumulator(gt, gt, feature_parent=parent, feature_depth=depth)
        acc.add_batch(x, x, latents, feats)
        return acc.compute().recovery

    oracle = score(feats)
    assert oracle["absorption/gap"] == 0.0 and oracle["absorption/full_rate"] == 0.0
    # M = a_p·(w_p·w_p) ≥ T up to float32 normalisation, so at most a rounding-sized fraction.
    assert oracle["absorption/fraction"] < 1e-5
    assert oracle["absorption/rate_parents"] >= 60  # the tiny forest's parents with enough rows

    # Roots stop firing whenever their first child fires (that child's latent carries them).
    roots = np.flatnonzero((parent < 0) & np.isin(np.arange(num_features), parent))
    first = {int(p): int(np.flatnonzero(parent == p)[0]) for p in roots}
    rows = np.repeat(np.arange(n), np.diff(feats.indptr))
    keys = set((rows * num_features + feats.indices).tolist())
    silenced = np.array(
        [
            int(j) in first and (int(r) * num_features + first[int(j)]) in keys
            for r, j in zip(rows, feats.indices, strict=True)
        ]
    )
    keep = ~silenced
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows[keep], minlength=n))]).astype(np.int64)
    absorber = SparseBatch(indptr, feats.indices[keep], feats.values[keep], feats.shape)
    got = score(absorber)
    # Analytic, per root: its children fire independently with their (compensated) probabilities q_c
    # and one uniformly random active child survives, so the share of child rows that are the first
    # child's is P(first survives) / P(some child) = Σ_{S ∋ first} Π_S q Π_{not S} (1 - q) / |S|, over
    # 1 - Π (1 - q).
    q_all = world.firing_probabilities.numpy().astype(np.float64)
    rates = []
    for p in roots:
        q = q_all[np.flatnonzero(parent == p)]
        survive = 0.0
        for mask in itertools.product([0, 1], repeat=len(q)):
            if mask[0]:
                m = np.array(mask, dtype=bool)
                survive += np.prod(np.where(m, q, 1 - q)) / m.sum()
        rates.append(survive / (1 - np.prod(1 - q)))
    # Only the roots absorb (depth 0); deeper parents keep firing, so their rate is 0.
    assert got["absorption/full_rate/depth_0"] == pytest.approx(np.mean(rates), abs=0.02)
    assert got["absorption/gap/depth_0"] == pytest.approx(np.mean(rates), abs=0.02)  # recall 1 alone
    assert got["absorption/full_rate/depth_1"] == 0.0

    # Partial absorber: where a root and its first child are active, the root's latent keeps (1 − β) of
    # a_p and a latent of its own (decoder between w_p and w_c, adding w_p per unit) carries β·a_p; per
    # row the fraction is then exactly β, so per root β × the analytic share of child rows above.
    beta = 0.6
    vals = np.where(silenced, (1 - beta) * feats.values, feats.values)
    root_slot = {p: k for k, p in enumerate(first)}
    extra_rows = rows[silenced]
    extra_cols = num_features + np.array([root_slot[int(j)] for j in feats.indices[silenced]], dtype=np.int64)
    all_rows = np.concatenate([rows, extra_rows])
    order = np.lexsort((np.concatenate([feats.indices, extra_cols]), all_rows))
    partial = SparseBatch(
        np.concatenate([[0], np.cumsum(np.bincount(all_rows, minlength=n))]).astype(np.int64),
        np.concatenate([feats.indices, extra_cols])[order].astype(np.int32),
        np.concatenate([vals, beta * feats.values[silenced]])[order].astype(np.float32),
        (n, num_features + len(first)),
    )
    towards = np.stack([gt[p] + gt[c] for p, c in first.items()])
    acc = EvalAccumulator(
        np.concatenate([gt, towards / np.linalg.norm(towards, axis=1, keepdims=True)]),
        gt,
        feature_parent=parent,
        feature_depth=depth,
        effective_decoder=np.concatenate([gt, gt[list(first)]]),
    )
    acc.add_batch(x, x, partial, feats)
    fraction = acc.compute().recovery
    assert fraction["absorption/full_rate/depth_0"] == 0.0  # the root's latent still fires
    assert fraction["absorption/fraction/depth_0"] == pytest.approx(beta * np.mean(rates), abs=0.02)


def test_evaluate_extended_block_can_be_turned_off():
    world = _world()
    sae = synthsae.saes.TopKSAE(world.hidden_dim, 64, 4, seed=0)
    full = synthsae.evaluate(sae, world, num_samples=2000, show_progress=False)
    plain = synthsae.evaluate(sae, world, num_samples=2000, show_progress=False, extended=False)
    assert {k for k in full.recovery if k.startswith(("absorption/", "baseline/"))}
    assert not {k for k in plain.recovery if k.startswith(("absorption/", "baseline/")) or "/depth_" in k}
    assert plain.recovery["recovery/best@0.5"] == full.recovery["recovery/best@0.5"]
    assert plain.mcc == full.mcc and plain.matched_f1 == full.matched_f1
