"""Sparse autoencoder architectures for SynthSAEBench (torch ``nn.Module``\\ s, SAELens conventions).

One module per architecture, on a shared base (SAELens's ``sae_lens/saes/`` layout); each registers
itself by name when its class is defined:

* :mod:`~synthsae.saes.base` — :class:`SAE` (parameters, decoding, training protocol, ``save``/``load``,
  registration), :class:`TrainOutput`, the MSE, :func:`load_sae`;
* :mod:`~synthsae.saes.autotuner` — :class:`L0Autotuner`, the sweep's L0 controller;
* :mod:`~synthsae.saes.relu` (``"relu"``), :mod:`~synthsae.saes.jumprelu` (``"jumprelu"``),
  :mod:`~synthsae.saes.matching_pursuit` (``"mp"``), :mod:`~synthsae.saes.gated` (``"gated"``),
  :mod:`~synthsae.saes.abstopk` (``"abstopk"``);
* :mod:`~synthsae.saes.topk_family` — decoder-norm rescaling, the training step and AuxK shared by
  :mod:`~synthsae.saes.topk` (``"topk"``), :mod:`~synthsae.saes.batchtopk` (``"batchtopk"``) and
  :mod:`~synthsae.saes.matryoshka` (``"matryoshka"``), and the recipe
  :mod:`~synthsae.saes.lista_matryoshka` (``"lista-matryoshka"``);
* :mod:`~synthsae.saes.registry` — :data:`ARCHITECTURES` (every registered architecture, built-in or a
  user's), :func:`create_sae`;
* :mod:`~synthsae.saes.refinement` — leave-one-out refinement of any SAE's latents at inference.

Each module's docstring states its architecture's encoder and loss. The defaults follow SAELens 6.54.12
and the SynthSAEBench sweep (``decoderesearch/synth-sae-bench-experiments``): decoder init norm 0.1
(SAELens's ``TrainingSAEConfig`` default) for ReLU and the TopK family, 0.5 for JumpReLU (sweep recipe),
1.0 for MP (SAELens forces it), 0.1 for Gated and AbsTopK (SAELens's default).
"""

from __future__ import annotations

from synthsae.saes.abstopk import AbsTopKSAE
from synthsae.saes.autotuner import L0Autotuner
from synthsae.saes.base import SAE, TrainOutput, batch_l0, load_sae, mse
from synthsae.saes.batchtopk import BatchTopKSAE
from synthsae.saes.gated import GatedSAE
from synthsae.saes.jumprelu import JumpReLUSAE
from synthsae.saes.lista_matryoshka import LISTAMatryoshkaSAE
from synthsae.saes.matching_pursuit import MatchingPursuitSAE, matching_pursuit
from synthsae.saes.matryoshka import MatryoshkaBatchTopKSAE, default_matryoshka_widths
from synthsae.saes.refinement import LeaveOneOutRefined, leave_one_out_refine
from synthsae.saes.registry import ARCHITECTURES, create_sae
from synthsae.saes.relu import ReLUSAE
from synthsae.saes.topk import TopKSAE
from synthsae.saes.topk_family import TopKFamilySAE

__all__ = [
    "ARCHITECTURES",
    "SAE",
    "AbsTopKSAE",
    "BatchTopKSAE",
    "GatedSAE",
    "JumpReLUSAE",
    "L0Autotuner",
    "LISTAMatryoshkaSAE",
    "LeaveOneOutRefined",
    "MatchingPursuitSAE",
    "MatryoshkaBatchTopKSAE",
    "ReLUSAE",
    "TopKFamilySAE",
    "TopKSAE",
    "TrainOutput",
    "batch_l0",
    "create_sae",
    "default_matryoshka_widths",
    "leave_one_out_refine",
    "load_sae",
    "matching_pursuit",
    "mse",
]
