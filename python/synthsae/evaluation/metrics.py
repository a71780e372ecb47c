"""The metrics synthsae reports, defined once.

:data:`METRICS` lists every scalar an evaluation reports: the scalar fields of
:class:`~synthsae.evaluation.scoring.EvalResult` (``run.json``'s ``result``), the families of keys in its
``recovery`` dict (``recovery/…``, ``splitting/…``, ``absorption/…``, ``baseline/…``; ``τ`` is a |cos|
threshold in {0.5, 0.7, 0.9}, ``k`` a firing-probability decile 1–10 with 1 the rarest, ``d`` a depth in
the world's forest with 0 the roots) and what ``synthsae bench`` adds to each run. The documentation's
metric table is rendered from it.

Notation: ``x`` is the input with the bias, ``x̂`` the reconstruction, ``z`` the latents, ``a`` the
ground-truth activations; a feature is active when ``a > 0``, a latent fires when ``z ≠ 0``;
``s[l, j] = |cos(W_dec_l, W_gt_j)|``. Per-latent and per-feature arrays of
:class:`~synthsae.evaluation.scoring.EvalResult` are described on its fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Which way is better: a higher value, a lower one, or neither (a description, not a score).
Direction = Literal["higher", "lower", "none"]


@dataclass(frozen=True)
class Metric:
    """One reported metric."""

    #: Its key: an :class:`~synthsae.evaluation.scoring.EvalResult` field, a key (pattern) of its
    #: ``recovery`` dict, or a key of a bench run record.
    name: str
    #: Whether higher or lower is better, or ``"none"``.
    direction: Direction
    #: A one-line definition.
    definition: str
    #: Where the definition comes from.
    source: str
    #: Its column in ``synthsae bench``'s table, if it has one.
    column: str | None = None


SAELENS = "SAELens"
SAEBENCH = "SAEBench (Chanin et al. 2024)"
OWN = "synthsae"

METRICS: tuple[Metric, ...] = (
    # EvalResult scalars
    Metric("num_samples", "none", "rows evaluated", OWN),
    Metric("true_l0", "none", "mean over rows of #{i : a_i > 0}, the world's own L0", SAELENS),
    Metric(
        "sae_l0", "none", "mean over rows of #{l : z_l ≠ 0}; compare with the target L0", SAELENS, "SAE L0"
    ),
    Metric("dead_latents", "lower", "number of latents with z_l = 0 on every evaluated row", SAELENS, "dead"),
    Metric("shrinkage", "none", "mean ‖x̂‖ / ‖x‖ over rows with ‖x‖ > 1e-6 (1 = no shrinkage)", SAELENS),
    Metric(
        "explained_variance",
        "higher",
        "pooled R² (FVU_A): 1 − E‖x − x̂‖² / (E‖x‖² − ‖E x‖²) over all evaluated rows",
        SAELENS,
        "expl.var",
    ),
    Metric(
        "explained_variance_per_sample",
        "higher",
        "FVU_B: 1 − mean_n ‖x_n − x̂_n‖² / ‖x_n − μ‖², μ the mean of the first 8,192 rows (fixed: it streams)",
        "SAEBench (legacy), with a fixed mean",
    ),
    Metric(
        "explained_variance_per_dimension",
        "higher",
        "mean over dimensions of the per-dimension R² (sklearn's uniform_average)",
        "sklearn r2_score",
    ),
    Metric(
        "mcc",
        "higher",
        "mean |cos| over the min(d_sae, N) pairs of an optimal one-to-one latent-feature matching",
        "SAELens, the paper",
        "MCC",
    ),
    Metric(
        "uniqueness",
        "higher",
        "distinct best-|cos| features over latents, divided by d_sae",
        "SAELens, the paper",
        "unique",
    ),
    Metric(
        "precision",
        "higher",
        "each latent classifies its best-|cos| feature: mean over all latents of TP / (TP + FP)",
        SAELENS,
    ),
    Metric("recall", "higher", "the same classifiers: mean over all latents of TP / (TP + FN)", SAELENS),
    Metric(
        "f1",
        "higher",
        "the same classifiers: mean over all latents of 2PR / (P + R)",
        "SAELens, the paper",
        "F1",
    ),
    Metric("accuracy", "higher", "the same classifiers: mean over all latents of (TP + TN) / n", SAELENS),
    Metric(
        "matched_precision",
        "higher",
        "precision of each latent for the feature the MCC matching pairs it with, mean over matched pairs",
        OWN,
    ),
    Metric("matched_recall", "higher", "recall through the MCC matching, mean over matched pairs", OWN),
    Metric("matched_f1", "higher", "F1 through the MCC matching, mean over matched pairs", OWN, "mF1"),
    # EvalResult.recovery: recovery and its breakdowns
    Metric("recovery/best@τ", "higher", "fraction of features with max_l s[l, j] ≥ τ", OWN),
    Metric(
        "recovery/matched@τ",
        "higher",
        "fraction of features whose MCC-matched latent has s ≥ τ (0 without one, so ≤ d_sae/N)",
        OWN,
        "rec@.5, rec@.9",
    ),
    Metric(
        "recovery/{best,matched}@τ/decile_k",
        "higher",
        "the same within decile k of the world's firing probabilities (1 = rarest tenth)",
        OWN,
    ),
    Metric(
        "recovery/{best,matched}@τ/depth_d, …/free",
        "higher",
        "the same within the features at depth d of the forest (0 = roots), or in no tree",
        OWN,
    ),
    # splitting
    Metric(
        "splitting/split_fraction",
        "lower",
        "fraction of features that are the best match, at s ≥ 0.5, of two or more latents",
        "after Chanin et al. 2024",
    ),
    Metric(
        "splitting/latents_per_split_feature",
        "lower",
        "mean number of such latents over the split features (0 if none)",
        "after Chanin et al. 2024",
    ),
    Metric(
        "splitting/union_recall",
        "none",
        "over split features: recall of the union of their latents (any fires when the feature is active)",
        "after Chanin et al. 2024",
    ),
    Metric(
        "splitting/best_single_recall",
        "none",
        "over split features: recall of the best single latent among them (far below the union: split)",
        "after Chanin et al. 2024",
    ),
    # absorption
    Metric(
        "absorption/gap",
        "lower",
        "recall(ℓ_p | p active, no child active) − recall(ℓ_p | p and a child active), mean over parents",
        "synthsae (a hierarchy-conditioned gap)",
    ),
    Metric(
        "absorption/full_rate",
        "lower",
        "rows with p and a child c active: fraction where p's latent is silent while c's latent fires",
        SAEBENCH,
        "absorb",
    ),
    Metric(
        "absorption/near_rate",
        "lower",
        "the same rows: fraction where p's latent is silent while another latent with |cos| ≥ 0.5 to p fires",
        OWN,
    ),
    Metric(
        "absorption/fraction",
        "lower",
        "partial absorption: share of p's activation carried by up to 3 other latents near p's direction",
        "SAEBench absorption_fraction",
        "a.frac",
    ),
    Metric(
        "absorption/{gap,full_rate,near_rate,fraction}/depth_d",
        "lower",
        "the same over parents at depth d",
        OWN,
    ),
    Metric(
        "absorption/{gap,rate,fraction}_parents",
        "none",
        "parents counted (a matched latent and ≥ 20 rows in each condition the figure uses)",
        OWN,
    ),
    Metric(
        "absorption/edge_gap",
        "lower",
        "per parent→child edge: recall(ℓ_p | p active, c not) − recall(ℓ_p | p and c active), mean over "
        "eligible edges",
        "SAELens #729 (per-edge hierarchy absorption)",
    ),
    Metric(
        "absorption/eligible_edge_fraction",
        "none",
        "share of parent→child edges with a matched parent latent and rows both with and without the child",
        "SAELens #729",
        "edges",
    ),
    # chance level
    Metric("baseline/mcc", "none", "MCC of a random dictionary of the SAE's width: the chance level", OWN),
    Metric("baseline/recovery/{best,matched}@τ", "none", "recovery of that random dictionary", OWN),
    # bench run records (run.json)
    Metric(
        "decoder_rho_mm",
        "none",
        "mean over decoder rows of the max |cos| to any other decoder row (run.json)",
        OWN,
        "dec.ρmm",
    ),
)


def metric(name: str) -> Metric:
    """The metric named ``name`` (``KeyError`` if there is none)."""
    for m in METRICS:
        if m.name == name:
            return m
    raise KeyError(name)


def markdown_table() -> str:
    """:data:`METRICS` as a Markdown table (the documentation renders it)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    rows = ["| metric | better | definition | source | bench column |", "|---|---|---|---|---|"]
    for m in METRICS:
        column = f"`{m.column}`" if m.column else ""
        rows.append(
            f"| `{cell(m.name)}` | {m.direction} | {cell(m.definition)} | {cell(m.source)} | {cell(column)} |"
        )
    return "\n".join(rows) + "\n"
