"""Per-feature firing probabilities, SAELens formulas (``sae_lens.synthetic.firing_probabilities``).

Each returns a float32 array ``[num_features]``, descending where the generator is ordered.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from synthsae import _core
from synthsae._validate import as_float, as_int


def zipfian_firing_probabilities(
    num_features: int, exponent: float = 1.0, max_prob: float = 0.3, min_prob: float = 0.01
) -> npt.NDArray[np.float32]:
    """``p_k ∝ k^-exponent`` rescaled so ``p_1 = max_prob`` and ``p_N = min_prob``; shape ``[N]``."""
    return _core.zipfian_firing_probabilities(
        as_int("num_features", num_features, minimum=1),
        as_float("exponent", exponent),
        as_float("max_prob", max_prob),
        as_float("min_prob", min_prob),
    )


def linear_firing_probabilities(
    num_features: int, max_prob: float = 0.3, min_prob: float = 0.01
) -> npt.NDArray[np.float32]:
    """Evenly spaced from ``max_prob`` down to ``min_prob`` (torch ``linspace``); shape ``[N]``."""
    return _core.linear_firing_probabilities(
        as_int("num_features", num_features, minimum=1),
        as_float("max_prob", max_prob),
        as_float("min_prob", min_prob),
    )


def constant_firing_probabilities(num_features: int, probability: float = 0.1) -> npt.NDArray[np.float32]:
    """The same probability for every feature; shape ``[N]``."""
    return _core.constant_firing_probabilities(
        as_int("num_features", num_features, minimum=1), as_float("probability", probability)
    )


def random_firing_probabilities(
    num_features: int, max_prob: float = 0.5, min_prob: float = 0.01, seed: int | None = None
) -> npt.NDArray[np.float32]:
    """``min_prob + (max_prob - min_prob) * U`` with U from torch's CPU generator; shape ``[N]``.

    Bit-identical to SAELens: ``seed=None`` uses a fresh unseeded ``torch.Generator`` (whose fixed
    default seed makes the result deterministic, as in SAELens). Imports torch.
    """
    import torch

    num_features = as_int("num_features", num_features, minimum=1)
    max_prob, min_prob = as_float("max_prob", max_prob), as_float("min_prob", min_prob)
    if not 0 < max_prob <= 1:
        raise ValueError(f"max_prob must be in (0, 1], got {max_prob}")
    if not 0 < min_prob < max_prob:
        raise ValueError(f"min_prob must be in (0, max_prob), got min_prob={min_prob}, max_prob={max_prob}")
    generator = torch.Generator()
    if seed is not None:
        generator.manual_seed(as_int("seed", seed, minimum=0, maximum=2**64 - 1))
    u = torch.rand(num_features, generator=generator)
    return (min_prob + (max_prob - min_prob) * u).numpy()
