"""The TopK family's K schedule and TERM loss: their definitions, hand-computed."""

from __future__ import annotations

import math

import pytest
import torch

from synthsae import saes
from synthsae.errors import ConfigError
from synthsae.saes.topk_family import tilted_mse


def test_k_schedule_values():
    # k(t) = k_start + (k − k_start)·t / steps for t < steps, then k; always k in eval mode
    sae = saes.BatchTopKSAE(8, 64, 6, k_start=24, k_anneal_steps=10, seed=0)
    expected = {0: 24.0, 1: 22.2, 5: 15.0, 9: 7.8, 10: 6, 11: 6, 100: 6}
    for t, k in expected.items():
        sae.n_steps.fill_(t)
        assert sae.current_k() == pytest.approx(k)
    sae.eval()
    sae.n_steps.fill_(0)
    assert sae.current_k() == 6


@pytest.mark.parametrize("arch", ["topk", "batchtopk", "matryoshka"])
def test_training_keeps_the_scheduled_number_of_latents(arch):
    # TopK keeps round(k(t)) per row; the batch variants int(k(t)·b) over the batch
    sae = saes.create_sae(arch, 16, 64, l0=4, k_start=12, k_anneal_steps=4, seed=0)
    x = torch.randn(32, 16, generator=torch.Generator().manual_seed(0))
    for t, k in ((0, 12.0), (2, 8.0), (3, 6.0), (4, 4.0)):
        sae.n_steps.fill_(t)
        z = sae.training_forward(x).latents
        if arch == "topk":
            assert ((z != 0).sum(dim=1) <= round(k)).all() and (z != 0).sum() >= round(k) * 32 * 0.9
        else:
            assert int((z != 0).sum()) == int(k * 32)


def test_k_schedule_is_checked_and_saved(tmp_path):
    with pytest.raises(ConfigError, match="k_anneal_steps"):
        saes.TopKSAE(8, 64, 4, k_start=8)
    with pytest.raises(ValueError, match="k"):
        saes.TopKSAE(8, 64, 4, k_start=65, k_anneal_steps=5)
    sae = saes.MatryoshkaBatchTopKSAE(8, 64, 4, [16, 64], k_start=8, k_anneal_steps=5, term_tilt=0.01, seed=0)
    sae.save(tmp_path / "s")
    loaded = saes.load_sae(tmp_path / "s")
    assert isinstance(loaded, saes.MatryoshkaBatchTopKSAE)
    assert (loaded.k_start, loaded.k_anneal_steps, loaded.term_tilt) == (8, 5, 0.01)
    # off by default, and then not written (files from before the options read the same)
    assert "k_start" not in saes.TopKSAE(8, 64, 4, seed=0).config()


def test_tilted_mse_hand_computed():
    # two rows with squared errors 1 and 4 (x̂ − x = (1, 0) and (0, 2)):
    # (1/t)·log((e^t + e^{4t}) / 2)
    x = torch.zeros(2, 2, dtype=torch.float64)
    x_hat = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    for t in (0.1, 0.5, 2.0):
        expected = math.log((math.exp(t) + math.exp(4 * t)) / 2) / t
        assert float(tilted_mse(x_hat, x, t)) == pytest.approx(expected, rel=1e-12)
    # t → 0: the MSE (mean 2.5); t large: the worst row (4)
    assert float(tilted_mse(x_hat, x, 1e-9)) == pytest.approx(2.5, rel=1e-6)
    assert float(tilted_mse(x_hat, x, 200.0)) == pytest.approx(4.0, rel=1e-2)
    # the gradient weights rows by softmax(t·e): here e^{4t} / (e^t + e^{4t}) on the second row
    x_hat.requires_grad_(True)
    tilted_mse(x_hat, x, 0.5).backward()
    assert x_hat.grad is not None
    w2 = math.exp(2.0) / (math.exp(0.5) + math.exp(2.0))
    # d/dx̂ of e_2 = 2·(x̂ − x) = (0, 4) on row 2, times its weight
    assert x_hat.grad[1].tolist() == pytest.approx([0.0, 4 * w2])


@pytest.mark.parametrize("arch", ["topk", "batchtopk", "matryoshka"])
def test_term_changes_the_optimised_loss_not_the_logged_mse(arch):
    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(1))
    plain = saes.create_sae(arch, 16, 64, l0=4, seed=0)
    tilted = saes.create_sae(arch, 16, 64, l0=4, seed=0, term_tilt=0.05)
    a, b = plain.training_forward(x), tilted.training_forward(x)
    assert torch.equal(a.losses["mse"], b.losses["mse"])
    assert "term" in b.losses and float(b.losses["term"]) > float(b.losses["mse"])  # Jensen: tilted ≥ mean
    assert float(b.loss.detach()) > float(a.loss.detach())
