"""synthsae: fast, exact, reproducible synthetic data for evaluating sparse autoencoders.

``import synthsae`` does not import torch; functions that need it import it when called. It sets
``OMP_WAIT_POLICY=PASSIVE`` unless that is set or torch is already loaded (see :mod:`synthsae.threads`).
"""

# First: sets OpenMP's waiting before anything can load torch.
from synthsae import errors, threads
from synthsae._core import RNG_ALGORITHM, __version__
from synthsae.datasets.generation import GenerateReport, generate
from synthsae.datasets.shards import VerifyReport, verify
from synthsae.datasets.stream import ActivationStream
from synthsae.errors import (
    ConfigError,
    ConfigTypeError,
    FileFormatError,
    ResourceError,
    SynthSAEError,
    UsageError,
)
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
from synthsae.kernels import apply_environment as _apply_kernel_environment
from synthsae.kernels import build_info, set_kernel
from synthsae.presets import PRESETS, preset, resolve_world
from synthsae.training.loop import TrainHistory, train, train_many
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
from synthsae.world.correlation import fix_correlation_matrix, low_rank_from_dense, random_correlation_matrix
from synthsae.world.firing import (
    constant_firing_probabilities,
    linear_firing_probabilities,
    random_firing_probabilities,
    zipfian_firing_probabilities,
)
from synthsae.world.hierarchy import Hierarchy, HierarchyNode
from synthsae.world.model import World
from synthsae.world.sampling import sample_independent
from synthsae.world.sparse import SparseBatch

__all__ = [
    "PRESETS",
    "RNG_ALGORITHM",
    "ActivationStream",
    "ConfigError",
    "ConfigTypeError",
    "ConstantFiringProbabilityConfig",
    "ConstantMagnitudeConfig",
    "EvalAccumulator",
    "EvalResult",
    "ExponentialMagnitudeConfig",
    "FileFormatError",
    "FoldedNormalMagnitudeConfig",
    "GenerateReport",
    "Hierarchy",
    "HierarchyConfig",
    "HierarchyNode",
    "LinearFiringProbabilityConfig",
    "LinearMagnitudeConfig",
    "LowRankCorrelationConfig",
    "Matching",
    "OrthogonalizationConfig",
    "RandomFiringProbabilityConfig",
    "ReconstructionScore",
    "ResourceError",
    "ShardDataset",
    "SparseBatch",
    "SynthSAEError",
    "TrainHistory",
    "UsageError",
    "VerifyReport",
    "World",
    "WorldConfig",
    "ZipfianFiringProbabilityConfig",
    "__version__",
    "abs_cos_matrix",
    "build_info",
    "constant_firing_probabilities",
    "errors",
    "evaluate",
    "feature_uniqueness",
    "fix_correlation_matrix",
    "generate",
    "linear_firing_probabilities",
    "linear_sum_assignment",
    "low_rank_from_dense",
    "mcc",
    "preset",
    "random_correlation_matrix",
    "random_firing_probabilities",
    "reconstruction_score",
    "resolve_world",
    "saes",
    "sample_independent",
    "set_kernel",
    "threads",
    "train",
    "train_many",
    "verify",
    "zipfian_firing_probabilities",
]

_apply_kernel_environment()


def __getattr__(name: str) -> object:
    """``synthsae.saes`` and ``synthsae.ShardDataset`` are imported on first use (they need torch)."""
    import importlib

    if name == "saes":
        return importlib.import_module("synthsae.saes")
    if name == "ShardDataset":
        return importlib.import_module("synthsae.datasets.reader").ShardDataset
    raise AttributeError(f"module 'synthsae' has no attribute {name!r}")
