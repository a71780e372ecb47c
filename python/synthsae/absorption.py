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

A parent counts towards a figure when it has a matched latent and at least ``min_rows`` (20) rows in each
condition the figure uses. Reported (``absorption/…``): the mean over counted parents, overall and by the
parent's depth (``…/depth_d``), and the number of parents counted (``absorption/gap_parents``,
``absorption/rate_parents``). The counts run in Rust in the evaluation's pass over the data
(``synthsae._core.AbsorptionState``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from synthsae import _core
from synthsae.hierarchy import tree_positions

if TYPE_CHECKING:
    from synthsae.hierarchy import Hierarchy

#: |cos| with the parent's direction that makes a latent "near" it.
NEAR_THRESHOLD = 0.5
#: Rows a parent needs in each condition of a figure to count towards it.
MIN_ROWS = 20


def feature_parents(hierarchy: Hierarchy | None, num_features: int) -> npt.NDArray[np.int64]:
    """int64 ``[N]``: each feature's parent feature in the forest, -1 for roots and free features."""
    return tree_positions(hierarchy, num_features)[0]


class AbsorptionAccumulator:
    """Streams the absorption counts of one evaluation.

    Args:
        abs_cos: float32 ``[d_sae, N]`` |cos| of decoder rows and features (for the near latents).
        feature_latent: int64 ``[N]`` each feature's MCC-matched latent (-1 if none).
        feature_parent: int64 ``[N]`` each feature's parent (-1 if none).
        feature_depth: int64 ``[N]`` each feature's depth (-1 if in no tree), for the per-depth figures.
    """

    def __init__(
        self,
        abs_cos: npt.NDArray[np.float32],
        feature_latent: npt.NDArray[np.int64],
        feature_parent: npt.NDArray[np.int64],
        feature_depth: npt.NDArray[np.int64],
    ) -> None:
        d_sae, num_features = abs_cos.shape
        children: dict[int, list[int]] = {}
        for child in np.flatnonzero(feature_parent >= 0).tolist():
            children.setdefault(int(feature_parent[child]), []).append(child)
        self.parents = np.array(sorted(children), dtype=np.int64)
        kids = [children[p] for p in self.parents.tolist()]
        self.child_ptr = np.concatenate([[0], np.cumsum([len(k) for k in kids])]).astype(np.int64)
        child_features = np.array([c for k in kids for c in k], dtype=np.int64)
        near = [
            [
                lat
                for lat in np.flatnonzero(abs_cos[:, p] >= NEAR_THRESHOLD).tolist()
                if lat != feature_latent[p]
            ]
            for p in self.parents.tolist()
        ]
        self.depth = feature_depth[self.parents]
        self.parent_latent = feature_latent[self.parents]
        self.child_latent = feature_latent[child_features]
        self._state = _core.AbsorptionState(
            num_features,
            d_sae,
            self.parents,
            self.parent_latent,
            self.child_ptr,
            child_features,
            self.child_latent,
            np.concatenate([[0], np.cumsum([len(n) for n in near])]).astype(np.int64),
            np.array([lat for n in near for lat in n], dtype=np.int64),
        )

    def add(self, latents: Any, feat_ptr: Any, feat_idx: Any, feat_val: Any) -> None:
        """Adds a batch: latents as for ``EvalState.add``, features as CSR arrays."""
        self._state.add(latents, feat_ptr, feat_idx, feat_val)

    def metrics(self, min_rows: int = MIN_ROWS) -> dict[str, float]:
        """The ``absorption/…`` figures (definitions in the module docstring)."""
        c = {k: v.astype(np.float64) for k, v in self._state.counts().items()}
        starts = self.child_ptr[:-1]
        has_child_latent = (self.child_latent >= 0).astype(np.float64)

        def per_parent(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            return np.add.reduceat(v, starts) if len(v) else np.zeros(len(self.parents))

        matched = self.parent_latent >= 0
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = c["alone_fires"] / c["alone"] - c["with_child_fires"] / c["with_child"]
            both_matched = per_parent(c["both"] * has_child_latent)
            rate = per_parent(c["absorbed"]) / both_matched
            both_all = per_parent(c["both"])
            near = per_parent(c["absorbed_near"]) / both_all
        figures = {
            "gap": (gap, matched & (c["alone"] >= min_rows) & (c["with_child"] >= min_rows)),
            "full_rate": (rate, matched & (both_matched >= min_rows)),
            "near_rate": (near, matched & (both_all >= min_rows)),
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
        return out
