"""World: SAELens files and builds, persistence, sampling exactness, hierarchy invariants.

Statistical checks are 5-sigma bounds with fixed seeds (see test_sampling.py for the conventions).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import synthsae
from synthsae import reference
from synthsae.world.config import HierarchyConfig, LowRankCorrelationConfig, WorldConfig
from tests.conftest import assert_csr_equal
from tests.world.test_config import PRESET_16K

DATA = Path(__file__).parents[1] / "data"
SAELENS_WORLD = DATA / "saelens_world"
FIXTURES = json.loads((DATA / "saelens_fixtures.json").read_text())
Z = 5.0

pytestmark = pytest.mark.filterwarnings("ignore:.*regenerating:UserWarning")


@pytest.fixture(scope="module")
def saelens_world() -> synthsae.World:
    return synthsae.World.load(SAELENS_WORLD)


def reference_sample(world: synthsae.World, n: int, seed: int) -> torch.Tensor:
    """Dense [n, N] rows from SAELens's algorithm (reference.sample_world is bit-identical to it)."""
    return reference.sample_world(
        n,
        firing_probabilities=world.firing_probabilities,
        generator=torch.Generator().manual_seed(seed),
        mean_magnitudes=world.mean_magnitudes,
        std_magnitudes=world.std_magnitudes,
        correlation_factor=world.correlation_factor,
        correlation_diag=world.correlation_diag,
        hierarchy=None if world.hierarchy is None else world.hierarchy.to_dict(),
    )


def hierarchy_violations(world: synthsae.World, batch: synthsae.SparseBatch) -> int:
    """Rows with an active gated feature whose gate is inactive, or > 1 active in an exclusive group."""
    if world.hierarchy is None:
        return 0
    active = batch.to_dense() > 0
    groups = world.hierarchy.groups(world.num_features)
    bad = np.zeros(len(batch), dtype=bool)
    for g in range(len(groups.gate)):
        members = groups.members[groups.ptr[g] : groups.ptr[g + 1]]
        on = active[:, members]
        if groups.gate[g] >= 0:
            bad |= on.any(1) & ~active[:, groups.gate[g]]
        if groups.exclusive[g]:
            bad |= on.sum(1) > 1
    return int(bad.sum())


def test_saelens_world_loads_with_its_tensors(saelens_world):
    w = saelens_world
    assert w.config.to_dict() == json.loads((SAELENS_WORLD / "synthetic_model_config.json").read_text())
    assert w.hierarchy.to_dict() == json.loads((SAELENS_WORLD / "hierarchy.json").read_text())
    np.testing.assert_array_equal(w.mean_magnitudes.numpy(), np.float32(FIXTURES["world_magnitudes"]["mean"]))
    np.testing.assert_array_equal(w.std_magnitudes.numpy(), np.float32(FIXTURES["world_magnitudes"]["std"]))
    assert w.feature_vectors.shape == (60, 8) and w.correlation_factor.shape == (60, 4)


def test_cpu_build_matches_saelens_build(saelens_world):
    ours = synthsae.World(saelens_world.config, show_progress=False)
    for name in ("feature_vectors", "bias", "correlation_factor", "correlation_diag", "mean_magnitudes"):
        assert torch.equal(getattr(ours, name), getattr(saelens_world, name)), name
    assert ours.hierarchy == saelens_world.hierarchy
    # Zipf probabilities differ only by torch's ~1-ulp pow (see test_firing.py).
    np.testing.assert_allclose(ours.firing_probabilities, saelens_world.firing_probabilities, rtol=1e-6)


def test_agrees_with_saelens_sampler(saelens_world):
    # 200k rows each. Per feature, (c1 - c2)/sqrt(2 n p̂(1 - p̂)) ~ N(0, 1); magnitudes two-sample z.
    n = 200_000
    ours = saelens_world.sample_features(n, seed=1)
    ref = reference_sample(saelens_world, n, seed=1).numpy()
    c1 = np.bincount(ours.indices, minlength=60)
    c2 = (ref > 0).sum(0)
    pooled = (c1 + c2) / (2 * n)
    live = (pooled > 0) & (pooled < 1)
    z = (c1 - c2)[live] / np.sqrt(2 * n * pooled[live] * (1 - pooled[live]))
    assert np.abs(z).max() < Z
    l0_ours, l0_ref = ours.nnz / n, (ref > 0).sum() / n
    assert abs(l0_ours / l0_ref - 1) < 0.005
    dense = ours.to_dense()
    for i in np.flatnonzero((c1 > 200) & (c2 > 200)):
        a, b = dense[:, i][dense[:, i] > 0], ref[:, i][ref[:, i] > 0]
        assert abs(a.mean() - b.mean()) < Z * np.sqrt(a.var() / a.size + b.var() / b.size), i
    assert hierarchy_violations(saelens_world, ours) == 0


