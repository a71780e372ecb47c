"""The ground truth: a world's configuration, its firing model, hierarchy and correlation, the
dictionary, and exact sparse sampling.

Modules, in the order a world is built: :mod:`~synthsae.world.config` (``WorldConfig`` and its parts),
:mod:`~synthsae.world.firing` (firing probabilities), :mod:`~synthsae.world.hierarchy` (trees and
mutually exclusive siblings), :mod:`~synthsae.world.correlation` (the Gaussian copula's factor),
:mod:`~synthsae.world.model` (``World``: dictionary, orthogonalization, sampling),
:mod:`~synthsae.world.sampling` (the Rust sampler's entry points), :mod:`~synthsae.world.sparse`
(``SparseBatch``, the sampled rows) and :mod:`~synthsae.world.io` (SAELens's directory layout).
"""

from synthsae.world.config import (
    ConstantFiringProbabilityConfig,
    ConstantMagnitudeConfig,
    ExponentialMagnitudeConfig,
    FoldedNormalMagnitudeConfig,
    HierarchyConfig,
    LinearFiringProbabilityConfig,
    LinearMagnitudeConfig,
    LowRankCorrelationConfig,
    OrthogonalizationConfig,
    RandomFiringProbabilityConfig,
    WorldConfig,
    ZipfianFiringProbabilityConfig,
)
from synthsae.world.hierarchy import Hierarchy, HierarchyNode
from synthsae.world.model import World
from synthsae.world.sparse import SparseBatch

__all__ = [
    "ConstantFiringProbabilityConfig",
    "ConstantMagnitudeConfig",
    "ExponentialMagnitudeConfig",
    "FoldedNormalMagnitudeConfig",
    "Hierarchy",
    "HierarchyConfig",
    "HierarchyNode",
    "LinearFiringProbabilityConfig",
    "LinearMagnitudeConfig",
    "LowRankCorrelationConfig",
    "OrthogonalizationConfig",
    "RandomFiringProbabilityConfig",
    "SparseBatch",
    "World",
    "WorldConfig",
    "ZipfianFiringProbabilityConfig",
]
