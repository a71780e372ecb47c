"""Firing probabilities agree with SAELens's formulas (via the float32 torch oracle)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import synthsae
from synthsae import reference

# SAELens check values: zipfian(N=20, exponent=1, max=0.3, min=0.01), 6 decimals.
CHECK_VALUES = [
    0.3, 0.147368, 0.096491, 0.071053, 0.055789, 0.045614, 0.038346, 0.032895, 0.028655, 0.025263,
    0.022488, 0.020175, 0.018219, 0.016541, 0.015088, 0.013816, 0.012693, 0.011696, 0.010803, 0.01,
]  # fmt: skip


def test_zipfian_check_values():
    p = synthsae.zipfian_firing_probabilities(20)
    assert p.dtype == np.float32 and p.shape == (20,)
    np.testing.assert_allclose(p, CHECK_VALUES, rtol=0, atol=5e-7)


def test_zipfian_is_bit_identical_for_exponent_one():
    # Every float32 operation of SAELens's formula is exact-rounded when the power is k^1.
    for n in (1, 2, 20, 1000, 16384):
        np.testing.assert_array_equal(
            synthsae.zipfian_firing_probabilities(n), reference.zipfian_firing_probabilities(n).numpy()
        )


@given(
    n=st.integers(2, 50_000),
    exponent=st.floats(0.1, 3.0),
    max_prob=st.floats(0.05, 1.0),
    ratio=st.floats(1.5, 2000.0),
)
def test_zipfian_matches_saelens_to_float32_rounding(n, exponent, max_prob, ratio):
    # SAELens evaluates p = min + (max - min)(q_k - q_min)/(q_max - q_min) in float32 with torch's
    # ~1-ulp vectorised pow. Propagating one ulp of error in q_k and q_min plus the rounding of the
    # four float32 operations bounds |ours - SAELens| by 4 eps ((max - min)(q_k + q_min)/span + p).
    min_prob = max_prob / ratio
    ours = synthsae.zipfian_firing_probabilities(n, exponent, max_prob, min_prob).astype(np.float64)
    ref = reference.zipfian_firing_probabilities(n, exponent, max_prob, min_prob).numpy().astype(np.float64)
    q = np.arange(1, n + 1, dtype=np.float64) ** -np.float32(exponent)
    span = 1 - q[-1]
    eps = np.finfo(np.float32).eps
    bound = 4 * eps * ((max_prob - min_prob) * (q + q[-1]) / span + ref)
    assert np.all(np.abs(ours - ref) <= bound)


@pytest.mark.parametrize(
    ("n", "exponent", "max_prob", "min_prob"),
    # SynthSAEBench-16k and SAELens defaults. Ill-conditioned settings (e.g. N=4096, max/min=800)
    # reach ~1.4e-6 from torch's pow rounding alone; the float32 bound above covers those.
    [(16384, 0.5, 0.4, 5e-4), (16384, 1.0, 0.3, 0.01), (100, 1.0, 0.3, 0.01), (1000, 2.0, 0.3, 0.01)],
)
def test_zipfian_within_1e6_relative_on_presets(n, exponent, max_prob, min_prob):
    ours = synthsae.zipfian_firing_probabilities(n, exponent, max_prob, min_prob)
    ref = reference.zipfian_firing_probabilities(n, exponent, max_prob, min_prob).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=0)


def test_zipfian_16k_preset_l0(zipf_16k):
    assert abs(zipf_16k.astype(np.float64).sum() - 59.144) < 1e-3


@given(n=st.integers(1, 50_000), max_prob=st.floats(0.01, 1.0), frac=st.floats(0.0, 1.0))
def test_linear_matches_torch_linspace(n, max_prob, frac):
    min_prob = max(max_prob * frac, 1e-6)
    ours = synthsae.linear_firing_probabilities(n, max_prob, min_prob)
    ref = reference.linear_firing_probabilities(n, max_prob, min_prob).numpy()
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=2.5e-7, atol=0)  # torch's vector linspace: <= 1 ulp


def test_constant_and_random():
    np.testing.assert_array_equal(
        synthsae.constant_firing_probabilities(4, 0.25), np.full(4, 0.25, np.float32)
    )
    a = synthsae.random_firing_probabilities(1000, 0.5, 0.01, seed=3)
    assert a.dtype == np.float32 and a.min() >= 0.01 and a.max() <= 0.5
    np.testing.assert_array_equal(a, synthsae.random_firing_probabilities(1000, 0.5, 0.01, seed=3))
    assert not np.array_equal(a, synthsae.random_firing_probabilities(1000, 0.5, 0.01, seed=4))
    # seed=None is SAELens's fresh unseeded torch.Generator: deterministic.
    np.testing.assert_array_equal(
        synthsae.random_firing_probabilities(10), synthsae.random_firing_probabilities(10)
    )


@pytest.mark.parametrize(
    ("call", "exc", "name"),
    [
        (lambda: synthsae.zipfian_firing_probabilities(0), ValueError, "num_features"),
        (lambda: synthsae.zipfian_firing_probabilities(-3), ValueError, "num_features"),
        (lambda: synthsae.zipfian_firing_probabilities(2.5), TypeError, "num_features"),
        (lambda: synthsae.zipfian_firing_probabilities(10, exponent=0), ValueError, "exponent"),
        (lambda: synthsae.zipfian_firing_probabilities(10, exponent=float("nan")), ValueError, "exponent"),
        (lambda: synthsae.zipfian_firing_probabilities(10, exponent="1"), TypeError, "exponent"),
        (lambda: synthsae.zipfian_firing_probabilities(10, max_prob=1.2), ValueError, "max_prob"),
        (lambda: synthsae.zipfian_firing_probabilities(10, min_prob=0.3), ValueError, "min_prob"),
        (lambda: synthsae.zipfian_firing_probabilities(10, min_prob=0), ValueError, "min_prob"),
        (lambda: synthsae.linear_firing_probabilities(10, 0.2, 0.3), ValueError, "min_prob"),
        (lambda: synthsae.constant_firing_probabilities(10, 1.5), ValueError, "probability"),
        (lambda: synthsae.constant_firing_probabilities(True), TypeError, "num_features"),
        (lambda: synthsae.random_firing_probabilities(10, 0.5, 0.6), ValueError, "min_prob"),
        (lambda: synthsae.random_firing_probabilities(10, seed=-1), ValueError, "seed"),
    ],
)
def test_bad_arguments_name_the_argument(call, exc, name):
    with pytest.raises(exc, match=name):
        call()
