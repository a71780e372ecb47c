"""Hierarchy generation, JSON and compensation against SAELens's recorded outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from synthsae.world.config import HierarchyConfig
from synthsae.world.hierarchy import Hierarchy, HierarchyNode, compensate, generate_hierarchy

FIXTURES = json.loads((Path(__file__).parents[1] / "data" / "saelens_fixtures.json").read_text())


@pytest.mark.parametrize("case", FIXTURES["hierarchies"], ids=lambda c: str(c["num_features"]))
def test_generation_and_factors_equal_saelens(case):
    cfg = HierarchyConfig.from_dict(case["config"])
    tree = generate_hierarchy(case["num_features"], cfg, seed=case["seed"])
    assert tree.to_dict() == case["tree"]
    assert Hierarchy.from_dict(case["tree"]) == tree
    p = np.array(case["base_probabilities"], dtype=np.float32)
    np.testing.assert_array_equal(
        tree.correction_factors(p), np.array(case["correction_factors"], np.float32)
    )


def test_doc_check_value_tree():
    # N=20, roots=2, branching=3, max_depth=2, portion=0.5, seed=0 (reference doc §2.6.4).
    tree = generate_hierarchy(20, HierarchyConfig(2, 3, 2, 0.5), seed=0)
    kids = {n.feature_index: [c.feature_index for c in n.children] for n, _, _ in tree.nodes()}
    assert kids[0] == [2, 3, 4] and kids[1] == [5, 6, 7] and kids[5] == [17, 18, 19]
    assert kids[6] == [] and kids[7] == []
    assert {n.feature_index for n, _, _ in tree.nodes() if n.mutually_exclusive_children} == {0, 3, 5}


def test_16k_structure():
    cfg = HierarchyConfig(128, 4, 3, 1.0, 0, None, True, True)
    tree = generate_hierarchy(16384, cfg, seed=45)
    groups = tree.groups(16384)
    assert groups.depth[127] == 0 and groups.depth[128] == 1 and groups.depth[640] == 2
    assert groups.depth[10879] == 3 and groups.depth[10880] == -1
    assert len(groups.gate) == 128 + 512 + 2048 and groups.exclusive.all() and groups.rescale.all()
    assert np.all(np.diff(groups.ptr) == 4)
    np.testing.assert_array_equal(groups.members[:4], [128, 129, 130, 131])


@pytest.mark.parametrize(
    ("tree", "base", "want"),
    [
        # parent 0.5 with exclusive children 0.3 / 0.2 -> 2 * 1.4 and 2 * 1.6 (reference doc §2.6.5)
        (HierarchyNode(0, [HierarchyNode(1), HierarchyNode(2)], True), [0.5, 0.3, 0.2], [1.0, 2.8, 3.2]),
        # organizational exclusive root with children 0.3 / 0.2 -> 1.2 and 1.3
        (HierarchyNode(None, [HierarchyNode(0), HierarchyNode(1)], True), [0.3, 0.2], [1.2, 1.3]),
        # chain 0.5 -> 0.4 -> 0.3 without exclusion -> 1, 2, 2.5
        (HierarchyNode(0, [HierarchyNode(1, [HierarchyNode(2)])]), [0.5, 0.4, 0.3], [1.0, 2.0, 2.5]),
    ],
)
def test_correction_factor_check_values(tree, base, want):
    got = Hierarchy([tree]).correction_factors(np.array(base, dtype=np.float32))
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_compensate_clamps_and_counts():
    tree = Hierarchy([HierarchyNode(0, [HierarchyNode(1)])])
    p, clamped = compensate(np.array([0.1, 0.5], dtype=np.float32), tree)
    np.testing.assert_array_equal(p, np.array([0.1, 1.0], dtype=np.float32))
    assert clamped == 1


def test_groups_follow_effective_parents_through_organizational_nodes():
    org = HierarchyNode(None, [HierarchyNode(2), HierarchyNode(3)], True, True)
    tree = Hierarchy([HierarchyNode(0, [org, HierarchyNode(1)]), HierarchyNode(None, [HierarchyNode(4)])])
    g = tree.groups(6)
    rows = {
        tuple(g.members[g.ptr[k] : g.ptr[k + 1]]): (g.gate[k], g.exclusive[k], g.rescale[k])
        for k in range(len(g.gate))
    }
    assert rows == {(1,): (0, False, False), (2, 3): (0, True, True), (4,): (-1, False, False)}
    np.testing.assert_array_equal(g.depth, [0, 1, 1, 1, 0, -1])


@pytest.mark.parametrize(
    ("d", "match"),
    [
        ({"roots": [{"feature_index": 0, "children": [{"feature_index": 0}]}]}, "more than once"),
        ({"roots": [{"feature_index": 9}]}, "out of range"),
        ({"roots": [{"feature_index": -1}]}, "feature_index"),
        (
            {
                "roots": [
                    {
                        "feature_index": 0,
                        "mutually_exclusive_children": True,
                        "children": [{"feature_index": 1}],
                    }
                ]
            },
            "< 2",
        ),
        ({"roots": [{"feature_index": 0, "children": "x"}]}, "children"),
        ({"nodes": []}, "roots"),
    ],
)
def test_bad_hierarchies_are_rejected(d, match):
    with pytest.raises(ValueError, match=match):
        Hierarchy.from_dict(d).groups(5)
