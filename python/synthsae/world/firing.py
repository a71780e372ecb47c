"""Per-feature firing probabilities, SAELens formulas (``sae_lens.synthetic.firing_probabilities``).

Each returns a float32 array ``[num_features]``, descending where the generator is ordered.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from synthsae import _core
from synthsae._validate import as_count, as_float, as_fraction, as_optional_seed, as_positive
from synthsae.errors import ConfigError


def check_probability_range(
    max_prob: float, min_prob: float, *, strict: bool, owner: str | None = None
) -> tuple[float, float]:
    """``(max_prob, min_prob)`` as floats, checked: ``max_prob`` in (0, 1], ``min_prob`` in
    ``(0, max_prob)`` (``(0, max_prob]`` unless ``strict``). ``owner`` prefixes the names in messages
    (``"zipfian"`` gives ``zipfian.max_prob``)."""
    prefix = f"{owner}." if owner else ""
    hi = as_fraction(f"{prefix}max_prob", max_prob)
    lo = as_positive(f"{prefix}min_prob", min_prob)
    if lo > hi or (strict and lo == hi):
        raise ConfigError(
            f"{prefix}min_prob must be {'<' if strict else '<='} max_prob, got min_prob={lo}, max_prob={hi}"
        )
    return hi, lo


def _num_features(value: Any) -> int:
    """A feature count whose probabilities (and one float32 scratch vector) fit in memory."""
    return as_count("num_features", value, minimum=1, bytes_each=8, what="firing probabilities")


def zipfian_firing_probabilities(
    num_features: int, exponent: float = 1.0, max_prob: float = 0.3, min_prob: float = 0.01
) -> npt.NDArray[np.float32]:
    """``p_k ∝ k^-exponent`` rescaled so ``p_1 = max_prob`` and ``p_N = min_prob``; shape ``[N]``."""
    return _core.zipfian_firing_probabilities(
        _num_features(num_features),
        as_float("exponent", exponent),
        as_float("max_prob", max_prob),
        as_float("min_prob", min_prob),
    )


def linear_firing_probabilities(
    num_features: int, max_prob: float = 0.3, min_prob: float = 0.01
) -> npt.NDArray[np.float32]:
    """Evenly spaced from ``max_prob`` down to ``min_prob`` (torch ``linspace``); shape ``[N]``."""
    return _core.linear_firing_probabilities(
        _num_features(num_features),
        as_float("max_prob", max_prob),
        as_float("min_prob", min_prob),
    )


def constant_firing_probabilities(num_features: int, probability: float = 0.1) -> npt.NDArray[np.float32]:
    """The same probability for every feature; shape ``[N]``."""
    return _core.constant_firing_probabilities(
        _num_features(num_features), as_float("probability", probability)
    )


def random_firing_probabilities(
    num_features: int, max_prob: float = 0.5, min_prob: float = 0.01, seed: int | None = None
) -> npt.NDArray[np.float32]:
    """``min_prob + (max_prob - min_prob) * U`` with U from torch's CPU generator; shape ``[N]``.

    Bit-identical to SAELens: ``seed=None`` uses a fresh unseeded ``torch.Generator`` (whose fixed
    default seed makes the result deterministic, as in SAELens). Imports torch.
    """
    import torch

    num_features = _num_features(num_features)
    max_prob, min_prob = check_probability_range(max_prob, min_prob, strict=True)
    seed = as_optional_seed(seed)
    generator = torch.Generator()
    if seed is not None:
        generator.manual_seed(seed)
    u = torch.rand(num_features, generator=generator)
    return (min_prob + (max_prob - min_prob) * u).numpy()
