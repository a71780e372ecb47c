"""Shared test helpers."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import synthsae

# Statistical tests use fixed examples (derandomize) so CI is deterministic.
settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile("default")


def pytest_report_header() -> str:
    """Which synthsae the session imports (``.ci/wheel`` checks it is the installed wheel)."""
    info = synthsae.build_info()
    return f"synthsae {info['version']} from {synthsae.__file__} (kernel {info['kernel']})"


def assert_csr_equal(a: synthsae.SparseBatch, b: synthsae.SparseBatch) -> None:
    assert a.shape == b.shape
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.values, b.values)


@pytest.fixture
def single_thread() -> Iterator[None]:
    """One intra-op torch thread for the test (tiny tensors: faster, immune to CPU contention)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def world() -> synthsae.World:
    """The ``tiny`` preset world, shared by the whole session (tests must not modify it)."""
    return synthsae.World(synthsae.preset("tiny"), show_progress=False)


@pytest.fixture
def zipf_16k() -> np.ndarray:
    """The SynthSAEBench-16k marginals: zipfian(16384, exponent 0.5, max 0.4, min 5e-4)."""
    return synthsae.zipfian_firing_probabilities(16384, 0.5, 0.4, 5e-4)
