"""Exact sparse sampling of independent features."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from synthsae import _core
from synthsae._validate import as_float_array, as_int, as_num_threads, as_per_feature, as_seed
from synthsae.errors import ConfigError
from synthsae.world.sparse import SparseBatch

_ROW_LIMIT = 2**63 - 1


def sample_independent(
    firing_probabilities: npt.ArrayLike,
    n: int,
    *,
    seed: int,
    start: int = 0,
    mean_magnitudes: float | npt.ArrayLike = 1.0,
    std_magnitudes: float | npt.ArrayLike = 0.0,
    num_threads: int | None = None,
) -> SparseBatch:
    """Samples rows ``start .. start + n`` of independently firing features.

    Feature ``i`` fires with probability ``firing_probabilities[i]``; a firing feature's value is
    ``relu(mean_i + std_i * N(0, 1))`` (SAELens semantics; entries that end up 0 are not stored).
    Work per row is proportional to the number of firing features, not N.

    Row ``r`` is a pure function of ``(seed, r)``: any ``start``/``n`` split and any ``num_threads``
    give bit-identical rows.

    Args:
        firing_probabilities: ``[N]`` floats in ``[0, 1]`` (numpy, torch or list).
        n: number of rows.
        seed: integer in ``[0, 2**64)``.
        start: global index of the first row.
        mean_magnitudes, std_magnitudes: scalars or ``[N]`` arrays (``std >= 0``).
        num_threads: worker threads; ``None`` uses all cores (or ``RAYON_NUM_THREADS``).

    Returns:
        SparseBatch of shape ``(n, N)``.
    """
    sampler = independent_sampler(firing_probabilities, mean_magnitudes, std_magnitudes)
    return sample_rows(sampler, n, seed=seed, start=start, num_threads=num_threads)


def independent_sampler(
    firing_probabilities: npt.ArrayLike,
    mean_magnitudes: float | npt.ArrayLike = 1.0,
    std_magnitudes: float | npt.ArrayLike = 0.0,
) -> _core.IndependentSampler:
    """Validates the distribution and builds its sampler (reusable across calls)."""
    p = as_float_array("firing_probabilities", firing_probabilities, np.float64, 1)
    if p.size == 0:
        raise ConfigError("firing_probabilities must have at least one feature (N >= 1)")
    n_features = p.shape[0]
    return _core.IndependentSampler(
        p,
        as_per_feature("mean_magnitudes", mean_magnitudes, n_features),
        as_per_feature("std_magnitudes", std_magnitudes, n_features),
    )


def sample_rows(
    sampler: Any, n: int, *, seed: int, start: int = 0, num_threads: int | None = None
) -> SparseBatch:
    """Rows ``start .. start + n`` of a core sampler as a SparseBatch."""
    n = as_int("n", n, minimum=0, maximum=_ROW_LIMIT)
    start = as_int("start", start, minimum=0, maximum=_ROW_LIMIT - n)
    indptr, indices, values = sampler.sample(as_seed(seed), start, n, as_num_threads(num_threads))
    return SparseBatch(indptr, indices, values, (n, sampler.num_features))