@st.composite
def small_configs(draw) -> WorldConfig:
    hierarchy = draw(
        st.none()
        | st.builds(
            HierarchyConfig,
            total_root_nodes=st.integers(1, 5),
            branching_factor=st.sampled_from([2, 3, (2, 4)]),
            max_depth=st.integers(1, 3),
            mutually_exclusive_portion=st.sampled_from([0.0, 0.5, 1.0]),
            compensate_probabilities=st.booleans(),
            scale_children_by_parent=st.booleans(),
        )
    )
    correlation = draw(st.none() | st.builds(LowRankCorrelationConfig, rank=st.integers(1, 4)))
    return WorldConfig(
        num_features=draw(st.integers(1, 40)),
        hidden_dim=4,
        hierarchy=hierarchy,
        correlation=correlation,
        std_firing_magnitudes=draw(st.sampled_from([0.0, 0.5])),
        mean_firing_magnitudes=draw(st.sampled_from([1.0, 2.5])),
        seed=draw(st.integers(0, 1000)),
    )


@given(config=small_configs(), seed=st.integers(0, 2**64 - 1), data=st.data())
@settings(max_examples=25)
def test_rows_identical_for_any_threads_and_split(config, seed, data):
    world = synthsae.World(config, show_progress=False)
    n = data.draw(st.integers(0, 400))
    whole = world.sample_features(n, seed=seed, num_threads=1)
    assert_csr_equal(world.sample_features(n, seed=seed, num_threads=2), whole)
    cut = data.draw(st.integers(0, n))
    head = world.sample_features(cut, seed=seed)
    tail = world.sample_features(n - cut, seed=seed, start=cut, num_threads=3)
    np.testing.assert_array_equal(np.vstack([head.to_dense(), tail.to_dense()]), whole.to_dense())
    assert hierarchy_violations(world, whole) == 0


@given(config=small_configs())
@settings(max_examples=15, derandomize=True)
def test_random_worlds_agree_with_saelens_algorithm(config):
    world = synthsae.World(config, show_progress=False)
    n = 20_000
    ours = world.sample_features(n, seed=2)
    ref = reference_sample(world, n, seed=2).numpy()
    c1 = np.bincount(ours.indices, minlength=world.num_features)
    c2 = (ref > 0).sum(0)
    pooled = (c1 + c2) / (2 * n)
    live = (pooled > 0) & (pooled < 1)
    z = (c1 - c2)[live] / np.sqrt(2 * n * pooled[live] * (1 - pooled[live]))
    assert np.all(np.abs(z) < Z)
    np.testing.assert_array_equal(c1[~live], c2[~live])
    assert hierarchy_violations(world, ours) == 0


def test_16k_preset_statistics():
    config = synthsae.preset("synthsaebench-16k")
    assert config.to_dict() == PRESET_16K
    config.orthogonalization = None  # firing does not depend on the dictionary
    world = synthsae.World(config, show_progress=False)
    n = 100_000  # sd(L0) ≈ 11.7 under the copula: 5 standard errors = 0.18 < the 0.2 tolerance
    batch = world.sample_features(n, seed=0)
    l0 = np.diff(batch.indptr)
    head = np.bincount(batch.row_ids()[batch.indices < 4096], minlength=n)
    # SAELens's 16k world: true L0 ≈ 34.4 and L0 over features 0..4095 ≈ 25.1 (reference doc §3).
    assert abs(l0.mean() - 34.4) < 0.2 and Z * l0.std() / np.sqrt(n) < 0.2
    assert abs(head.mean() - 25.1) < 0.2
    assert hierarchy_violations(world, world.sample_features(5_000, seed=1)) == 0


def test_hidden_activations_from_features(saelens_world):
    h, feats = saelens_world.sample(500, seed=3, return_features=True)
    dense = torch.from_numpy(feats.to_dense())
    torch.testing.assert_close(h, dense @ saelens_world.feature_vectors + saelens_world.bias)
    assert torch.equal(saelens_world.sample(500, seed=3), h)
    h64 = saelens_world.sample(500, seed=3, dtype=torch.float64)
    assert h64.dtype == torch.float64
    torch.testing.assert_close(h64.float(), h, rtol=1e-5, atol=1e-5)


