"""Which ground-truth features an SAE recovers, where, and what chance would give.

Weight-side metrics, computed from the |cos| matching that
:class:`~synthsae.evaluation.scoring.EvalAccumulator` already makes (no pass over the data). With
``s[l, j] = |cos(W_dec_l, W_gt_j)|``:

- **Recovery at τ** (``recovery/best@τ``): the fraction of the N features with ``max_l s[l, j] ≥ τ`` (best
  match over all latents); ``recovery/matched@τ``: the fraction with ``s[m(j), j] ≥ τ`` for the latent
  ``m(j)`` the one-to-one MCC matching pairs with ``j`` (0 for a feature without one). τ ∈ {0.5, 0.7, 0.9}.
- **By firing probability**: the same fractions within each decile of the world's firing probabilities
  (``…/decile_1`` the rarest tenth, ``…/decile_10`` the most frequent; features ranked by probability, ties
  by index, decile ``⌊10·rank/N⌋ + 1``).
- **By hierarchy depth**: within the features at each depth of the world's forest (``…/depth_0`` roots,
  ``…/depth_1`` their children, ...) and ``…/free`` (features in no tree).
- **Splitting**: ``feature_split_count[j]`` = #{l : argmax_k s[l, k] = j and s[l, j] ≥ 0.5}, the latents
  whose best match is ``j`` at |cos| ≥ 0.5; ``splitting/split_fraction`` = the fraction of features with a
  count ≥ 2, ``splitting/latents_per_split_feature`` = the mean count over those features (0 if none).
  From the evaluated rows (counted in the evaluation's pass): ``splitting/union_recall`` = the mean over
  split features of the recall of the union of their latents (rows where the feature is active and any
  of them fires, over rows where it is active), ``splitting/best_single_recall`` = the same mean for the
  best single latent among them (0 where the feature never fires; both 0 with no split feature).
  Splitting as in Chanin et al. 2024 (arXiv 2409.14507), measured on the ground truth.
- **Chance level** (``baseline/…``, from :func:`random_baseline`): MCC and overall recovery of a random
  dictionary of the SAE's width (rows uniform on the unit sphere, seeded), so a reader sees what a
  dictionary that learned nothing scores.

Typed, as :class:`~synthsae.evaluation.scoring.EvalResult` offers them: :class:`RecoveryResult`,
:class:`SplittingResult` and :class:`BaselineResult` (each ``from_flat`` the logged keys and back with
``flat()``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from synthsae._validate import as_int, as_seed
from synthsae.evaluation.assignment import unit_pair
from synthsae.world.hierarchy import tree_positions

if TYPE_CHECKING:
    from synthsae.world.hierarchy import Hierarchy
    from synthsae.world.model import World

#: |cos| thresholds at which recovery is reported.
THRESHOLDS = (0.5, 0.7, 0.9)
#: |cos| a latent needs with its best feature to count towards that feature's split.
SPLIT_THRESHOLD = 0.5


@dataclass(frozen=True)
class RecoveryRates:
    """Shares of features recovered, per |cos| threshold τ (``{τ: share}``, τ ascending)."""

    #: ``recovery/best@τ``: share of the features whose best match over all latents has |cos| ≥ τ.
    best: dict[float, float] = field(default_factory=dict)
    #: ``recovery/matched@τ``: share whose MCC-matched latent has |cos| ≥ τ.
    matched: dict[float, float] = field(default_factory=dict)

    def thresholds(self) -> list[float]:
        """The thresholds that carry a share, ascending."""
        return sorted({*self.best, *self.matched})


@dataclass(frozen=True)
class RecoveryResult:
    """Recovery overall and by group (``recovery/…`` keys; groups absent where the world gave none)."""

    overall: RecoveryRates
    #: ``…/decile_k``: within each firing-probability decile (1 = rarest).
    by_decile: dict[int, RecoveryRates] = field(default_factory=dict)
    #: ``…/depth_d``: within each depth of the world's forest (0 = roots).
    by_depth: dict[int, RecoveryRates] = field(default_factory=dict)
    #: ``…/free``: within the features in no tree.
    free: RecoveryRates | None = None

    def _groups(self) -> list[tuple[str, RecoveryRates]]:
        return [
            ("", self.overall),
            *((f"/decile_{k}", r) for k, r in sorted(self.by_decile.items())),
            *((f"/depth_{d}", r) for d, r in sorted(self.by_depth.items())),
            *([("/free", self.free)] if self.free is not None else []),
        ]

    def flat(self, prefix: str = "recovery/") -> dict[str, float]:
        """The figures under their logged keys, in :func:`recovery_metrics`'s order."""
        groups = self._groups()
        thresholds = sorted({t for _, r in groups for t in r.thresholds()})
        out: dict[str, float] = {}
        for kind in ("best", "matched"):
            for t in thresholds:
                for suffix, rates in groups:
                    shares: dict[float, float] = getattr(rates, kind)
                    if t in shares:
                        out[f"{prefix}{kind}@{t}{suffix}"] = shares[t]
        return out

    @classmethod
    def from_flat(cls, flat: Mapping[str, float], prefix: str = "recovery/") -> RecoveryResult | None:
        """The figures of ``flat`` keyed ``prefix + "{best,matched}@τ[/group]"`` (other keys ignored);
        None when it holds none."""
        pattern = re.compile(
            re.escape(prefix) + r"(best|matched)@(\d+(?:\.\d+)?)(/decile_\d+|/depth_-?\d+|/free)?"
        )
        groups: dict[str, RecoveryRates] = {}
        for key, value in flat.items():
            m = pattern.fullmatch(key)
            if m:
                kind, t, group = m.groups()
                shares: dict[float, float] = getattr(groups.setdefault(group or "", RecoveryRates()), kind)
                shares[float(t)] = value
        if not groups:
            return None
        return cls(
            overall=groups.pop("", RecoveryRates()),
            by_decile={int(g[8:]): r for g, r in groups.items() if g.startswith("/decile_")},
            by_depth={int(g[7:]): r for g, r in groups.items() if g.startswith("/depth_")},
            free=groups.get("/free"),
        )


