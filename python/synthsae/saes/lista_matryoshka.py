"""The "LISTA-Matryoshka" recipe: Matryoshka BatchTopK with the ingredients reported to lead
SynthSAEBench after the paper ("Letting Claude do Autonomous Research to Improve SAEs", LessWrong,
2026-03; code: chanind/claude-auto-research-synthsaebench), each one of the options of
:class:`~synthsae.saes.matryoshka.MatryoshkaBatchTopKSAE`, so that any can be turned off:

* one ISTA step after the first encoding with a learned step size (``ista_steps=1``,
  ``learn_step_size=True``; the LISTA-style refinement);
* K decreasing linearly from ``K_START_FACTOR · k`` to ``k`` over the first half of training
  (``k_start``, ``k_anneal_steps``; the bench sets the steps, ``create_sae`` without them keeps k fixed);
* inner levels detached (``detach_inner=True``) and levels by firing frequency
  (``sort_by_frequency=True``);
* the TERM loss at tilt :data:`TILT` (``term_tilt``).

Defaults for the CPU protocol (192 dimensions): the post's tilt 2e-3 is for the 16k world's rows (768
dimensions); a row's squared error scales with the dimension, so the tilt here is 4× larger, 8e-3, to
weight rows alike. The post's K start is not stated: 3·k here. Pass any option to change it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from synthsae.saes.batchtopk import batch_k
from synthsae.saes.matryoshka import MatryoshkaBatchTopKSAE, default_matryoshka_widths

#: TERM's tilt for the CPU protocol's rows (the post's 2e-3 at 768 dimensions, × 768 / 192).
TILT = 8e-3
#: Whether the tilt applies to the errors relative to the batch mean (``term_relative``).
TERM_RELATIVE = False
#: The ISTA step size (its start when learned).
ISTA_STEP_SIZE = 1.0
#: The refinement's form (``ista_form``).
ISTA_FORM = "ista"
#: K starts at this multiple of the target.
K_START_FACTOR = 3.0
#: The share of training over which K decreases.
K_ANNEAL_FRACTION = 0.5


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
            "learn_step_size": True,
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
        """K decreases over the first half of the run's ``steps``."""
        return {"k_anneal_steps": max(int(steps * K_ANNEAL_FRACTION), 1)}
