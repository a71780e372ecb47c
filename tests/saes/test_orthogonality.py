"""The decoder-orthogonality penalty: value and gradient against a dense float64
reference, gradient into non-firing neighbours, ties shared, and what it does in training."""

from __future__ import annotations

import pytest
import torch

import synthsae
from synthsae import saes
from synthsae.evaluation.assignment import mean_max_abs_cos
from synthsae.saes.orthogonality import nearest_pairs, ortho_penalty


def dense_penalty(w: torch.Tensor, active: torch.Tensor, power: float) -> torch.Tensor:
    """The definition, over the whole |cos| matrix: mean over active latents of the mean over the
    other rows at the largest |cos| of |cos|^power."""
    u = w / w.norm(dim=1, keepdim=True)
    c = (u @ u.T).abs()
    c = c - 2 * torch.eye(len(w), dtype=w.dtype)  # never its own neighbour
    terms = []
    for latent in active.nonzero().flatten().tolist():
        row = c[latent]
        ties = (row == row.max()).nonzero().flatten()
        terms.append(row[ties].pow(power).mean())
    return torch.stack(terms).mean()


@pytest.mark.parametrize("power", [1.0, 2.0, 3.5])
def test_value_and_gradient_equal_the_dense_reference_in_float64(power):
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(40, 12, generator=gen, dtype=torch.float64)
    active = torch.rand(40, generator=gen) < 0.4
    ours = w.clone().requires_grad_(True)
    value = ortho_penalty(ours, active, nearest_pairs(ours), power)
    value.backward()
    ref = w.clone().requires_grad_(True)
    expected = dense_penalty(ref, active, power)
    expected.backward()
    assert torch.allclose(value, expected, rtol=1e-12, atol=0)
    assert ours.grad is not None and ref.grad is not None
    assert torch.allclose(ours.grad, ref.grad, rtol=1e-10, atol=1e-14)


def test_a_neighbour_that_did_not_fire_is_pushed_away_too():
    w = torch.eye(6, 6, dtype=torch.float64)
    w[1] = w[0] + 0.1 * w[1]  # latent 1 lies on latent 0
    w.requires_grad_(True)
    active = torch.zeros(6, dtype=torch.bool)
    active[0] = True  # only latent 0 fired
    ortho_penalty(w, active, nearest_pairs(w), 2.0).backward()
    assert w.grad is not None
    assert w.grad[1].abs().sum() > 0 and w.grad[2:].abs().sum() == 0


def test_equally_near_neighbours_share_the_penalty():
    w = torch.tensor(
        [[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.6, -0.8, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64
    )
    pairs = nearest_pairs(w)
    mine = pairs.latents == 0
    assert sorted(pairs.neighbours[mine].tolist()) == [1, 2]
    assert pairs.weights[mine].tolist() == [0.5, 0.5]
    assert mean_max_abs_cos(w) == pytest.approx((0.6 + 0.6 + 0.6 + 0.0) / 4)  # rows 1, 2: |cos| 0.28 apart


def _train(world, **kwargs):
    sae = saes.BatchTopKSAE(64, 256, k=8, seed=0)
    history = synthsae.train(
        sae, world, total_samples=300 * 1024, batch_size=1024, lr=1e-3, seed=0, show_progress=False, **kwargs
    )
    return sae, history


@pytest.mark.slow
def test_the_penalty_lowers_the_decoders_mean_max_cos_and_off_is_todays_training(world, single_thread):
    plain, _ = _train(world)
    # Off: the other settings do nothing, and training is what it was without the option.
    off, history = _train(world, ortho_coef=0.0, ortho_power=3.0, ortho_refresh=1)
    assert all(
        torch.equal(a, b) for a, b in zip(plain.state_dict().values(), off.state_dict().values(), strict=True)
    )
    assert "ortho" not in history.records[-1]
    on, history = _train(world, ortho_coef=3.0)
    # Measured: 0.441 without, 0.334 with (300 steps, fixed seeds); a margin of 0.03 is a third of it.
    assert mean_max_abs_cos(on.W_dec) < mean_max_abs_cos(plain.W_dec) - 0.03
    assert history.records[-1]["decoder_rho_mm"] == pytest.approx(mean_max_abs_cos(on.W_dec))
    assert history.records[-1]["ortho"] > 0


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"ortho_coef": -1.0}, ValueError, "ortho_coef"),
        ({"ortho_coef": float("nan")}, ValueError, "ortho_coef"),
        ({"ortho_power": 0.5}, ValueError, "ortho_power"),
        ({"ortho_refresh": 0}, ValueError, "ortho_refresh"),
        ({"ortho_refresh": 1.5}, TypeError, "ortho_refresh"),
    ],
)
def test_bad_penalty_settings_name_the_argument(world, kwargs, error, name):
    with pytest.raises(error, match=f"^{name}"):
        _train(world, **kwargs)
