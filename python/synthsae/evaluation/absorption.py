"""Feature absorption, measured exactly on a world's hierarchy.

A parent feature p with children C(p) has the latent ``ℓ_p`` the MCC matching pairs with it; each child c
has ``ℓ_c``. On the evaluated rows (a feature is active when its activation is > 0, a latent fires when
it is non-zero), per parent:

- **absorption gap**: ``recall(ℓ_p | p active, no child active) − recall(ℓ_p | p and some child
  active)``. An SAE whose parent latent stops firing when a child fires (the child's latent absorbed the
  parent direction) has a gap near 1; one that tracks p has a gap near 0. (SAELens's requested
  hierarchy-conditioned "absorption gap".)
- **full absorption rate**: over the rows where p and a child c are both active, pooled over the children
  that have a matched latent, the fraction where ``ℓ_p`` is silent while ``ℓ_c`` fires (SAEBench's "full
  absorption", Chanin et al. 2024, arXiv 2409.14507, with the ground truth in place of probes).
- **near absorption rate**: the same rows, the fraction where ``ℓ_p`` is silent while some other latent
  whose decoder has |cos| ≥ 0.5 with p's direction fires.
- **absorption fraction** (partial absorption; SAEBench's ``absorption_fraction``, Demian Till's addition
  to Chanin et al.'s metric, with p's true activation in place of the probe's). Latent l contributes
  ``π_l = z_l·(u_l·w_p)`` along p's unit direction ``w_p``, where ``u_l = decode(e_l) − decode(0)`` is what
  one unit of l adds to the reconstruction. On a row where p and some child are active, with target
  ``T = a_p`` (p's activation), main ``M = π_{ℓ_p}`` (0 when ``ℓ_p`` is silent) and ``A`` = the sum of the
  largest 3 positive ``π_l`` over latents ``l ≠ ℓ_p`` whose decoder has |cos| ≥ 0.1 with ``w_p``::

      fraction = 0                      if M ≥ T or A / T < 0.4
               = 1                      elif M ≤ 0
               = A' / (A' + M)          else, with A' = min(A, T − M)   (clipped to [0, 1])

  Per parent: the mean over those rows.

Per parent→child **edge** (SAELens's proposed per-edge hierarchy absorption): among the rows where p is
active, the recall of ``ℓ_p`` where c is not active and where c is, their difference (the edge's
absorption gap), and the counts behind them; a recall whose denominator is 0 is unavailable (None), and
an edge is *eligible* when p has a matched latent and both denominators are > 0. Reported:
``absorption/edge_gap`` (mean over eligible edges) and ``absorption/eligible_edge_fraction``; the
per-edge counts are :class:`EdgeAbsorption` (``EvalResult.edge_absorption``).

A parent counts towards a figure when it has a matched latent and at least ``min_rows`` (20) rows in each
condition the figure uses. Reported (``absorption/…``): the mean over counted parents, overall and by the
parent's depth (``…/depth_d``), and the number of parents counted (``absorption/gap_parents``,
``absorption/rate_parents``, ``absorption/fraction_parents``). The counts run in Rust in the evaluation's
pass over the data (``synthsae._core.AbsorptionState``). Typed: :class:`AbsorptionResult`
(``EvalResult.absorption``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import numpy.typing as npt

from synthsae import _core
from synthsae.errors import ConfigError
from synthsae.world.hierarchy import tree_positions

if TYPE_CHECKING:
    from synthsae.world.hierarchy import Hierarchy

#: CSR arrays ``(indptr int64, indices int32, values float32)``.
Csr = tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.float32]]

#: |cos| with the parent's direction that makes a latent "near" it.
NEAR_THRESHOLD = 0.5
#: |cos| with the parent's direction a latent needs to count as an absorber (SAEBench's
#: ``absorption_fraction_probe_cos_sim_threshold``).
ABSORBER_THRESHOLD = 0.1
#: Share of the parent's activation the absorbers must carry, and how many count (SAEBench's
#: ``probe_projection_proportion_threshold`` and ``absorption_fraction_max_absorbing_latents``; the
#: Rust counts use the same values).
ABSORBED_SHARE = 0.4
MAX_ABSORBERS = 3
#: Rows a parent needs in each condition of a figure to count towards it.
MIN_ROWS = 20


@dataclass(frozen=True)
class AbsorptionFigure:
    """One absorption figure: the mean over the counted parents, overall and by the parent's depth."""

    overall: float
    by_depth: dict[int, float] = field(default_factory=dict)


#: The figures, in the order they are logged.
_FIGURES = ("gap", "full_rate", "near_rate", "fraction")
#: The counts of parents, in the order they are logged.
_PARENTS = ("gap_parents", "rate_parents", "fraction_parents")
#: The per-edge figures, in the order they are logged.
_EDGES = ("edge_gap", "eligible_edge_fraction")