#: ``splitting/…`` figure → whether every writer recorded it (the union figures came later).
_SPLITTING = {
    "split_fraction": True,
    "latents_per_split_feature": True,
    "union_recall": False,
    "best_single_recall": False,
}


@dataclass(frozen=True)
class SplittingResult:
    """Splitting of features over several latents (``splitting/…`` keys; definitions in the module
    docstring). The union figures are None in a result whose writer did not record them."""

    split_fraction: float
    latents_per_split_feature: float
    union_recall: float | None = None
    best_single_recall: float | None = None

    def flat(self) -> dict[str, float]:
        """The figures under their logged keys."""
        return {f"splitting/{k}": v for k in _SPLITTING if (v := getattr(self, k)) is not None}

    @classmethod
    def from_flat(cls, flat: Mapping[str, float]) -> SplittingResult | None:
        """The ``splitting/…`` figures of ``flat`` (other keys ignored); None without the two counts'
        figures."""
        values = {k: flat[f"splitting/{k}"] for k in _SPLITTING if f"splitting/{k}" in flat}
        if not all(k in values for k, always in _SPLITTING.items() if always):
            return None
        return cls(**values)


@dataclass(frozen=True)
class BaselineResult:
    """The chance level: a random dictionary of the SAE's width (``baseline/…`` keys;
    :func:`random_baseline`)."""

    mcc: float
    recovery: RecoveryRates

    def flat(self) -> dict[str, float]:
        """The figures under their logged keys, in :func:`random_baseline`'s order."""
        return {"baseline/mcc": self.mcc, **RecoveryResult(self.recovery).flat("baseline/recovery/")}

    @classmethod
    def from_flat(cls, flat: Mapping[str, float]) -> BaselineResult | None:
        """The ``baseline/…`` figures of ``flat`` (other keys ignored); None without ``baseline/mcc``."""
        if "baseline/mcc" not in flat:
            return None
        recovery = RecoveryResult.from_flat(flat, "baseline/recovery/")
        return cls(flat["baseline/mcc"], recovery.overall if recovery is not None else RecoveryRates())


def feature_depths(hierarchy: Hierarchy | None, num_features: int) -> npt.NDArray[np.int64]:
    """int64 ``[N]``: each feature's depth in the forest (0 = root), -1 for features in no tree."""
    return tree_positions(hierarchy, num_features)[1]


def probability_deciles(firing_probabilities: Any) -> npt.NDArray[np.int64]:
    """int64 ``[N]`` in 1..10: the decile of each feature's firing probability (1 = rarest)."""
    p = np.asarray(firing_probabilities, dtype=np.float64).reshape(-1)
    rank = np.empty(len(p), dtype=np.int64)
    rank[np.argsort(p, kind="stable")] = np.arange(len(p))
    return rank * 10 // max(len(p), 1) + 1


