"""The architectures by name, and building or loading an SAE by name.

Adding an architecture: write its module (a subclass of :class:`~synthsae.saes.base.SAE` with a unique
``architecture``), list the class in ``ARCHITECTURES`` below, and say in ``create_sae`` how an L0 maps
to its sparsity knob if it is not ``k = round(l0)``.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from synthsae._validate import as_positive
from synthsae.saes.base import SAE
from synthsae.saes.batchtopk import BatchTopKSAE
from synthsae.saes.jumprelu import JumpReLUSAE
from synthsae.saes.matching_pursuit import MatchingPursuitSAE
from synthsae.saes.matryoshka import MatryoshkaBatchTopKSAE, default_matryoshka_widths
from synthsae.saes.relu import ReLUSAE
from synthsae.saes.topk import TopKSAE

ARCHITECTURES: dict[str, type[SAE]] = {
    cls.architecture: cls
    for cls in (ReLUSAE, TopKSAE, BatchTopKSAE, JumpReLUSAE, MatryoshkaBatchTopKSAE, MatchingPursuitSAE)
}


def load_sae(path: str | os.PathLike[str], device: torch.device | str | None = None) -> SAE:
    """Loads any saved SAE, dispatching on ``cfg.json``'s ``"architecture"``."""
    return SAE.load(path, device=device)


def create_sae(architecture: str, d_in: int, d_sae: int, *, l0: float, **kwargs: Any) -> SAE:
    """Builds an SAE of ``architecture`` (a key of :data:`ARCHITECTURES`) aimed at L0 ``l0``.

    TopK and MP use ``k = round(l0)``; BatchTopK and Matryoshka use ``k = l0`` (fractional allowed;
    Matryoshka ``widths`` default to :func:`default_matryoshka_widths`); JumpReLU uses
    ``target_l0 = l0``. ReLU has no direct L0 knob — its L0 follows the L1 coefficient
    (``l1_coefficient``, default 2.0 as in the sweep); by default ``target_l0 = l0`` switches on the
    coefficient autotuner (pass ``target_l0=None`` to train with a fixed coefficient). Other keyword
    arguments go to the constructor.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {sorted(ARCHITECTURES)}, got {architecture!r}")
    l0 = as_positive("l0", l0)
    cls = ARCHITECTURES[architecture]
    if cls is ReLUSAE:
        l1_coefficient = kwargs.pop("l1_coefficient", 2.0)
        kwargs.setdefault("target_l0", l0)
        return ReLUSAE(d_in, d_sae, l1_coefficient, **kwargs)
    if cls is JumpReLUSAE:
        return JumpReLUSAE(d_in, d_sae, l0, **kwargs)
    if cls is MatryoshkaBatchTopKSAE:
        widths = kwargs.pop("widths", None)
        if widths is None:
            widths = default_matryoshka_widths(d_sae)
        return MatryoshkaBatchTopKSAE(d_in, d_sae, _batch_k(l0), widths, **kwargs)
    if cls is BatchTopKSAE:
        return BatchTopKSAE(d_in, d_sae, _batch_k(l0), **kwargs)
    k = round(l0)
    if k < 1:
        raise ValueError(f"l0 must round to a positive k for {architecture!r}, got {l0}")
    return cls(d_in, d_sae, k, **kwargs)  # type: ignore[call-arg]


def _batch_k(l0: float) -> float:
    """BatchTopK's ``k`` for ``l0``: an int when whole (as the sweep's configs write it)."""
    return int(l0) if l0.is_integer() else l0
