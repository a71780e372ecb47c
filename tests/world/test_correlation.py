"""Dense correlation matrices: SAELens's generator and repair, the exact factor form, sampling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import synthsae
from synthsae import reference
from synthsae.world.config import WorldConfig

FIXTURES = json.loads((Path(__file__).parents[1] / "data" / "saelens_fixtures.json").read_text())
Z = 5.0


#: float32's unit roundoff.
U32 = 2.0**-24


@pytest.mark.parametrize("case", FIXTURES["correlation_matrices"], ids=lambda c: str(c["args"][0]))
def test_random_correlation_matrix_matches_recorded_saelens(case):
    # Both recorded matrices went through the PSD repair, whose float32 eigh rounds differently on
    # other CPUs and LAPACK builds, so the bits are compared live below and here within a bound.
    # eigh is backward stable: its result is exact for C + E, ‖E‖_F <= c·n·u·‖C‖_F with a modest c.
    # Clamping the eigenvalues (the projection onto {A : A >= εI}) is 1-Lipschitz in ‖·‖_F, so the
    # repaired matrix moves by at most ‖E‖_F plus the float32 product V·Λ·Vᵀ (about n·u·‖C‖_F); the
    # unit-diagonal rescale divides by sqrt(d_i·d_j) with d_i >= 1 - that (clamping up only grows the
    # diagonal), which at most doubles it. c = 4 (8 with the doubling) is far below any real
    # difference (a wrong draw or pair changes entries by >= 0.1).
    *args, seed = case["args"]
    ours = synthsae.random_correlation_matrix(*args, seed=seed).numpy().astype(np.float64)
    recorded = np.array(case["matrix"], dtype=np.float32).astype(np.float64)
    n = recorded.shape[0]
    bound = 8 * n * U32 * np.linalg.norm(recorded)
    assert np.abs(ours - recorded).max() <= bound
    assert np.abs(ours - recorded).max() <= 1e-4  # the bound itself stays meaningful


@pytest.mark.parametrize("case", FIXTURES["correlation_matrices"], ids=lambda c: str(c["args"][0]))
def test_random_correlation_matrix_equals_saelens_live(case):
    # On the same CPU and LAPACK as SAELens, the same draws and repair give the same bits.
    correlation = pytest.importorskip("sae_lens.synthetic.correlation")
    *args, seed = case["args"]
    theirs = correlation.generate_random_correlation_matrix(*args, seed=seed)
    assert torch.equal(synthsae.random_correlation_matrix(*args, seed=seed), theirs)


def test_fix_gives_a_unit_diagonal_positive_definite_matrix():
    bad = torch.tensor([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])
    assert float(torch.linalg.eigvalsh(bad).min()) < 0
    fixed = synthsae.fix_correlation_matrix(bad)
    assert torch.equal(torch.diag(fixed), torch.ones(3))
    assert float(torch.linalg.eigvalsh(fixed.double()).min()) > 0


def test_low_rank_from_dense_reconstructs_the_matrix():
    c = synthsae.random_correlation_matrix(20, seed=4)
    f, d = synthsae.low_rank_from_dense(c)
    assert f.shape == (20, 20) and bool((d > 0).all())
    torch.testing.assert_close(f @ f.T + torch.diag(d), c, atol=2e-6, rtol=0)


@pytest.mark.parametrize(
    ("matrix", "match"),
    [
        (torch.ones(2, 3), "square"),
        (torch.tensor([[1.0, 0.5], [0.2, 1.0]]), "symmetric"),
        (torch.tensor([[2.0, 0.0], [0.0, 1.0]]), "unit diagonal"),
        (torch.tensor([[1.0, 1.0], [1.0, 1.0]]), "positive definite"),
    ],
)
def test_bad_matrices_are_rejected(matrix, match):
    with pytest.raises(ValueError, match=match):
        synthsae.low_rank_from_dense(matrix)


def test_world_with_dense_correlation_matches_saelens_sampling(tmp_path):
    # SAELens samples a dense matrix with MultivariateNormal; reference.sample_world reproduces it
    # bit for bit. 100k rows each: per-feature and per-pair co-firing two-sample z-scores.
    n_features, n = 8, 100_000
    c = synthsae.random_correlation_matrix(
        n_features, uncorrelated_ratio=0.0, min_correlation_strength=0.5, seed=3
    )
    config = WorldConfig(n_features, 4, mean_firing_magnitudes=1.0, seed=0)
    world = synthsae.World(config, correlation_matrix=c)
    ours = world.sample_features(n, seed=5).to_dense() > 0
    gen = torch.Generator().manual_seed(5)
    ref = reference.sample_world(
        n, firing_probabilities=world.firing_probabilities, generator=gen, correlation_matrix=c
    )
    ref = (ref > 0).numpy()
    a, b = ours.astype(np.float64), ref.astype(np.float64)
    co_a, co_b = a.T @ a / n, b.T @ b / n  # includes the marginals on the diagonal
    pooled = (co_a + co_b) / 2
    z = (co_a - co_b) / np.sqrt(2 * pooled * (1 - pooled) / n)
    assert np.abs(z).max() < Z
    indep = np.outer(np.diag(pooled), np.diag(pooled))
    assert np.abs(pooled - indep)[np.triu_indices(n_features, 1)].max() > 0.02  # correlation is real
    world.save(tmp_path / "w")
    again = synthsae.World.load(tmp_path / "w")
    np.testing.assert_array_equal(
        again.sample_features(200, seed=1).to_dense(), world.sample_features(200, seed=1).to_dense()
    )
