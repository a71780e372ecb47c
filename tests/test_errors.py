"""Bad input raises ValueError/TypeError naming the argument; nothing panics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import synthsae

P = np.full(8, 0.25)


def sample(**overrides):
    kwargs = dict(firing_probabilities=P, n=4, seed=0)
    kwargs.update(overrides)
    return synthsae.sample_independent(**kwargs)


@pytest.mark.parametrize(
    ("overrides", "exc", "name"),
    [
        ({"firing_probabilities": np.array([0.1, np.nan])}, ValueError, "firing_probabilities"),
        ({"firing_probabilities": np.array([0.1, np.inf])}, ValueError, "firing_probabilities"),
        ({"firing_probabilities": np.array([0.1, -0.01])}, ValueError, "firing_probabilities"),
        ({"firing_probabilities": np.array([0.1, 1.0001])}, ValueError, "firing_probabilities"),
        ({"firing_probabilities": np.array([1, 0])}, TypeError, "firing_probabilities"),
        ({"firing_probabilities": np.array([True])}, TypeError, "firing_probabilities"),
        ({"firing_probabilities": np.array([0.1 + 0j])}, TypeError, "firing_probabilities"),
        ({"firing_probabilities": np.array(["0.1"])}, TypeError, "firing_probabilities"),
        ({"firing_probabilities": None}, TypeError, "firing_probabilities"),
        ({"firing_probabilities": [[0.1], [0.2, 0.3]]}, TypeError, "firing_probabilities"),
        ({"firing_probabilities": np.full((2, 2), 0.1)}, ValueError, "firing_probabilities"),
        ({"firing_probabilities": np.float64(0.1)}, ValueError, "firing_probabilities"),
        ({"firing_probabilities": np.array([], dtype=np.float64)}, ValueError, "firing_probabilities"),
        ({"n": -1}, ValueError, "n"),
        ({"n": 2.0}, TypeError, "n"),
        ({"n": True}, TypeError, "n"),
        ({"n": "3"}, TypeError, "n"),
        ({"n": 2**63}, ValueError, "n"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 2**64}, ValueError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"seed": None}, TypeError, "seed"),
        ({"start": -5}, ValueError, "start"),
        ({"start": 2**63 - 2}, ValueError, "start"),
        ({"num_threads": 0}, ValueError, "num_threads"),
        ({"num_threads": 1.0}, TypeError, "num_threads"),
        ({"mean_magnitudes": np.ones(3)}, ValueError, "mean_magnitudes"),
        ({"mean_magnitudes": np.ones((8, 1))}, ValueError, "mean_magnitudes"),
        ({"mean_magnitudes": float("nan")}, ValueError, "mean_magnitudes"),
        ({"mean_magnitudes": 1e38, "std_magnitudes": 1e37}, ValueError, "mean_magnitudes"),
        ({"mean_magnitudes": "big"}, TypeError, "mean_magnitudes"),
        ({"std_magnitudes": -0.1}, ValueError, "std_magnitudes"),
        ({"std_magnitudes": float("inf")}, ValueError, "std_magnitudes"),
        ({"std_magnitudes": np.array([1, 2, 3, 4, 5, 6, 7, 8])}, TypeError, "std_magnitudes"),
    ],
)
def test_bad_input_names_the_argument(overrides, exc, name):
    with pytest.raises(exc, match=rf"\b{name}\b"):
        sample(**overrides)


def test_seed_is_keyword_only_and_required():
    with pytest.raises(TypeError):
        synthsae.sample_independent(P, 4, 0)  # type: ignore[misc]
    with pytest.raises(TypeError, match="seed"):
        synthsae.sample_independent(P, 4)  # type: ignore[call-arg]


def test_torch_tensor_on_other_dtype_is_checked():
    with pytest.raises(TypeError, match="firing_probabilities"):
        sample(firing_probabilities=torch.tensor([1, 0]))


anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=10).map(np.array),
    st.lists(st.integers(-3, 3), max_size=5),
)


@given(
    p=st.one_of(anything, st.lists(st.floats(-1, 2), min_size=1, max_size=10).map(np.array)),
    n=anything,
    seed=anything,
    start=anything,
    mean=anything,
    std=anything,
    threads=st.one_of(st.none(), anything),
)
def test_fuzzed_arguments_never_panic(p, n, seed, start, mean, std, threads):
    # A Rust panic would surface as pyo3's PanicException (a BaseException): only these may escape.
    try:
        synthsae.sample_independent(
            p, n, seed=seed, start=start, mean_magnitudes=mean, std_magnitudes=std, num_threads=threads
        )
    except (TypeError, ValueError):
        pass
