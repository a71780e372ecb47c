"""Dense torch oracle: SAELens's algorithms, written to be obviously correct, for tests only.

Everything here is O(n·N) and float32 torch like ``sae_lens.synthetic``; the fast paths in
synthsae are checked against it. Not part of the supported API surface.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import torch

from synthsae.errors import ConfigError


def zipfian_firing_probabilities(
    num_features: int, exponent: float = 1.0, max_prob: float = 0.3, min_prob: float = 0.01
) -> torch.Tensor:
    """SAELens's zipfian formula in float32 torch; ``[N]``."""
    if num_features == 1:
        return torch.tensor([max_prob])
    ranks = torch.arange(1, num_features + 1, dtype=torch.float32)
    q = 1.0 / ranks**exponent
    return min_prob + (max_prob - min_prob) * (q - q.min()) / (q.max() - q.min())


def linear_firing_probabilities(
    num_features: int, max_prob: float = 0.3, min_prob: float = 0.01
) -> torch.Tensor:
    """SAELens's linear formula: ``torch.linspace(max_prob, min_prob, N)``; ``[N]``."""
    if num_features == 1:
        return torch.tensor([max_prob])
    return torch.linspace(max_prob, min_prob, num_features)


def sample_independent(
    firing_probabilities: torch.Tensor,
    n: int,
    *,
    generator: torch.Generator,
    mean_magnitudes: float | torch.Tensor = 1.0,
    std_magnitudes: float | torch.Tensor = 0.0,
) -> torch.Tensor:
    """SAELens ``ActivationGenerator.sample`` without correlation or modifiers; dense ``[n, N]``.

    Every feature of every row draws a Bernoulli(p_i); firing entries get
    ``relu(mean_i + std_i * N(0, 1))``.
    """
    p = torch.as_tensor(firing_probabilities, dtype=torch.float32)
    num_features = p.shape[0]
    mean = torch.as_tensor(mean_magnitudes, dtype=torch.float32).expand(num_features)
    std = torch.as_tensor(std_magnitudes, dtype=torch.float32).expand(num_features)
    rows, cols = torch.bernoulli(p.expand(n, num_features), generator=generator).nonzero(as_tuple=True)
    noise = torch.randn(cols.shape[0], generator=generator)
    out = torch.zeros(n, num_features)
    out[rows, cols] = (mean[cols] + std[cols] * noise).relu()
    return out


def _walk_hierarchy(
    roots: list[dict[str, Any]],
) -> tuple[list[tuple[int, int | None, int, bool]], list[tuple[int, int | None, list[int]]]]:
    """BFS over a hierarchy.json forest, as SAELens's ``_build_sparse_hierarchy`` does.

    Returns ``features``: ``(feature, effective parent or None, level, immediate parent rescales)``
    and ``groups``: ``(level of the ME node, its feature or None, member features)``.
    """
    features: list[tuple[int, int | None, int, bool]] = []
    groups: list[tuple[int, int | None, list[int]]] = []
    queue: deque[tuple[dict[str, Any], int | None, int, bool]] = deque(
        (root, None, 0, False) for root in roots
    )
    while queue:
        node, parent, level, rescales = queue.popleft()
        index = node.get("feature_index")
        children = node.get("children", [])
        if index is not None:
            features.append((index, parent, level, rescales))
        members = [c["feature_index"] for c in children if c.get("feature_index") is not None]
        if node.get("mutually_exclusive_children", False) and len(members) >= 2:
            groups.append((level, index, members))
        for child in children:
            queue.append(
                (
                    child,
                    parent if index is None else index,
                    level + 1,
                    node.get("scale_children_by_parent", False),
                )
            )
    return features, groups