@dataclass(frozen=True)
class AbsorptionResult:
    """Absorption on the world's hierarchy (``absorption/…`` keys; definitions in
    :mod:`synthsae.evaluation.metrics`).
    ``near_rate``, ``fraction`` and ``fraction_parents`` are None in a result whose writer did not record
    them."""

    #: ``absorption/gap``: recall of the parent's latent alone minus with a child.
    gap: AbsorptionFigure
    #: ``absorption/full_rate``: the parent's latent silent while the child's fires.
    full_rate: AbsorptionFigure
    #: ``absorption/gap_parents``: parents counted towards ``gap``.
    gap_parents: int
    #: ``absorption/rate_parents``: parents counted towards ``full_rate``.
    rate_parents: int
    #: ``absorption/near_rate``: the parent's latent silent while a near latent fires.
    near_rate: AbsorptionFigure | None = None
    #: ``absorption/fraction``: the share of the parent carried by other latents.
    fraction: AbsorptionFigure | None = None
    #: ``absorption/fraction_parents``: parents counted towards ``fraction``.
    fraction_parents: int | None = None
    #: ``absorption/edge_gap``: the per-edge absorption gap, mean over eligible edges.
    edge_gap: float | None = None
    #: ``absorption/eligible_edge_fraction``: share of the edges that are eligible.
    eligible_edge_fraction: float | None = None

    def flat(self) -> dict[str, float]:
        """The figures under their logged keys, in :meth:`AbsorptionAccumulator.metrics`'s order."""
        out: dict[str, float] = {}
        for name in _FIGURES:
            figure: AbsorptionFigure | None = getattr(self, name)
            if figure is not None:
                out[f"absorption/{name}"] = figure.overall
                out.update({f"absorption/{name}/depth_{d}": v for d, v in sorted(figure.by_depth.items())})
        for name in _PARENTS:
            if (count := getattr(self, name)) is not None:
                out[f"absorption/{name}"] = float(count)
        for name in _EDGES:
            if (value := getattr(self, name)) is not None:
                out[f"absorption/{name}"] = value
        return out

    @classmethod
    def from_flat(cls, flat: Mapping[str, float]) -> AbsorptionResult | None:
        """The ``absorption/…`` figures of ``flat`` (other keys ignored); None without the gap, the full
        rate and their counts of parents. A count of parents that is not a whole number is a
        ``ValueError`` naming its key."""
        figures: dict[str, AbsorptionFigure] = {}
        for name in _FIGURES:
            if f"absorption/{name}" in flat:
                pattern = re.compile(rf"absorption/{name}/depth_(-?\d+)")
                depths = {int(m[1]): v for k, v in flat.items() if (m := pattern.fullmatch(k))}
                figures[name] = AbsorptionFigure(flat[f"absorption/{name}"], depths)
        counts: dict[str, int] = {}
        for name in _PARENTS:
            if (key := f"absorption/{name}") in flat:
                if not float(flat[key]).is_integer():
                    raise ConfigError(f"{key} must be a whole number of parents, got {flat[key]!r}")
                counts[name] = int(flat[key])
        if not {"gap", "full_rate"} <= figures.keys() or not {"gap_parents", "rate_parents"} <= counts.keys():
            return None
        return cls(
            gap=figures["gap"],
            full_rate=figures["full_rate"],
            gap_parents=counts["gap_parents"],
            rate_parents=counts["rate_parents"],
            near_rate=figures.get("near_rate"),
            fraction=figures.get("fraction"),
            fraction_parents=counts.get("fraction_parents"),
            **{name: flat[f"absorption/{name}"] for name in _EDGES if f"absorption/{name}" in flat},
        )


