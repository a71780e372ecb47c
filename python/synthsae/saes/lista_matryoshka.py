"""The "LISTA-Matryoshka" recipe: Matryoshka BatchTopK with the ingredients reported to lead
SynthSAEBench after the paper ("Letting Claude do Autonomous Research to Improve SAEs", LessWrong,
2026-03; code: chanind/claude-auto-research-synthsaebench), each one of the options of
:class:`~synthsae.saes.matryoshka.MatryoshkaBatchTopKSAE`, so that any can be turned off. The defaults
are those of the published code:

* one LISTA step after the first encoding (``ista_steps=1``, ``ista_form="lista"``: the residual
  through the encoder, added to the pre-activations) with the fixed step ``η = 0.3``
  (:data:`ISTA_STEP_SIZE`);
* K decreasing linearly from ``K_START_FACTOR · k`` to ``k`` over the whole run (the code's 60 → 25;
  ``k_start``, ``k_anneal_steps``; the bench sets the steps, ``create_sae`` without them keeps k fixed);
* inner levels detached (``detach_inner=True``) and levels by firing frequency
  (``sort_by_frequency=True``);
* TERM with the tilt relative to the batch's mean error (``term_relative=True``) at :data:`TILT`.

These are scale-free, so the CPU protocol uses them as they are. Not carried over: the code's
learning-rate decay over the last third of training (a bench protocol has one learning rate for all
its SAEs) and its inference form (per-step thresholds instead of BatchTopK's one).
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from synthsae.saes.batchtopk import batch_k
from synthsae.saes.matryoshka import MatryoshkaBatchTopKSAE, default_matryoshka_widths

#: TERM's tilt (relative to the batch's mean error, as the published code).
TILT = 2e-3
#: Whether the tilt applies to the errors relative to the batch mean (``term_relative``).
TERM_RELATIVE = True
#: The refinement step's size (fixed, as the published code).
ISTA_STEP_SIZE = 0.3
#: Whether the step size is learned (``learn_step_size``).
LEARN_STEP_SIZE = False
#: The refinement's form (``ista_form``).
ISTA_FORM = "lista"
#: K starts at this multiple of the target (the published code's 60 for k = 25).
K_START_FACTOR = 2.4
#: The share of training over which K decreases.
K_ANNEAL_FRACTION = 1.0


class LISTAMatryoshkaSAE(MatryoshkaBatchTopKSAE):
    """Matryoshka BatchTopK with the recipe's options on by default (see the module docstring)."""

    architecture: ClassVar[str] = "lista-matryoshka"
    direct_l0: ClassVar[bool] = True
    bench_rank: ClassVar[float] = 9

    @classmethod
    def from_l0(cls, d_in: int, d_sae: int, l0: float, **kwargs: Any) -> Self:
        """``k = l0``, the Matryoshka widths, and the recipe's options unless ``kwargs`` set them (the K
        schedule only with ``k_anneal_steps``)."""
        k = batch_k(l0)
        widths = kwargs.pop("widths", None) or default_matryoshka_widths(d_sae)
        options: dict[str, Any] = {
            "ista_steps": 1,
            "ista_step_size": ISTA_STEP_SIZE,
            "ista_form": ISTA_FORM,
            "learn_step_size": LEARN_STEP_SIZE,
            "detach_inner": True,
            "sort_by_frequency": True,
            "term_tilt": TILT,
            "term_relative": TERM_RELATIVE,
        }
        if kwargs.get("k_anneal_steps"):
            options["k_start"] = min(float(d_sae), K_START_FACTOR * float(k))
        options.update(kwargs)
        return cls(d_in, d_sae, k, widths, **options)

    @classmethod
    def bench_options(cls, steps: int, autotune_gain: float) -> dict[str, Any]:
        """K decreases over ``K_ANNEAL_FRACTION`` of the run's ``steps``."""
        return {"k_anneal_steps": max(int(steps * K_ANNEAL_FRACTION), 1)}