def recovery_metrics(
    feature_best_abs_cos: npt.NDArray[np.floating],
    feature_mcc_abs_cos: npt.NDArray[np.floating],
    *,
    deciles: npt.NDArray[np.int64] | None = None,
    depths: npt.NDArray[np.int64] | None = None,
) -> dict[str, float]:
    """``recovery/{best,matched}@τ`` overall and per decile / depth (keys in
    :mod:`synthsae.evaluation.metrics`)."""
    out: dict[str, float] = {}
    groups: list[tuple[str, npt.NDArray[np.bool_]]] = []
    if deciles is not None:
        groups += [(f"/decile_{k}", deciles == k) for k in range(1, 11) if (deciles == k).any()]
    if depths is not None:
        groups += [(f"/depth_{d}", depths == d) for d in sorted(set(depths.tolist()) - {-1})]
        if (depths == -1).any():
            groups.append(("/free", depths == -1))
    for kind, values in (("best", feature_best_abs_cos), ("matched", feature_mcc_abs_cos)):
        for t in THRESHOLDS:
            hit = values >= t
            out[f"recovery/{kind}@{t}"] = float(hit.mean()) if len(hit) else 0.0
            for suffix, members in groups:
                out[f"recovery/{kind}@{t}{suffix}"] = float(hit[members].mean())
    return out


def split_counts(
    latent_matched_feature: npt.NDArray[np.int64], latent_abs_cos: npt.NDArray[np.floating], num_features: int
) -> npt.NDArray[np.int64]:
    """int64 ``[N]``: latents whose best match is the feature, at |cos| ≥ :data:`SPLIT_THRESHOLD`."""
    keep = (latent_abs_cos >= SPLIT_THRESHOLD) & (latent_matched_feature >= 0)
    return np.bincount(latent_matched_feature[keep], minlength=num_features).astype(np.int64)


def split_latents(
    latent_matched_feature: npt.NDArray[np.int64],
    latent_abs_cos: npt.NDArray[np.floating],
    counts: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    """int64, ascending: the latents counted by :func:`split_counts` for features with a count ≥ 2."""
    keep = (latent_abs_cos >= SPLIT_THRESHOLD) & (latent_matched_feature >= 0)
    if len(counts):
        keep &= counts[np.maximum(latent_matched_feature, 0)] >= 2
    return np.flatnonzero(keep).astype(np.int64)


def union_metrics(
    features: npt.NDArray[np.int64],
    union_hits: npt.NDArray[np.floating],
    true_positives: npt.NDArray[np.floating],
    feature_fires: npt.NDArray[np.floating],
) -> dict[str, float]:
    """``splitting/union_recall`` and ``splitting/best_single_recall`` (:mod:`synthsae.evaluation.metrics`)
    from, per
    split latent (``features`` its feature, ``true_positives`` and ``feature_fires`` its counts against
    it) and per split feature in ascending order (``union_hits``)."""
    groups, inverse = np.unique(features, return_inverse=True)
    if not len(groups):
        return {"splitting/union_recall": 0.0, "splitting/best_single_recall": 0.0}
    rows = np.zeros(len(groups))
    rows[inverse] = feature_fires
    best = np.zeros(len(groups))
    np.maximum.at(best, inverse, true_positives)
    with np.errstate(divide="ignore", invalid="ignore"):
        union = np.where(rows > 0, union_hits / rows, 0.0)
        single = np.where(rows > 0, best / rows, 0.0)
    return {
        "splitting/union_recall": float(union.mean()),
        "splitting/best_single_recall": float(single.mean()),
    }


def splitting_metrics(counts: npt.NDArray[np.int64]) -> dict[str, float]:
    """``splitting/split_fraction`` and ``splitting/latents_per_split_feature`` of split counts."""
    split = counts >= 2
    return {
        "splitting/split_fraction": float(split.mean()) if len(counts) else 0.0,
        "splitting/latents_per_split_feature": float(counts[split].mean()) if split.any() else 0.0,
    }


_BASELINES: dict[tuple[str, int, int], dict[str, float]] = {}


def random_baseline(
    world: World, width: int, seed: int = 0, *, streaming: bool | None = None
) -> dict[str, float]:
    """Chance level: ``baseline/mcc`` and ``baseline/recovery/{best,matched}@τ`` of a random dictionary
    of ``width`` unit rows (seeded normal rows, normalised) against ``world``'s features. Cached per
    (world fingerprint, width, seed); ``streaming`` as in :func:`synthsae.mcc`."""
    from synthsae.evaluation.matching import weight_side

    width, seed = as_int("width", width, minimum=1), as_seed(seed)
    key = (world.fingerprint(), width, seed)
    if key not in _BASELINES:
        rows = np.random.default_rng(seed).normal(size=(width, world.hidden_dim)).astype(np.float32)
        side = weight_side(*unit_pair(rows, world.feature_vectors), streaming=streaming)
        r, c, values = side.matching
        matched = np.zeros(world.num_features, dtype=np.float32)
        matched[c] = values
        recovery = recovery_metrics(side.feature_best_abs_cos, matched)
        _BASELINES[key] = {
            "baseline/mcc": float(values.mean()) if len(r) else 0.0,
            **{f"baseline/{k}": v for k, v in recovery.items()},
        }
    return dict(_BASELINES[key])