@dataclass(frozen=True)
class EdgeAbsorption:
    """Per parent→child edge ``[E]`` (children grouped by parent, ascending): the features, the parent's
    MCC-matched latent (-1 if none), and the rows where the parent is active with the child
    (``with_child``) or without it (``without_child``), each with the rows where the parent's latent
    fires."""

    parent: npt.NDArray[np.int64]
    child: npt.NDArray[np.int64]
    parent_latent: npt.NDArray[np.int64]
    with_child: npt.NDArray[np.int64]
    with_child_fires: npt.NDArray[np.int64]
    without_child: npt.NDArray[np.int64]
    without_child_fires: npt.NDArray[np.int64]

    @property
    def eligible(self) -> npt.NDArray[np.bool_]:
        """bool ``[E]``: the parent has a matched latent and both denominators are > 0."""
        return (self.parent_latent >= 0) & (self.with_child > 0) & (self.without_child > 0)

    @property
    def eligible_edge_fraction(self) -> float:
        """Share of the edges that are eligible (0 without edges)."""
        return float(self.eligible.mean()) if len(self.parent) else 0.0

    def gaps(self) -> npt.NDArray[np.float64]:
        """float64 ``[E]``: without-child recall − with-child recall (NaN where not eligible)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = self.without_child_fires / self.without_child - self.with_child_fires / self.with_child
        return np.where(self.eligible, gap, np.nan)

    def records(self) -> list[dict[str, int | float | None]]:
        """One dict per edge: ``parent``, ``child``, ``parent_latent``,
        ``parent_without_child_recall``, ``parent_with_child_recall``, ``absorption_gap`` (None where
        unavailable: a zero denominator or no parent latent) and the four counts."""

        def ratio(num: int, den: int, matched: bool) -> float | None:
            return num / den if den > 0 and matched else None

        out: list[dict[str, int | float | None]] = []
        for e in range(len(self.parent)):
            matched = bool(self.parent_latent[e] >= 0)
            without = ratio(int(self.without_child_fires[e]), int(self.without_child[e]), matched)
            with_ = ratio(int(self.with_child_fires[e]), int(self.with_child[e]), matched)
            out.append(
                {
                    "parent": int(self.parent[e]),
                    "child": int(self.child[e]),
                    "parent_latent": int(self.parent_latent[e]),
                    "parent_without_child_recall": without,
                    "parent_with_child_recall": with_,
                    "absorption_gap": None if without is None or with_ is None else without - with_,
                    "without_child": int(self.without_child[e]),
                    "without_child_fires": int(self.without_child_fires[e]),
                    "with_child": int(self.with_child[e]),
                    "with_child_fires": int(self.with_child_fires[e]),
                }
            )
        return out


def feature_parents(hierarchy: Hierarchy | None, num_features: int) -> npt.NDArray[np.int64]:
    """int64 ``[N]``: each feature's parent feature in the forest, -1 for roots and free features."""
    return tree_positions(hierarchy, num_features)[0]


def parent_features(feature_parent: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """int64 ``[P]``, ascending: the features that are some feature's parent."""
    return np.unique(feature_parent[feature_parent >= 0]).astype(np.int64)


class NearParents(NamedTuple):
    """The ``|cos|`` entries of latents and parents at or above :data:`ABSORBER_THRESHOLD`: latent
    ``latents[e]`` and parent ``parents[ks[e]]`` (of :func:`parent_features`) have ``|cos|`` ``cos[e]``;
    ``[entries]`` each, in any order."""

    ks: npt.NDArray[np.int64]
    latents: npt.NDArray[np.int64]
    cos: npt.NDArray[np.float32]

    @classmethod
    def of(cls, parent_abs_cos: npt.NDArray[np.float32], first_latent: int = 0) -> NearParents:
        """The entries of ``parent_abs_cos`` ``[k, P]`` (latents ``first_latent …`` × parents)."""
        latents, ks = np.nonzero(parent_abs_cos >= ABSORBER_THRESHOLD)
        return cls(ks.astype(np.int64), latents.astype(np.int64) + first_latent, parent_abs_cos[latents, ks])

    @classmethod
    def concat(cls, parts: list[NearParents]) -> NearParents:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls._fields))


