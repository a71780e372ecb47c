"""The supervised probe ceiling: exact on a planted world, scored with the SAEs' definitions."""

from __future__ import annotations

import numpy as np
import pytest

import synthsae
from synthsae.evaluation.ceiling import labels, probe_ceiling
from synthsae.evaluation.scoring import _classification


def _planted(num_features: int, hidden_dim: int) -> synthsae.World:
    """Features fire independently with probability 0.2 and magnitude exactly 1 (no spread, no
    hierarchy, no correlation): ``a`` is a 0/1 vector and ``h = a·W + b`` with ``N <= D`` linearly
    independent directions, so a linear read-out recovers ``a`` exactly and the ideal probe has F1 = 1."""
    config = synthsae.WorldConfig(
        num_features=num_features,
        hidden_dim=hidden_dim,
        firing_probability=synthsae.ConstantFiringProbabilityConfig(probability=0.2),
        std_firing_magnitudes=0.0,
        mean_firing_magnitudes=1.0,
        seed=3,
    )
    return synthsae.World(config, show_progress=False)


def test_planted_world_ceiling_is_one():
    world = _planted(16, 32)
    ceiling = probe_ceiling(
        world, 16, train_rows=40_000, eval_rows=20_000, batch_size=256, lr=0.1, show_progress=False
    )
    assert ceiling.f1 == 1.0 and ceiling.precision == 1.0 and ceiling.recall == 1.0
    assert ceiling.world_fingerprint == world.fingerprint()


def test_superposed_world_ceiling_is_below_one():
    # twice as many features as dimensions: no linear read-out separates them all, so F1 < 1 (and a
    # trained probe still beats chance by far)
    world = _planted(64, 32)
    ceiling = probe_ceiling(
        world, 64, train_rows=40_000, eval_rows=20_000, batch_size=256, lr=0.1, show_progress=False
    )
    assert 0.5 < ceiling.f1 < 1.0


def test_labels_and_scores_follow_the_sae_definitions():
    world = _planted(16, 32)
    _, a = world.sample(500, seed=0, return_features=True)
    y = labels(a, 10)
    rows = np.repeat(np.arange(500), np.diff(a.indptr))
    expected = np.zeros((500, 16), dtype=bool)
    expected[rows, a.indices] = True
    assert np.array_equal(y, expected[:, :10])
    # the probe's per-output scores are the SAEs' per-latent ones (0 where undefined)
    tp, fires, truth = np.array([3.0, 0.0, 2.0]), np.array([4.0, 0.0, 2.0]), np.array([6.0, 1.0, 2.0])
    p, r, f = _classification(tp, fires, truth)
    assert p.tolist() == [0.75, 0.0, 1.0] and r.tolist() == [0.5, 0.0, 1.0]
    assert f.tolist() == pytest.approx([0.6, 0.0, 1.0])


def test_bad_arguments_name_themselves():
    world = _planted(16, 32)
    with pytest.raises(ValueError, match="features"):
        probe_ceiling(world, 17, show_progress=False)
    with pytest.raises(ValueError, match="lr"):
        probe_ceiling(world, 4, lr=0.0, show_progress=False)


def test_thresholds_are_chosen_for_f1():
    # a probe that reads the planted world's activations exactly, shifted by -3: its logits are -3
    # (inactive) and -2 (active), so the cross-entropy threshold 0 never fires (F1 = 0) while every
    # threshold in [-3, -2) separates perfectly; the calibration must pick one of those
    import torch

    from synthsae.evaluation.ceiling import _best_thresholds

    world = _planted(16, 32)
    w = world.feature_vectors.double()
    read = torch.linalg.pinv(w)  # [D, N]: (h - b)·read = a
    probe = torch.nn.Linear(32, 16)
    with torch.no_grad():
        probe.weight.copy_(read.T.float())
        probe.bias.copy_((-(world.bias.double() @ read) - 3).float())
    thresholds = _best_thresholds(probe, world, 16, seed=0, start=0, rows=5000, batch_size=1024, device="cpu")
    assert ((thresholds >= -3.0) & (thresholds < -2.0)).all(), thresholds