def test_hidden_from_features_on_cpu_and_through_embedding_bag(saelens_world):
    feats = saelens_world.sample_features(400, seed=5)
    h = saelens_world.hidden_from_features(feats)  # Rust row sums
    via_bag = saelens_world.hidden_from_features(feats, dtype=torch.float64).float()
    torch.testing.assert_close(h, via_bag, rtol=1e-5, atol=1e-5)
    # Each row sums its entries in ascending feature order, whatever the thread count.
    w, b = saelens_world.feature_vectors, saelens_world.bias
    r = 7
    lo, hi = feats.indptr[r], feats.indptr[r + 1]
    row = b.clone()
    for i, v in zip(feats.indices[lo:hi], feats.values[lo:hi], strict=True):
        row += float(v) * w[i]
    assert torch.equal(h[r], row)
    with pytest.raises(ValueError, match="features"):
        saelens_world.hidden_from_features(
            synthsae.SparseBatch(feats.indptr, feats.indices, feats.values, (400, 3))
        )


def test_save_load_round_trip(tmp_path, saelens_world):
    saelens_world.save(tmp_path / "w")
    again = synthsae.World.load(tmp_path / "w")
    for name in ("feature_vectors", "bias", "firing_probabilities", "correlation_factor", "mean_magnitudes"):
        assert torch.equal(getattr(again, name), getattr(saelens_world, name)), name
    assert again.hierarchy == saelens_world.hierarchy
    assert_csr_equal(again.sample_features(300, seed=9), saelens_world.sample_features(300, seed=9))
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == [
        "hierarchy.json",
        "synthetic_model.safetensors",
        "synthetic_model_config.json",
    ]


def test_fingerprint_identifies_what_determines_the_samples(tmp_path, saelens_world):
    saelens_world.save(tmp_path / "w")
    again = synthsae.World.load(tmp_path / "w")
    assert again.fingerprint() == saelens_world.fingerprint()
    assert len(saelens_world.fingerprint()) == 64
    again.firing_probabilities[3] += 1e-6  # one firing probability one ulp-ish away
    again._fingerprint = None
    assert again.fingerprint() != saelens_world.fingerprint()
    reseeded = dataclasses.replace(saelens_world.config, seed=saelens_world.config.seed + 1)
    assert synthsae.World(reseeded, show_progress=False).fingerprint() != saelens_world.fingerprint()


def test_saved_files_are_readable_under_the_umask(tmp_path, saelens_world):
    saelens_world.save(tmp_path / "w")
    umask = os.umask(0)
    os.umask(umask)
    for path in (tmp_path / "w").iterdir():
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path.name


def test_save_never_overwrites_without_asking(tmp_path, saelens_world):
    target = tmp_path / "w"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite"):
        saelens_world.save(target)
    assert (target / "notes.txt").read_text() == "mine" and len(list(target.iterdir())) == 1
    saelens_world.save(target, overwrite=True)
    assert (target / "notes.txt").read_text() == "mine"
    with pytest.raises(FileExistsError):
        saelens_world.save(target / "notes.txt")


def _broken_copy(tmp_path: Path, edit) -> Path:
    target = tmp_path / "broken"
    shutil.copytree(SAELENS_WORLD, target)
    edit(target)
    return target


@pytest.mark.parametrize(
    ("edit", "exc", "match"),
    [
        (lambda p: (p / "synthetic_model_config.json").unlink(), FileNotFoundError, "synthetic_model_config"),
        (lambda p: (p / "synthetic_model_config.json").write_text("{"), ValueError, "synthetic_model_config"),
        (lambda p: (p / "synthetic_model.safetensors").write_bytes(b"junk"), ValueError, "safetensors"),
        (
            lambda p: (p / "synthetic_model_config.json").write_text(
                (p / "synthetic_model_config.json").read_text().replace('"hidden_dim": 8', '"hidden_dim": 9')
            ),
            ValueError,
            "shape",
        ),
        (
            lambda p: (p / "hierarchy.json").write_text(json.dumps({"roots": [{"feature_index": 999}]})),
            ValueError,
            "out of range",
        ),
    ],
)
def test_corrupt_world_files_are_clear_errors(tmp_path, edit, exc, match):
    with pytest.raises(exc, match=match):
        synthsae.World.load(_broken_copy(tmp_path, edit))


def test_missing_hierarchy_file_is_regenerated_like_saelens(tmp_path, saelens_world):
    path = _broken_copy(tmp_path, lambda p: (p / "hierarchy.json").unlink())
    with pytest.warns(UserWarning, match="regenerating the hierarchy"):
        world = synthsae.World.load(path)
    assert world.hierarchy == saelens_world.hierarchy  # same config and seed


def test_preset_names():
    assert synthsae.preset("tiny").num_features == 1024
    with pytest.raises(ValueError, match="name"):
        synthsae.preset("huge")
