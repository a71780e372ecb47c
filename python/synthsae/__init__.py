"""synthsae: fast, exact, reproducible synthetic data for evaluating sparse autoencoders.

``import synthsae`` does not import torch; functions that need it import it when called.
"""

from synthsae._core import RNG_ALGORITHM, __version__
from synthsae.firing import (
    constant_firing_probabilities,
    linear_firing_probabilities,
    random_firing_probabilities,
    zipfian_firing_probabilities,
)
from synthsae.sampling import sample_independent
from synthsae.sparse import SparseBatch

__all__ = [
    "RNG_ALGORITHM",
    "SparseBatch",
    "__version__",
    "constant_firing_probabilities",
    "linear_firing_probabilities",
    "random_firing_probabilities",
    "sample_independent",
    "zipfian_firing_probabilities",
]