def apply_hierarchy(
    acts: torch.Tensor,
    roots: list[dict[str, Any]],
    mean_magnitudes: torch.Tensor | float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SAELens's ``hierarchy_modifier`` on a dense ``[n, N]`` batch (no final relu); returns a new tensor.

    ``roots`` is the ``"roots"`` list of SAELens's ``hierarchy.json``. Level by level (organizational
    nodes count as levels): gate each feature by its nearest featureful ancestor ``q`` — multiply by
    ``1[A_q > 0]``, or by ``A_q / mean_q`` where the immediate parent node has
    ``scale_children_by_parent`` — then, for the ME nodes at that level whose gate is active (or which
    are organizational), keep one uniformly chosen active child where several are active. The ME draw
    is one ``torch.rand(conflicts, widest group)`` per level, conflicts in (row, group) order, so the
    output matches SAELens bit for bit given the same RNG state. ``mean_magnitudes``: ``[N]`` or scalar.
    """
    features, groups = _walk_hierarchy(roots)
    mean = torch.as_tensor(mean_magnitudes, dtype=acts.dtype).expand(acts.shape[1])
    rescale_parents = sorted({q for _, q, _, rescales in features if rescales and q is not None})
    if rescale_parents and not bool((mean[rescale_parents] > 0).all()):
        raise ConfigError("mean_magnitudes must be > 0 for parents with scale_children_by_parent=True")
    out = acts.clone()
    width = max((len(members) for _, _, members in groups), default=0)
    num_levels = 1 + max([f[2] for f in features] + [g[0] for g in groups], default=-1)
    for level in range(num_levels):
        for feature, parent, feature_level, rescales in features:
            if feature_level != level or parent is None:
                continue
            active = out[:, parent] > 0
            if rescales:
                factor = torch.where(active, out[:, parent] / mean[parent], 0.0)
            else:
                factor = active.to(out.dtype)
            out[:, feature] = out[:, feature] * factor

        level_groups = [(gate, members) for group_level, gate, members in groups if group_level == level]
        if not level_groups:
            continue
        # active[r, g, s]: member s of group g fires in row r and g's gate is open.
        active = torch.zeros(out.shape[0], len(level_groups), width, dtype=torch.bool)
        for g, (gate, members) in enumerate(level_groups):
            gate_open = True if gate is None else (out[:, gate] > 0).unsqueeze(1)
            active[:, g, : len(members)] = (out[:, members] > 0) & gate_open
        conflict = active.sum(dim=2) > 1
        num_conflicts = int(conflict.sum())
        if num_conflicts == 0:
            continue
        scores = torch.full(active.shape, float("-inf"))
        scores[conflict] = torch.rand(num_conflicts, width, generator=generator)
        scores[~active] = float("-inf")
        winner = torch.nn.functional.one_hot(scores.argmax(dim=2), width).bool()
        loses = active & conflict.unsqueeze(2) & ~winner
        for g, (_, members) in enumerate(level_groups):
            out[:, members] = out[:, members].masked_fill(loses[:, g, : len(members)], 0.0)
    return out


def sample_world(
    n: int,
    *,
    firing_probabilities: torch.Tensor,
    generator: torch.Generator | None = None,
    mean_magnitudes: torch.Tensor | float = 1.0,
    std_magnitudes: torch.Tensor | float = 0.0,
    correlation_factor: torch.Tensor | None = None,
    correlation_diag: torch.Tensor | None = None,
    correlation_matrix: torch.Tensor | None = None,
    hierarchy: dict[str, Any] | None = None,
) -> torch.Tensor:
    """SAELens ``ActivationGenerator.sample(n)`` (dense) plus its hierarchy modifier; ``[n, N]`` float32.

    Firing: independent Bernoulli(p); or a Gaussian copula, ``z > sqrt(2)·erfinv(1 - 2p)`` with
    ``z = eps @ F.T + eta·sqrt(diag)`` (``correlation_factor`` ``[N, r]``, ``correlation_diag`` ``[N]``)
    or ``z = chol(C) @ eps`` (``correlation_matrix`` ``[N, N]``). Firing entries get
    ``relu(mean + std·N(0, 1))``; then ``apply_hierarchy`` and relu when ``hierarchy`` (a
    ``{"roots": [...]}`` dict) is given. ``generator=None`` draws from torch's global RNG in SAELens's
    order, so after ``torch.manual_seed(s)`` the result equals SAELens's bit for bit.
    ``firing_probabilities`` is ``[N]``; magnitudes are ``[N]`` or scalars.
    """
    p = torch.as_tensor(firing_probabilities, dtype=torch.float32)
    num_features = p.shape[0]
    mean = torch.as_tensor(mean_magnitudes, dtype=torch.float32).expand(num_features)
    std = torch.as_tensor(std_magnitudes, dtype=torch.float32).expand(num_features)
    if (correlation_factor is None) != (correlation_diag is None):
        raise ConfigError("correlation_factor and correlation_diag go together")
    if correlation_matrix is not None and correlation_factor is not None:
        raise ConfigError("give a correlation matrix or a low-rank correlation, not both")

    if correlation_matrix is None and correlation_factor is None:
        fires = torch.bernoulli(p.unsqueeze(0).expand(n, -1), generator=generator)
    else:
        threshold = math.sqrt(2) * torch.erfinv(1 - 2 * p)
        if correlation_matrix is not None:
            scale_tril = torch.linalg.cholesky(correlation_matrix.to(torch.float32))
            eps = torch.randn(n, num_features, generator=generator)
            z = torch.matmul(scale_tril, eps.unsqueeze(-1)).squeeze(-1)
        else:
            assert correlation_factor is not None and correlation_diag is not None
            eps = torch.randn(
                n, correlation_factor.shape[1], generator=generator, dtype=correlation_factor.dtype
            )
            eta = torch.randn(n, num_features, generator=generator, dtype=correlation_diag.dtype)
            z = eps @ correlation_factor.T + eta * correlation_diag.sqrt()
        fires = z > threshold.unsqueeze(0)
    rows, cols = fires.nonzero(as_tuple=True)
    noise = torch.randn(cols.shape[0], generator=generator)
    out = torch.zeros(n, num_features)
    out[rows, cols] = (mean[cols] + noise * std[cols]).relu()
    if hierarchy is not None:
        out = apply_hierarchy(out, hierarchy["roots"], mean, generator).relu()
    return out
