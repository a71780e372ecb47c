"""Every public entry, fed numbers from the edges (0, negatives, NaN, ±inf, 2**31, 2**63, 2**64) and
wrong types, returns a valid result or raises ValueError/TypeError whose message starts with one of
its arguments' names (issue 24). 12 entries x 1,000 examples = 12,000 cases."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import synthsae

EDGES: list[Any] = [
    0,
    1,
    3,
    -1,
    2**31,
    2**63,
    2**64,
    0.5,
    -0.5,
    1.5,
    math.nan,
    math.inf,
    -math.inf,
    True,
    None,
    "x",
]
edge = st.sampled_from(EDGES)
# Row counts that are either small or refused at once (2**31 rows would really be sampled).
rows = st.sampled_from([0, 1, 7, -1, 2**63, 2**64, 1.5, math.nan, True, None, "x"])
vectors = st.sampled_from(
    [
        np.full(6, 0.2),
        np.array([0.1, math.nan]),
        np.array([0.5, math.inf]),
        np.array([-0.1, 0.2]),
        np.array([1.0, 1.5]),
        np.array([], dtype=np.float64),
        np.ones((2, 3)),
        np.array([1, 0]),
        np.array(["a"]),
        np.full(6, 0.2, dtype=np.float16),
        [0.1, 0.2],
        None,
        0.3,
    ]
)
matrices = st.sampled_from(
    [
        np.eye(4, 3, dtype=np.float32),
        np.full((3, 3), math.nan),
        np.full((2, 3), math.inf),
        np.full((2, 3), -math.inf),
        np.zeros((0, 3)),
        np.zeros((3, 0)),
        np.ones(3),
        np.ones((2, 2, 2)),
        np.array([["a", "b"]]),
        np.arange(6, dtype=np.int8).reshape(2, 3),
        np.ones((3, 3), dtype=np.complex64),
        np.ones((3, 3), dtype=np.bool_),
        [[1.0, 2.0], [3.0]],
        None,
    ]
)

WORLD = synthsae.World(synthsae.preset("tiny"), show_progress=False)


def _entries() -> dict[str, tuple[Callable[..., Any], dict[str, Any]]]:
    return {
        "sample_independent": (
            lambda **k: synthsae.sample_independent(**k),
            dict(
                firing_probabilities=vectors, n=rows, seed=edge, start=edge, mean_magnitudes=edge,
                std_magnitudes=edge, num_threads=st.sampled_from([None, 1, 0, -1, 2**64, 1.5]),
            ),
        ),
        "zipfian": (
            lambda **k: synthsae.zipfian_firing_probabilities(**k),
            dict(num_features=rows, exponent=edge, max_prob=edge, min_prob=edge),
        ),
        "linear": (
            lambda **k: synthsae.linear_firing_probabilities(**k),
            dict(num_features=rows, max_prob=edge, min_prob=edge),
        ),
        "constant": (
            lambda **k: synthsae.constant_firing_probabilities(**k),
            dict(num_features=rows, probability=edge),
        ),
        "random": (
            lambda **k: synthsae.random_firing_probabilities(**k),
            dict(num_features=rows, max_prob=edge, min_prob=edge, seed=edge),
        ),
        "linear_sum_assignment": (
            lambda **k: synthsae.linear_sum_assignment(**k),
            dict(cost_matrix=matrices, maximize=edge),
        ),
        "mcc": (lambda **k: synthsae.mcc(**k), dict(decoder=matrices, gt_features=matrices)),
        "feature_uniqueness": (
            lambda **k: synthsae.feature_uniqueness(**k),
            dict(decoder=matrices, gt_features=matrices),
        ),
        "sample_features": (
            lambda **k: WORLD.sample_features(**k),
            dict(n=rows, seed=edge, start=edge),
        ),
        "sample": (lambda **k: WORLD.sample(**k), dict(n=rows, seed=edge, start=edge)),
        "random_correlation_matrix": (
            lambda **k: synthsae.random_correlation_matrix(**k),
            dict(
                num_features=st.sampled_from([0, 1, 4, -1, 2**64, 1.5, None]),
                positive_ratio=edge, uncorrelated_ratio=edge, seed=edge,
            ),
        ),
        "stream": (
            lambda **k: synthsae.ActivationStream(WORLD, **k),
            dict(batch_size=rows, seed=edge, prefetch=edge, start_batch=edge),
        ),
    }  # fmt: skip


@pytest.mark.parametrize("entry", sorted(_entries()))
def test_every_entry_returns_or_names_an_argument(entry):
    call, arguments = _entries()[entry]
    pattern = re.compile(rf"^({'|'.join(map(re.escape, arguments))}|cost matrix is infeasible)\b")

    @settings(max_examples=1000, derandomize=True, deadline=None)
    @given(st.fixed_dictionaries(arguments))
    def check(kwargs: dict[str, Any]) -> None:
        try:
            call(**kwargs)
        except (ValueError, TypeError) as e:
            assert pattern.match(str(e)), f"{type(e).__name__} does not name an argument: {e!r}"

    check()
