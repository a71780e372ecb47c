"""Feature hierarchies: SAELens's trees, JSON (``hierarchy.json``), generation and compensation.

A node may carry a feature (``feature_index``) or be organizational (``None``). A feature's
*effective parent* is its nearest ancestor with a feature. Sampling semantics (SAELens's modifier):
a feature is active only if its effective parent is active; under ``scale_children_by_parent`` its
value is multiplied by ``parent_value / parent_mean``; among the active children of a mutually
exclusive node, one uniformly chosen child survives.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from synthsae._validate import as_int
from synthsae.errors import ConfigError, ConfigTypeError
from synthsae.world.config import HierarchyConfig


@dataclass
class HierarchyNode:
    """One tree node; ``feature_index=None`` makes it organizational."""

    feature_index: int | None = None
    children: list[HierarchyNode] = field(default_factory=list)
    mutually_exclusive_children: bool = False
    scale_children_by_parent: bool = False
    feature_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature_index": self.feature_index,
            "mutually_exclusive_children": self.mutually_exclusive_children,
            "scale_children_by_parent": self.scale_children_by_parent,
            "feature_id": self.feature_id,
            "children": [c.to_dict() for c in self.children],
        }

    @classmethod
    def from_dict(cls, d: Any, path: str = "roots") -> HierarchyNode:
        if not isinstance(d, dict):
            raise ConfigError(f"hierarchy: {path} must be an object, got {type(d).__name__}")
        index = d.get("feature_index")
        if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
            raise ConfigError(
                f"hierarchy: {path}.feature_index must be a non-negative int or null, got {index!r}"
            )
        flags = {}
        for name in ("mutually_exclusive_children", "scale_children_by_parent"):
            flags[name] = d.get(name, False)
            if not isinstance(flags[name], bool):
                raise ConfigError(f"hierarchy: {path}.{name} must be a bool, got {flags[name]!r}")
        children = d.get("children", [])
        if not isinstance(children, list):
            raise ConfigError(f"hierarchy: {path}.children must be a list")
        return cls(
            feature_index=index,
            children=[cls.from_dict(c, f"{path}.children[{i}]") for i, c in enumerate(children)],
            feature_id=d.get("feature_id"),
            **flags,
        )


@dataclass
class Groups:
    """A hierarchy flattened for sampling: one group per node that has feature children.

    Group ``g`` holds ``members[ptr[g]:ptr[g+1]]`` (the node's children that carry features). They
    are evaluated only when ``gate[g]`` (their effective parent; -1 = always) is active;
    ``exclusive[g]`` keeps one uniformly chosen active member; ``rescale[g]`` multiplies members by
    ``gate_value / gate_mean``. Features in no group with a gate are evaluated in every row.
    """

    gate: npt.NDArray[np.int32]
    exclusive: npt.NDArray[np.bool_]
    rescale: npt.NDArray[np.bool_]
    ptr: npt.NDArray[np.int64]
    members: npt.NDArray[np.int32]
    depth: npt.NDArray[np.int32]  # per feature: number of feature ancestors (-1: not in the forest)


@dataclass
class Hierarchy:
    """A forest of feature trees."""

    roots: list[HierarchyNode]

    def to_dict(self) -> dict[str, Any]:
        """SAELens's ``hierarchy.json`` content."""
        return {"roots": [r.to_dict() for r in self.roots]}

    @classmethod
    def from_dict(cls, d: Any) -> Hierarchy:
        if not isinstance(d, dict) or not isinstance(d.get("roots"), list):
            raise ConfigError("hierarchy: expected an object with a 'roots' list")
        return cls([HierarchyNode.from_dict(r, f"roots[{i}]") for i, r in enumerate(d["roots"])])

    def nodes(self) -> list[tuple[HierarchyNode, int | None, int]]:
        """Every node with its effective parent feature (None at the top) and feature depth, BFS."""
        out = []
        queue: list[tuple[HierarchyNode, int | None, int]] = [(r, None, 0) for r in self.roots]
        while queue:
            out.extend(queue)
            nxt: list[tuple[HierarchyNode, int | None, int]] = []
            for node, parent, depth in queue:
                here = node.feature_index if node.feature_index is not None else parent
                child_depth = depth + (node.feature_index is not None)
                nxt.extend((c, here, child_depth) for c in node.children)
            queue = nxt
        return out

    def validate(self, num_features: int) -> None:
        """Feature indices in range and unique; exclusive nodes need >= 2 children."""
        num_features = as_int("num_features", num_features)
        seen: set[int] = set()
        for node, _, _ in self.nodes():
            if node.mutually_exclusive_children and len(node.children) < 2:
                raise ConfigError(
                    f"hierarchy: node {node.feature_index} is mutually exclusive with < 2 children"
                )
            i = node.feature_index
            if i is None:
                continue
            if i >= num_features:
                raise ConfigError(f"hierarchy: feature_index {i} out of range for {num_features} features")
            if i in seen:
                raise ConfigError(f"hierarchy: feature_index {i} appears more than once")
            seen.add(i)

    def groups(self, num_features: int) -> Groups:
        """The sampling form of the forest (see :class:`Groups`)."""
        self.validate(num_features)
        gate, exclusive, rescale, ptr, members = [], [], [], [0], []
        depth = np.full(num_features, -1, dtype=np.int32)
        for node, parent, d in self.nodes():
            if node.feature_index is not None:
                depth[node.feature_index] = d
            kids = [c.feature_index for c in node.children if c.feature_index is not None]
            if not kids:
                continue
            here = node.feature_index if node.feature_index is not None else parent
            gate.append(-1 if here is None else here)
            exclusive.append(node.mutually_exclusive_children and len(kids) >= 2)
            rescale.append(node.scale_children_by_parent and here is not None)
            members.extend(kids)
            ptr.append(len(members))
        return Groups(
            gate=np.array(gate, dtype=np.int32),
            exclusive=np.array(exclusive, dtype=np.bool_),
            rescale=np.array(rescale, dtype=np.bool_),
            ptr=np.array(ptr, dtype=np.int64),
            members=np.array(members, dtype=np.int32),
            depth=depth,
        )

    def correction_factors(self, base: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """SAELens's compensation factors, float32 ``[N]``.

        A feature under a parent with base probability P gets 1/P; a member of an exclusive group
        with parent probability P is further multiplied by ``1 + max(0, S - p_i) / P``, S the sum of
        the group's base probabilities (computed as SAELens does: float64 scalars, float32 storage).
        """
        factors = np.ones(len(base), dtype=np.float32)

        def visit(node: HierarchyNode, parent_prob: float) -> None:
            if node.feature_index is not None:
                if parent_prob > 0:
                    factors[node.feature_index] = np.float32(1.0 / parent_prob)
                node_prob = float(base[node.feature_index])
            else:
                node_prob = parent_prob
            for child in node.children:
                visit(child, node_prob)
            if node.mutually_exclusive_children and len(node.children) >= 2:
                kids = [
                    (c.feature_index, float(base[c.feature_index]))
                    for c in node.children
                    if c.feature_index is not None
                ]
                if len(kids) >= 2 and node_prob > 0:
                    total = sum(p for _, p in kids)
                    for i, p in kids:
                        factors[i] = factors[i] * np.float32(1.0 + max(0.0, total - p) / node_prob)

        for root in self.roots:
            visit(root, 1.0)
        return factors


def compensate(base: npt.NDArray[np.float32], hierarchy: Hierarchy) -> tuple[npt.NDArray[np.float32], int]:
    """``min(1, p * factor)`` in float32, and how many features the clamp changed."""
    corrected = base * hierarchy.correction_factors(base)
    clamped = int(((corrected >= 1) & (base < 1)).sum())
    return np.minimum(corrected, np.float32(1)), clamped


def generate_hierarchy(num_features: int, config: HierarchyConfig, seed: int | None = None) -> Hierarchy:
    """SAELens's breadth-first forest generation, draw for draw (Python ``random.Random(seed)``).

    Roots take indices 0..R-1, then each level's children take the next indices, level by level.
    Branching is drawn for every node above ``max_depth`` even once indices run out. Then
    ``floor(portion * #eligible)`` eligible parents (depth in range, >= 2 children) become
    mutually exclusive; ``scale_children_by_parent`` marks every parent.
    """
    num_features = as_int("num_features", num_features)
    if not isinstance(config, HierarchyConfig):
        raise ConfigTypeError(f"config must be a HierarchyConfig, got {type(config).__name__}")
    rng = random.Random(seed)
    next_index = iter(range(num_features))
    # range first: zip stops on it without drawing (and losing) an index from next_index.
    roots = [HierarchyNode(i) for _, i in zip(range(config.total_root_nodes), next_index, strict=False)]
    parents = [(r, 0) for r in roots]
    level = list(parents)
    while level:
        below = []
        for node, depth in level:
            if depth >= config.max_depth:
                continue
            if isinstance(config.branching_factor, int):
                branching = config.branching_factor
            else:
                branching = rng.randint(*config.branching_factor)
            for _, i in zip(range(branching), next_index, strict=False):
                child = HierarchyNode(i)
                node.children.append(child)
                if depth + 1 < config.max_depth:
                    below.append((child, depth + 1))
        parents.extend(below)
        level = below
    lo, hi = config.mutually_exclusive_min_depth, config.mutually_exclusive_max_depth
    eligible = [n for n, d in parents if d >= lo and (hi is None or d <= hi) and len(n.children) >= 2]
    count = int(len(eligible) * config.mutually_exclusive_portion)
    if count > 0:
        for k in rng.sample(range(len(eligible)), count):
            eligible[k].mutually_exclusive_children = True
    if config.scale_children_by_parent:
        for node, _ in parents:
            node.scale_children_by_parent = True
    return Hierarchy(roots)


def tree_positions(
    hierarchy: Hierarchy | None, num_features: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """int64 ``[N]`` arrays ``(parent, depth)``: each feature's parent feature in the forest (-1 for roots
    and free features) and its depth (0 = root, -1 for features in no tree), from one walk."""
    num_features = as_int("num_features", num_features)
    parent = np.full(num_features, -1, dtype=np.int64)
    depth = np.full(num_features, -1, dtype=np.int64)
    if hierarchy is not None:
        for node, up, d in hierarchy.nodes():
            if node.feature_index is not None:
                depth[node.feature_index] = d
                parent[node.feature_index] = -1 if up is None else up
    return parent, depth