class AbsorptionAccumulator:
    """Streams the absorption counts of one evaluation.

    Args:
        near: the latents near each parent (:class:`NearParents`; candidate absorbers, and with
            |cos| ≥ :data:`NEAR_THRESHOLD` the near latents).
        effective_decoder: float32 ``[d_sae, D]`` what one unit of each latent adds to the
            reconstruction, ``decode(e_l) − decode(0)``.
        gt_features: float32 ``[N, D]`` the features' directions.
        feature_latent: int64 ``[N]`` each feature's MCC-matched latent (-1 if none).
        feature_parent: int64 ``[N]`` each feature's parent (-1 if none).
        feature_depth: int64 ``[N]`` each feature's depth (-1 if in no tree), for the per-depth figures.
    """

    def __init__(
        self,
        near: NearParents,
        effective_decoder: npt.NDArray[np.float32],
        gt_features: npt.NDArray[np.float32],
        feature_latent: npt.NDArray[np.int64],
        feature_parent: npt.NDArray[np.int64],
        feature_depth: npt.NDArray[np.int64],
    ) -> None:
        d_sae, num_features = len(effective_decoder), len(feature_parent)
        self.parents = parent_features(feature_parent)
        children = np.flatnonzero(feature_parent >= 0)
        child_features = children[np.argsort(feature_parent[children], kind="stable")].astype(np.int64)
        position = np.searchsorted(self.parents, feature_parent[child_features])
        counts = np.bincount(position, minlength=len(self.parents))
        self.child_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.depth = feature_depth[self.parents]
        self.parent_latent = feature_latent[self.parents]
        self.child_latent = feature_latent[child_features]
        self.child_features = child_features
        # coef(l, k) = u_l · w_p for parent k's unit direction w_p, in float64, where needed.
        w = gt_features[self.parents].astype(np.float64)
        w /= np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-30)
        u = effective_decoder.astype(np.float64)
        matched = self.parent_latent >= 0
        parent_coef = np.zeros(len(self.parents))
        parent_coef[matched] = np.einsum("ij,ij->i", u[self.parent_latent[matched]], w[matched])
        # Candidate absorbers: latents other than the parent's own, by parent then latent.
        other = near.latents != self.parent_latent[near.ks]
        ks, other_latents, cos = near.ks[other], near.latents[other], near.cos[other]
        order = np.lexsort((other_latents, ks))
        ks, other_latents, cos = ks[order], other_latents[order], cos[order]
        self._state = _core.AbsorptionState(
            num_features,
            d_sae,
            self.parents,
            self.parent_latent,
            parent_coef,
            self.child_ptr,
            child_features,
            self.child_latent,
            np.concatenate([[0], np.cumsum(np.bincount(ks, minlength=len(self.parents)))]).astype(np.int64),
            other_latents.astype(np.int64),
            np.einsum("ij,ij->i", u[other_latents], w[ks]),
            cos >= NEAR_THRESHOLD,
        )

    def add(self, latents: Csr, features: Csr) -> None:
        """Adds a batch: the latents' non-zeros and the features, as CSR ``(indptr, indices, values)``."""
        self._state.add(latents, features)

    def edges(self) -> EdgeAbsorption:
        """The per-edge counts so far."""
        counts = self._state.counts()
        per_parent = np.repeat(np.arange(len(self.parents)), np.diff(self.child_ptr))
        active = (counts["alone"] + counts["with_child"]).astype(np.int64)[per_parent]
        fires = (counts["alone_fires"] + counts["with_child_fires"]).astype(np.int64)[per_parent]
        both, both_fires = counts["both"].astype(np.int64), counts["both_fires"].astype(np.int64)
        return EdgeAbsorption(
            parent=self.parents[per_parent],
            child=self.child_features,
            parent_latent=self.parent_latent[per_parent],
            with_child=both,
            with_child_fires=both_fires,
            without_child=active - both,
            without_child_fires=fires - both_fires,
        )

    def metrics(self, min_rows: int = MIN_ROWS) -> dict[str, float]:
        """The ``absorption/…`` figures (definitions in :mod:`synthsae.evaluation.metrics`)."""
        counts = self._state.counts()
        alone, alone_fires = counts["alone"].astype(np.float64), counts["alone_fires"].astype(np.float64)
        with_child = counts["with_child"].astype(np.float64)
        with_child_fires = counts["with_child_fires"].astype(np.float64)
        starts = self.child_ptr[:-1]
        has_child_latent = (self.child_latent >= 0).astype(np.float64)

        def per_parent(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            return np.add.reduceat(v, starts) if len(v) else np.zeros(len(self.parents))

        matched = self.parent_latent >= 0
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = alone_fires / alone - with_child_fires / with_child
            both = counts["both"].astype(np.float64)
            both_matched = per_parent(both * has_child_latent)
            rate = per_parent(counts["absorbed"].astype(np.float64)) / both_matched
            both_all = per_parent(both)
            near = per_parent(counts["absorbed_near"].astype(np.float64)) / both_all
            fraction = counts["fraction"] / with_child
        figures = {
            "gap": (gap, matched & (alone >= min_rows) & (with_child >= min_rows)),
            "full_rate": (rate, matched & (both_matched >= min_rows)),
            "near_rate": (near, matched & (both_all >= min_rows)),
            "fraction": (fraction, matched & (with_child >= min_rows)),
        }
        out: dict[str, float] = {}
        for name, (values, counted) in figures.items():
            out[f"absorption/{name}"] = float(values[counted].mean()) if counted.any() else 0.0
            for d in sorted(set(self.depth.tolist())):
                at = counted & (self.depth == d)
                if at.any():
                    out[f"absorption/{name}/depth_{d}"] = float(values[at].mean())
        out["absorption/gap_parents"] = float(figures["gap"][1].sum())
        out["absorption/rate_parents"] = float(figures["full_rate"][1].sum())
        out["absorption/fraction_parents"] = float(figures["fraction"][1].sum())
        edges = self.edges()
        gaps = edges.gaps()[edges.eligible]
        out["absorption/edge_gap"] = float(gaps.mean()) if len(gaps) else 0.0
        out["absorption/eligible_edge_fraction"] = edges.eligible_edge_fraction
        return out
