"""Scoring an SAE against the ground truth.

:mod:`~synthsae.evaluation.scoring` (``evaluate``, ``EvalAccumulator``, ``EvalResult``) streams rows
through the SAE; :mod:`~synthsae.evaluation.inputs` turns its outputs into arrays; the weight side —
decoder-to-feature cosines, the certified assignment and MCC — is in
:mod:`~synthsae.evaluation.assignment` and :mod:`~synthsae.evaluation.matching`; per-feature recovery
and splitting in :mod:`~synthsae.evaluation.recovery`; hierarchy absorption in
:mod:`~synthsae.evaluation.absorption`.
"""

from synthsae.evaluation.assignment import (
    Matching,
    abs_cos_matrix,
    feature_uniqueness,
    linear_sum_assignment,
    mcc,
)
from synthsae.evaluation.scoring import (
    EvalAccumulator,
    EvalResult,
    ReconstructionScore,
    evaluate,
    reconstruction_score,
)

__all__ = [
    "EvalAccumulator",
    "EvalResult",
    "Matching",
    "ReconstructionScore",
    "abs_cos_matrix",
    "evaluate",
    "feature_uniqueness",
    "linear_sum_assignment",
    "mcc",
    "reconstruction_score",
]
