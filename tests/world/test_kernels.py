"""The vector kernels: build_info, choosing a kernel, and the same bits from every kernel."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

import synthsae


@pytest.fixture
def restore_kernel() -> Iterator[None]:
    yield
    synthsae.set_kernel(None)


def test_build_info_names_the_build_and_the_kernel_in_use() -> None:
    info = synthsae.build_info()
    assert info["version"] == synthsae.__version__
    assert info["rng"] == synthsae.RNG_ALGORITHM
    assert info["kernels"][0] == "portable"
    assert info["kernel"] == info["kernels"][-1], "the widest kernel the CPU runs by default"
    assert "-" in info["target"]


def _digest(world: synthsae.World) -> str:
    batch = world.sample_features(3000, seed=5, start=17, num_threads=2)
    data = batch.indptr.tobytes() + batch.indices.tobytes() + batch.values.tobytes()
    return hashlib.sha256(data).hexdigest()


def test_every_kernel_gives_the_same_rows(restore_kernel: None) -> None:
    config = synthsae.preset("tiny")
    assert config.correlation is not None, "the copula's bounds kernel must be exercised"
    world = synthsae.World(config, show_progress=False)
    digests = {}
    for name in synthsae.build_info()["kernels"]:
        synthsae.set_kernel(name)
        assert synthsae.build_info()["kernel"] == name
        digests[name] = _digest(world)
    assert len(set(digests.values())) == 1, digests


def test_bad_kernels_are_refused(restore_kernel: None) -> None:
    before = synthsae.build_info()["kernel"]
    with pytest.raises(ValueError, match="unknown kernel"):
        synthsae.set_kernel("sse9")
    with pytest.raises(TypeError, match="name"):
        synthsae.set_kernel(2)  # type: ignore[arg-type]
    for name in {"portable", "avx2", "avx512", "avx512-vnni"} - set(synthsae.build_info()["kernels"]):
        with pytest.raises(ValueError, match="does not run"):
            synthsae.set_kernel(name)
    assert synthsae.build_info()["kernel"] == before


def _import_with(value: str) -> subprocess.CompletedProcess[str]:
    code = "import synthsae; print(synthsae.build_info()['kernel'])"
    env = {**os.environ, "SYNTHSAE_KERNEL": value}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_the_environment_variable_chooses_the_kernel() -> None:
    done = _import_with("portable")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "portable"
    bad = _import_with("fastest")
    assert bad.returncode != 0
    assert "SYNTHSAE_KERNEL" in bad.stderr
