"""Scoring an SAE against the ground truth of a world.

Every reported metric is defined once, in :mod:`synthsae.evaluation.metrics`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from synthsae import _core, threads
from synthsae._validate import as_bool, as_count, as_float_array, as_int, as_native, as_seed, to_numpy
from synthsae.errors import ConfigError, ConfigTypeError
from synthsae.evaluation.absorption import (
    AbsorptionAccumulator,
    AbsorptionResult,
    EdgeAbsorption,
    parent_features,
)
from synthsae.evaluation.assignment import unit_pair
from synthsae.evaluation.inputs import csr_arrays, dense_rows, latent_arrays
from synthsae.evaluation.matching import weight_side
from synthsae.evaluation.recovery import (
    BaselineResult,
    RecoveryResult,
    SplittingResult,
    probability_deciles,
    random_baseline,
    recovery_metrics,
    split_counts,
    split_latents,
    splitting_metrics,
    union_metrics,
)
from synthsae.world.hierarchy import tree_positions

if TYPE_CHECKING:
    from synthsae.world.model import World

_SCALARS = (
    "true_l0",
    "sae_l0",
    "dead_latents",
    "shrinkage",
    "explained_variance",
    "explained_variance_per_sample",
    "explained_variance_per_dimension",
    "mcc",
    "uniqueness",
)
#: EvalResult field → SAELens's ``classification/`` log key.
_CLASSIFICATION = {"precision": "precision", "recall": "recall", "f1": "f1_score", "accuracy": "accuracy"}
#: EvalResult field → ``matched_classification/`` log key (through the MCC matching; not SAELens's).
_MATCHED = {"matched_precision": "precision", "matched_recall": "recall", "matched_f1": "f1_score"}


#: EvalResult's per-edge absorption arrays (``edge_<name>`` for each :class:`EdgeAbsorption` count).
_EDGE_FIELDS = (
    "edge_parent",
    "edge_child",
    "edge_with_child",
    "edge_with_child_fires",
    "edge_without_child",
    "edge_without_child_fires",
)


#: dtype of each array field of EvalResult.
_ARRAY_DTYPES: dict[str, Any] = {
    **dict.fromkeys(
        ("latent_matched_feature", "latent_mcc_feature", "feature_mcc_latent", "feature_split_count"),
        np.int64,
    ),
    **dict.fromkeys(_EDGE_FIELDS, np.int64),
    **dict.fromkeys(("latent_abs_cos", "feature_best_abs_cos", "feature_mcc_abs_cos"), np.float32),
    **dict.fromkeys(
        ("latent_precision", "latent_recall", "latent_f1", "feature_mcc_precision", "feature_mcc_recall"),
        np.float64,
    ),
}
#: The integer scalar fields of EvalResult (the other scalars are floats).
_INT_FIELDS = ("num_samples", "dead_latents")


@dataclass(frozen=True, eq=False, kw_only=True)
class EvalResult:
    """Every metric of one evaluation (definitions in :mod:`synthsae.evaluation.metrics`).

    Per-latent arrays are ``[d_sae]``, per-feature arrays ``[N]``; an index of -1 means "unmatched".
    Fields with a default were added after the first release: a result read from an older writer's file
    (:meth:`from_dict`) holds None (``recovery``: the figures it has) where it lacks them. The figures
    of ``recovery`` also come typed: :attr:`feature_recovery`, :attr:`splitting`, :attr:`absorption` and
    :attr:`baseline`.
    """

    num_samples: int
    true_l0: float
    sae_l0: float
    dead_latents: int
    shrinkage: float
    explained_variance: float
    explained_variance_per_sample: float
    explained_variance_per_dimension: float
    mcc: float
    uniqueness: float
    precision: float
    recall: float
    f1: float
    accuracy: float
    matched_precision: float | None = None
    matched_recall: float | None = None
    matched_f1: float | None = None
    #: int64 ``[d_sae]``: best-|cos| feature of each latent (the one it is classified against).
    latent_matched_feature: npt.NDArray[np.int64]
    #: float32 ``[d_sae]``: that |cos|.
    latent_abs_cos: npt.NDArray[np.float32]
    latent_precision: npt.NDArray[np.float64]
    latent_recall: npt.NDArray[np.float64]
    latent_f1: npt.NDArray[np.float64]
    #: int64 ``[d_sae]``: the feature paired with each latent by the MCC matching (-1 if none).
    latent_mcc_feature: npt.NDArray[np.int64]
    #: float32 ``[N]``: best |cos| of each feature over all latents.
    feature_best_abs_cos: npt.NDArray[np.float32]
    #: int64 ``[N]``: the latent paired with each feature by the MCC matching (-1 if none).
    feature_mcc_latent: npt.NDArray[np.int64]
    #: float64 ``[N]``: precision and recall of that latent as a classifier of the feature (0 if none).
    feature_mcc_precision: npt.NDArray[np.float64] | None = None
    feature_mcc_recall: npt.NDArray[np.float64] | None = None
    #: float32 ``[N]``: |cos| of each feature with its MCC-matched latent (0 if none).
    feature_mcc_abs_cos: npt.NDArray[np.float32] | None = None
    #: int64 ``[N]``: latents whose best match is the feature at |cos| >= 0.5 (splitting).
    feature_split_count: npt.NDArray[np.int64] | None = None
    #: int64 ``[E]`` per parent→child edge of the hierarchy: the parent and child features, and the
    #: rows where the parent is active with / without the child, each with the rows where the parent's
    #: matched latent fires (typed: :attr:`edge_absorption`; None without a hierarchy).
    edge_parent: npt.NDArray[np.int64] | None = None
    edge_child: npt.NDArray[np.int64] | None = None
    edge_with_child: npt.NDArray[np.int64] | None = None
    edge_with_child_fires: npt.NDArray[np.int64] | None = None
    edge_without_child: npt.NDArray[np.int64] | None = None
    edge_without_child_fires: npt.NDArray[np.int64] | None = None
    #: ``recovery/…``, ``splitting/…``, ``absorption/…`` and (from :func:`evaluate`) ``baseline/…``
    #: figures, keyed as logged (``run.json``'s layout); typed by the properties below.
    recovery: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def feature_recovery(self) -> RecoveryResult | None:
        """``recovery/…``: recovery at |cos| thresholds, overall and by decile and depth (None without
        those figures)."""
        return RecoveryResult.from_flat(self.recovery)

    @property
    def splitting(self) -> SplittingResult | None:
        """``splitting/…``: features split over several latents (None without those figures)."""
        return SplittingResult.from_flat(self.recovery)

    @property
    def absorption(self) -> AbsorptionResult | None:
        """``absorption/…``: absorption on the world's hierarchy (None without one)."""
        return AbsorptionResult.from_flat(self.recovery)

    @property
    def edge_absorption(self) -> EdgeAbsorption | None:
        """Per-edge absorption (:class:`~synthsae.evaluation.absorption.EdgeAbsorption`; None without
        the edge arrays)."""
        arrays = [getattr(self, f) for f in _EDGE_FIELDS]
        if any(a is None for a in arrays):
            return None
        parent = arrays[0]
        latent = np.where(parent >= 0, self.feature_mcc_latent[parent], -1) if len(parent) else parent
        return EdgeAbsorption(
            parent=parent,
            child=arrays[1],
            parent_latent=latent.astype(np.int64),
            with_child=arrays[2],
            with_child_fires=arrays[3],
            without_child=arrays[4],
            without_child_fires=arrays[5],
        )

    @property
    def baseline(self) -> BaselineResult | None:
        """``baseline/…``: the chance level of a random dictionary (from :func:`evaluate`; else None)."""
        return BaselineResult.from_flat(self.recovery)

    def to_dict(self) -> dict[str, Any]:
        """Every field that is not None, arrays as lists (JSON-serialisable)."""
        return {
            f.name: v.tolist() if isinstance(v, np.ndarray) else v
            for f in dataclasses.fields(self)
            if (v := getattr(self, f.name)) is not None
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalResult:
        """The inverse of :meth:`to_dict` (arrays back to numpy in their dtypes), reading what any
        synthsae wrote: a field added since the writer's version is None (``recovery``: the figures it
        has), a key this version does not know is ignored. A field every writer records that is
        missing, or a value of the wrong type, is a ``ValueError`` naming the field."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"an EvalResult must be a dict of its fields, got {type(data).__name__}")
        fields = dataclasses.fields(cls)
        missing = [f.name for f in fields if _required(f) and f.name not in data]
        if missing:
            raise ConfigError(f"data lacks the EvalResult fields {missing}")
        values: dict[str, Any] = {
            f.name: _field_value(f.name, data[f.name])
            for f in fields
            if data.get(f.name) is not None or _required(f)
        }
        AbsorptionResult.from_flat(values.get("recovery", {}))  # its check of the counts, now not on use
        return cls(**values)

    def to_log_dict(self, prefix: str = "") -> dict[str, float]:
        """Scalar metrics under SAELens's log keys (``prefix + "mcc"``, ``prefix +
        "classification/f1_score"``, ...), plus the two extra explained-variance definitions."""
        out = {prefix + k: float(getattr(self, k)) for k in _SCALARS}
        out.update(
            {f"{prefix}classification/{v}": float(getattr(self, k)) for k, v in _CLASSIFICATION.items()}
        )
        out.update(
            {
                f"{prefix}matched_classification/{v}": float(x)
                for k, v in _MATCHED.items()
                if (x := getattr(self, k)) is not None
            }
        )
        out.update({prefix + k: v for k, v in self.recovery.items()})
        return out


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _required(f: dataclasses.Field[Any]) -> bool:
    """Whether every writer recorded EvalResult field ``f`` (it has no default)."""
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _field_value(name: str, v: Any) -> Any:
    """The value of EvalResult field ``name`` read from ``v`` (a JSON value); ValueError naming the field
    when it has the wrong type."""
    if name == "recovery":
        return _figures(v)
    dtype = _ARRAY_DTYPES.get(name)
    if dtype is None:
        if name in _INT_FIELDS:
            if not isinstance(v, int | np.integer) or isinstance(v, bool):
                raise ConfigError(f"EvalResult field {name!r} must be an integer, got {type(v).__name__}")
        elif not (_is_number(v) or isinstance(v, np.floating | np.integer)):
            raise ConfigError(f"EvalResult field {name!r} must be a number, got {type(v).__name__}")
        return v
    try:
        raw = np.asarray(v)
    except (TypeError, ValueError):
        raw = np.asarray(None)
    kinds = "iu" if np.dtype(dtype).kind in "iu" else "iuf"
    if raw.ndim != 1 or (raw.size and raw.dtype.kind not in kinds):
        what = "integers" if kinds == "iu" else "numbers"
        got = f"{raw.ndim}-D data" if raw.ndim > 1 else str(raw.dtype) if raw.ndim else type(v).__name__
        raise ConfigError(f"EvalResult field {name!r} must be a list of {what}, got {got}")
    return raw.astype(dtype)


def _figures(recovery: Any) -> dict[str, float]:
    """``recovery`` (the ``recovery`` of a result's dict) checked: a dict of numbers; ValueError naming
    the field or the key otherwise."""
    if not isinstance(recovery, Mapping):
        raise ConfigError(f"EvalResult field 'recovery' must be a dict, got {type(recovery).__name__}")
    for key, value in recovery.items():
        if not isinstance(key, str) or not _is_number(value):
            raise ConfigError(
                f"EvalResult field 'recovery' must map names to numbers; {key!r} is {type(value).__name__}"
            )
    return dict(recovery)


def _classification(
    tp: npt.NDArray[np.float64], fires: npt.NDArray[np.float64], feature_fires: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-pair precision TP/fires, recall TP/feature_fires and F1 (each 0 where undefined)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(fires > 0, tp / fires, 0.0)
        recall = np.where(feature_fires > 0, tp / feature_fires, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return precision, recall, f1


class EvalAccumulator:
    """Streams evaluation batches into every metric of :class:`EvalResult` (Rust reductions, GIL
    released; counts exact, float sums in float64 and bit-identical for any batch size).

    The weight-side metrics (|cos| matching, MCC, uniqueness) are computed once here, from
    ``decoder`` ``[d_sae, D]`` and ``gt_features`` ``[N, D]`` (numpy or torch on any device); the
    |cos| matrix is freed before the first batch.

    Args:
        mean: ``[D]`` reference mean of ``explained_variance_per_sample``; default: the mean of the
            first ``mean_rows`` rows added.
        firing_probabilities: ``[N]`` the world's firing probabilities (recovery by decile), or None.
        feature_depth: int ``[N]`` each feature's hierarchy depth, -1 = in no tree (recovery by depth;
            :func:`synthsae.evaluation.recovery.feature_depths`), or None.
        feature_parent: int ``[N]`` each feature's parent, -1 = none (absorption;
            :func:`synthsae.evaluation.absorption.feature_parents`), or None.
        effective_decoder: ``[d_sae, D]`` what one unit of each latent adds to the reconstruction,
            ``decode(e_l) − decode(0)`` (the absorption fraction's contributions); default ``decoder``
            (``x̂ = z·decoder + b``); :func:`effective_decoder` measures it from an SAE, as
            :func:`evaluate` does.
    """

    def __init__(
        self,
        decoder: Any,
        gt_features: Any,
        *,
        mean: Any = None,
        mean_rows: int = 8192,
        firing_probabilities: Any = None,
        feature_depth: Any = None,
        feature_parent: Any = None,
        effective_decoder: Any = None,
        streaming: bool | None = None,
        show_progress: bool = False,
    ) -> None:
        mean_rows = as_int("mean_rows", mean_rows, minimum=1)
        d, g = unit_pair(decoder, gt_features)
        (self.d_sae, self.hidden_dim), self.num_features = d.shape, g.shape[0]
        if mean is not None:
            mean = dense_rows(as_native("mean", mean).reshape(1, -1), "mean", self.hidden_dim)[0]
            mean = mean.astype(np.float64)
        depths = None if feature_depth is None else self._ints(feature_depth, "feature_depth")
        parents = None if feature_parent is None else self._ints(feature_parent, "feature_parent")
        side = weight_side(
            d,
            g,
            None if parents is None else parent_features(parents),
            streaming=streaming,
            show_progress=as_bool("show_progress", show_progress),
        )
        self.latent_matched_feature, self.latent_abs_cos = side.latent_matched_feature, side.latent_abs_cos
        self.feature_best_abs_cos = side.feature_best_abs_cos
        rows, cols, values = side.matching
        self.mcc = float(values.mean()) if len(rows) else 0.0
        self.latent_mcc_feature = np.full(self.d_sae, -1, dtype=np.int64)
        self.latent_mcc_feature[rows] = cols
        self.feature_mcc_latent = np.full(self.num_features, -1, dtype=np.int64)
        self.feature_mcc_latent[cols] = rows
        self.feature_mcc_abs_cos = np.zeros(self.num_features, dtype=np.float32)
        self.feature_mcc_abs_cos[cols] = values
        self._absorption = None
        if parents is not None:
            assert side.near_parents is not None
            depth = depths if depths is not None else np.full(self.num_features, -1, dtype=np.int64)
            u = decoder if effective_decoder is None else effective_decoder
            u = dense_rows(u, "effective_decoder", self.hidden_dim)
            if len(u) != self.d_sae:
                raise ConfigError(f"effective_decoder must have shape [{self.d_sae}, {self.hidden_dim}]")
            if not np.isfinite(u).all():
                raise ConfigError("effective_decoder must be finite (it holds NaN or inf)")
            w = dense_rows(gt_features, "gt_features", self.hidden_dim)
            self._absorption = AbsorptionAccumulator(
                side.near_parents, u, w, self.feature_mcc_latent, parents, depth
            )
        self.feature_split_count = split_counts(
            self.latent_matched_feature, self.latent_abs_cos, self.num_features
        )
        self.recovery = {
            **recovery_metrics(
                self.feature_best_abs_cos,
                self.feature_mcc_abs_cos,
                deciles=self._deciles(firing_probabilities),
                depths=depths,
            ),
            **splitting_metrics(self.feature_split_count),
        }
        matched = np.unique(self.latent_matched_feature)
        self.uniqueness = len(matched) / self.d_sae if self.d_sae and self.num_features else 0.0
        # Pairs scored in one pass: every latent against its argmax feature (SAELens's classification),
        # then the MCC matching's pairs. A latent without a feature (N = 0) never sees its feature fire;
        # it points at a dummy column.
        # The split features' latents (their argmax pairs) form one union per feature.
        best = np.maximum(self.latent_matched_feature, 0)
        self._matched = rows.astype(np.int64), cols.astype(np.int64)
        self._split_latents = split_latents(
            self.latent_matched_feature, self.latent_abs_cos, self.feature_split_count
        )
        self._state = _core.EvalState(
            self.hidden_dim,
            max(self.num_features, 1),
            self.d_sae,
            np.concatenate([np.arange(self.d_sae, dtype=np.int64), self._matched[0]]),
            np.concatenate([best, self._matched[1]]),
            self._split_latents,
            mean,
            mean_rows,
        )

    def _deciles(self, firing_probabilities: Any) -> npt.NDArray[np.int64] | None:
        if firing_probabilities is None:
            return None
        p = as_float_array("firing_probabilities", firing_probabilities, np.float64, 1)
        if p.shape != (self.num_features,):
            raise ConfigError(f"firing_probabilities must have shape ({self.num_features},), got {p.shape}")
        return probability_deciles(p)

    def _ints(self, value: Any, name: str) -> npt.NDArray[np.int64]:
        """An integer ``[N]`` per-feature array (depths or parents)."""
        arr = np.asarray(to_numpy(value))
        if not np.issubdtype(arr.dtype, np.integer):
            raise ConfigTypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
        if arr.shape != (self.num_features,):
            raise ConfigError(f"{name} must have shape ({self.num_features},), got {arr.shape}")
        return arr.astype(np.int64)

    def add_batch(self, hidden: Any, reconstruction: Any, latents: Any, features: Any) -> None:
        """Adds ``b`` rows: ``hidden``/``reconstruction`` ``[b, D]``, ``latents`` ``[b, d_sae]`` (dense or
        sparse; only z ≠ 0 matters) and ``features`` ``[b, N]`` (a SparseBatch or dense), as numpy or
        torch on any device."""
        x = dense_rows(hidden, "hidden", self.hidden_dim)
        y = dense_rows(reconstruction, "reconstruction", self.hidden_dim)
        z = latent_arrays(latents, self.d_sae)
        feats = csr_arrays(features, "features", self.num_features)
        b = len(x)
        for name, rows in (
            ("reconstruction", len(y)),
            ("latents", len(z[0]) - 1),
            ("features", len(feats[0]) - 1),
        ):
            if rows != b:
                raise ConfigError(f"{name} has {rows} rows but hidden has {b}")
        self._state.add(x, y, z, feats)
        if self._absorption is not None:
            self._absorption.add(z, feats)

    def _edge_arrays(self) -> dict[str, npt.NDArray[np.int64]]:
        """EvalResult's ``edge_…`` fields (none without a hierarchy)."""
        if self._absorption is None:
            return {}
        edges = self._absorption.edges()
        return {f"edge_{name}": getattr(edges, name) for name in (f[5:] for f in _EDGE_FIELDS)}

    def compute(self) -> EvalResult:
        """The metrics over every row added so far."""
        s = self._state.summary()
        n = s["rows"]
        fires = s["fires"].astype(np.float64)[: self.d_sae]
        tp, gt = s["true_positives"].astype(np.float64), s["feature_fires"].astype(np.float64)
        precision, recall, f1 = _classification(tp[: self.d_sae], fires, gt[: self.d_sae])
        accuracy = (n - fires - gt[: self.d_sae] + 2 * tp[: self.d_sae]) / max(n, 1e-8)
        rows, cols = self._matched
        m_precision, m_recall, m_f1 = _classification(tp[self.d_sae :], fires[rows], gt[self.d_sae :])
        feature_precision = np.zeros(self.num_features)
        feature_recall = np.zeros(self.num_features)
        feature_precision[cols], feature_recall[cols] = m_precision, m_recall
        mean = lambda v: float(v.mean()) if len(v) else 0.0  # noqa: E731
        split = self._split_latents
        unions = union_metrics(
            self.latent_matched_feature[split], s["union_hits"].astype(np.float64), tp[split], gt[split]
        )
        return EvalResult(
            num_samples=int(n),
            true_l0=s["true_l0"],
            sae_l0=s["sae_l0"],
            dead_latents=int(s["dead_latents"]),
            shrinkage=s["shrinkage"],
            explained_variance=s["explained_variance"],
            explained_variance_per_sample=s["explained_variance_per_sample"],
            explained_variance_per_dimension=s["explained_variance_per_dimension"],
            mcc=self.mcc,
            uniqueness=self.uniqueness,
            precision=mean(precision),
            recall=mean(recall),
            f1=mean(f1),
            accuracy=mean(accuracy),
            matched_precision=mean(m_precision),
            matched_recall=mean(m_recall),
            matched_f1=mean(m_f1),
            latent_matched_feature=self.latent_matched_feature,
            latent_abs_cos=self.latent_abs_cos,
            latent_precision=precision,
            latent_recall=recall,
            latent_f1=f1,
            latent_mcc_feature=self.latent_mcc_feature,
            feature_best_abs_cos=self.feature_best_abs_cos,
            feature_mcc_latent=self.feature_mcc_latent,
            feature_mcc_precision=feature_precision,
            feature_mcc_recall=feature_recall,
            feature_mcc_abs_cos=self.feature_mcc_abs_cos,
            feature_split_count=self.feature_split_count,
            **self._edge_arrays(),
            recovery={
                **self.recovery,
                **unions,
                **(self._absorption.metrics() if self._absorption else {}),
            },
        )


def _as_device(device: Any) -> Any:
    """``device`` as a ``torch.device`` that can hold tensors here (ValueError/TypeError naming it)."""
    import torch

    if isinstance(device, bool) or not isinstance(device, str | int | torch.device):
        raise ConfigTypeError(f"device must be a torch.device, str or int, got {type(device).__name__}")
    try:
        device = torch.device(device)
    except RuntimeError:
        raise ConfigError(
            f"device must name a torch device such as 'cpu' or 'cuda:0', got {device!r}"
        ) from None
    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as e:  # no such device here (torch asserts on a CPU-only build)
        raise ConfigError(f"device {str(device)!r} is not available: {e}") from None
    return device


def _nonfinite_rows(output: Any) -> list[int]:
    """The rows of an SAE output ``[b, ...]`` (torch, dense or sparse, or numpy) that hold NaN or inf;
    none for anything else (its shape and type are checked where it is used)."""
    import torch

    if isinstance(output, torch.Tensor):
        t = output.detach()
        if t.layout != torch.strided:
            t = t.to_dense()
        if t.ndim != 2 or not t.is_floating_point():
            return []
        # One pass for the usual case; a sum that overflows without a NaN or inf is looked at in full.
        suspect = (~torch.isfinite(t.sum(dim=1))).nonzero().squeeze(1)
        if len(suspect) == 0:
            return []
        bad = (~torch.isfinite(t.index_select(0, suspect))).any(dim=1)
        return [int(r) for r in suspect[bad].cpu()]
    if not isinstance(output, np.ndarray) or output.ndim != 2 or output.dtype.kind != "f":
        return []
    return [int(r) for r in np.flatnonzero(~np.isfinite(output).all(axis=1))]


def _rows_text(rows: list[int]) -> str:
    shown = ", ".join(map(str, rows[:5]))
    return shown + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")


def _check_finite(output: Any, what: str, batch: int, start: int, size: int) -> None:
    """ValueError if the SAE's ``output`` for batch ``batch`` (evaluation rows ``start ..
    start + size``) holds NaN or inf: ``what`` says which output, the message which rows."""
    rows = _nonfinite_rows(output)
    if rows:
        raise ConfigError(
            f"sae returned NaN/inf {what} in {len(rows)} of the {size} rows of batch {batch} (evaluation "
            f"rows {start}..{start + size - 1}): batch rows {_rows_text(rows)}"
        )


def _num_latents(w_dec: Any) -> int:
    """``d_sae`` of a ``[d_sae, D]`` decoder (0 for anything else: it is checked later)."""
    shape: tuple[int, ...] = tuple(getattr(w_dec, "shape", ()))
    return int(shape[0]) if len(shape) == 2 else 0


def evaluate(
    sae: Any,
    world: World,
    *,
    num_samples: int = 500_000,
    batch_size: int = 4096,
    seed: int = 0,
    device: Any = None,
    show_progress: bool = True,
    extended: bool = True,
    streaming: bool | None = None,
) -> EvalResult:
    """Scores ``sae`` on ``num_samples`` fresh rows of ``world`` (rows ``0 .. num_samples`` of stream
    ``seed``): any object with ``encode(x)``, ``decode(z)`` and ``W_dec`` ``[d_sae, D]``, SAELens SAEs
    included. Runs under ``torch.no_grad()`` in eval mode (the previous mode is restored) on
    ``device`` (default: the device of ``W_dec``), in the dtype of ``W_dec``. With ``extended`` (the
    default) recovery is broken down by the world's firing-probability deciles and hierarchy depths,
    absorption is counted on its hierarchy, and the chance level of a random dictionary of the same width
    joins ``recovery`` (:func:`synthsae.evaluation.recovery.random_baseline`, seed 0, cached per world and
    width);
    ``extended=False`` keeps SAELens's metrics, the matched classification and overall recovery.
    ``streaming`` (default: by size) scores the weights without the ``[d_sae, N]`` |cos| matrix
    (:func:`synthsae.mcc`), the random baseline too. An SAE that returns NaN or inf (latents from
    ``encode``, reconstructions from ``decode``) is a ``ValueError`` naming the output and the rows."""
    import torch
    from tqdm.auto import tqdm

    for attr in ("encode", "decode", "W_dec"):
        if not hasattr(sae, attr):
            raise ConfigTypeError(f"sae must have encode(x), decode(z) and W_dec; it has no {attr!r}")
    from synthsae.world.model import World

    if not isinstance(world, World):
        raise ConfigTypeError(
            f"world must be a synthsae.World, got {type(world).__name__} "
            "(for a preset: synthsae.World(synthsae.preset(name)))"
        )
    num_samples = as_count("num_samples", num_samples)  # rows 0 .. num_samples of the stream, streamed
    # A batch holds its hidden rows, reconstructions and dense latents (float32) at once.
    row_bytes = 4 * (2 * world.hidden_dim + _num_latents(sae.W_dec))
    batch_size = as_count("batch_size", batch_size, minimum=1, bytes_each=row_bytes, what="rows per batch")
    seed = as_seed(seed)
    extended = as_bool("extended", extended)
    device = None if device is None else _as_device(device)
    if not isinstance(sae.W_dec, torch.Tensor) or not sae.W_dec.is_floating_point():
        what = sae.W_dec.dtype if isinstance(sae.W_dec, torch.Tensor) else type(sae.W_dec).__name__
        raise ConfigTypeError(f"sae.W_dec must be a floating-point torch tensor [d_sae, D], got {what}")
    w_dec = sae.W_dec.detach()
    if w_dec.ndim != 2 or w_dec.shape[1] != world.hidden_dim:
        raise ConfigError(f"sae.W_dec must be [d_sae, {world.hidden_dim}], got {list(w_dec.shape)}")
    device = device if device is not None else w_dec.device
    by_world: dict[str, Any] = {}
    if extended:
        parent, depth = tree_positions(world.hierarchy, world.num_features)
        by_world = {
            "firing_probabilities": world.firing_probabilities,
            "feature_depth": depth,
            "feature_parent": parent,
        }
    was_training = getattr(sae, "training", False)
    if hasattr(sae, "eval"):
        sae.eval()
    try:
        if extended:
            units = by_world["effective_decoder"] = effective_decoder(sae)
            latents = _nonfinite_rows(units)
            if latents:
                raise ConfigError(
                    f"sae returned NaN/inf from decode for one unit of latent(s) {_rows_text(latents)} "
                    "(decode(e_l) - decode(0), each latent's contribution for the absorption metrics)"
                )
        acc = EvalAccumulator(
            w_dec, world.feature_vectors, **by_world, streaming=streaming, show_progress=show_progress
        )
        with (
            torch.no_grad(),
            threads.torch_threads(threads.sequential_threads() if device.type == "cpu" else None),
            tqdm(
                total=num_samples, unit="rows", desc="evaluate", disable=not show_progress, leave=False
            ) as bar,
        ):
            for batch, start in enumerate(range(0, num_samples, batch_size)):
                b = min(batch_size, num_samples - start)
                features = world.sample_features(b, seed=seed, start=start, num_threads=threads.budget())
                x = world.hidden_from_features(features, device=device, dtype=w_dec.dtype)
                z = sae.encode(x)
                _check_finite(z, "latents from encode", batch, start, b)
                x_hat = sae.decode(z)
                _check_finite(x_hat, "reconstructions from decode", batch, start, b)
                acc.add_batch(x, x_hat, z, features)
                bar.update(b)
    finally:
        if was_training and hasattr(sae, "train"):
            sae.train()
    result = acc.compute()
    if extended:
        chance = random_baseline(world, int(w_dec.shape[0]), streaming=streaming)
        result = dataclasses.replace(result, recovery={**result.recovery, **chance})
    return result


def effective_decoder(sae: Any, chunk: int = 1024) -> Any:
    """float32 CPU tensor ``[d_sae, D]``: ``decode(e_l) − decode(0)`` for every latent l, what one unit
    of it adds to the reconstruction (``W_dec`` for ``z·W_dec + b``, unit rows for the TopK family's
    rescaled decode); decoded ``chunk`` latents at a time on ``W_dec``'s device, in its dtype, without
    gradients. Pass it as ``EvalAccumulator(effective_decoder=...)``."""
    import torch

    chunk = as_int("chunk", chunk, minimum=1)
    d_sae, device, dtype = sae.W_dec.shape[0], sae.W_dec.device, sae.W_dec.dtype
    with torch.no_grad():
        zero = sae.decode(torch.zeros(1, d_sae, device=device, dtype=dtype))
        rows = []
        for lo in range(0, d_sae, chunk):
            n = min(chunk, d_sae - lo)
            eye = torch.zeros(n, d_sae, device=device, dtype=dtype)
            eye[torch.arange(n), lo + torch.arange(n)] = 1
            rows.append((sae.decode(eye) - zero).float().cpu())
    return torch.cat(rows) if rows else torch.zeros(0, zero.shape[-1])


class ReconstructionScore(NamedTuple):
    """``score`` = ratio of means, Σ(L_zero − L_recon) / Σ(L_zero − L_clean) (SAELens's
    ``ce_loss_score``); ``mean_of_ratios`` = mean over items of the per-item ratio (over items whose
    denominator is non-zero; NaN if none); ``per_item`` float64 ``[k]`` (NaN where L_zero = L_clean)."""

    score: float
    mean_of_ratios: float
    per_item: npt.NDArray[np.float64]


def reconstruction_score(
    loss_clean: Any, loss_reconstructed: Any, loss_zero_ablation: Any
) -> ReconstructionScore:
    """(L_zero − L_recon) / (L_zero − L_clean): the share of the loss gap that splicing in the SAE
    recovers (1 = perfect, 0 = as bad as zero ablation). Arguments are scalars or same-length
    sequences (numpy, torch or lists). Raises ``ValueError`` if Σ(L_zero − L_clean) = 0."""
    arrays = []
    for name, v in (
        ("loss_clean", loss_clean),
        ("loss_reconstructed", loss_reconstructed),
        ("loss_zero_ablation", loss_zero_ablation),
    ):
        if hasattr(v, "detach"):
            v = v.detach().cpu().double().numpy()
        try:
            a = np.atleast_1d(np.asarray(v, dtype=np.float64))
        except (TypeError, ValueError):
            raise ConfigTypeError(f"{name} must be numbers, got {type(v).__name__}") from None
        if a.ndim != 1 or not np.isfinite(a).all():
            raise ConfigError(f"{name} must be finite scalars or a 1-D sequence")
        arrays.append(a)
    clean, recon, zero = arrays
    if not len(clean) == len(recon) == len(zero) or len(clean) == 0:
        raise ConfigError(
            "loss_clean, loss_reconstructed and loss_zero_ablation must have the same, non-zero length"
        )
    gap = zero - clean
    total = gap.sum()
    if total == 0:
        raise ConfigError("loss_zero_ablation equals loss_clean: the score is undefined")
    with np.errstate(divide="ignore", invalid="ignore"):
        per_item = np.where(gap != 0, (zero - recon) / gap, math.nan)
    defined = per_item[gap != 0]
    return ReconstructionScore(
        float((zero - recon).sum() / total), float(defined.mean()) if len(defined) else math.nan, per_item
    )
