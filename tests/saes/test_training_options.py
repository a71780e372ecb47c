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


def test_relative_tilt_hand_computed():
    # the same rows (errors 1 and 4, mean 2.5), tilted relative to the mean:
    # 2.5·(1/t)·log((e^{t/2.5} + e^{4t/2.5}) / 2); the gradient weights rows by softmax(t·e/2.5)
    x = torch.zeros(2, 2, dtype=torch.float64)
    x_hat = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    for t in (0.1, 0.5, 2.0):
        expected = 2.5 * math.log((math.exp(t / 2.5) + math.exp(4 * t / 2.5)) / 2) / t
        assert float(tilted_mse(x_hat, x, t, relative=True)) == pytest.approx(expected, rel=1e-12)
    # the same weights at any scale of the errors: scaling x̂ by 10 scales the gradient by 10 only
    grads = []
    for scale in (1.0, 10.0):
        leaf = (scale * x_hat).requires_grad_(True)
        tilted_mse(leaf, x, 0.5, relative=True).backward()
        assert leaf.grad is not None
        grads.append(leaf.grad / scale)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-12, atol=0)
    w2 = math.exp(0.5 * 4 / 2.5) / (math.exp(0.5 / 2.5) + math.exp(0.5 * 4 / 2.5))
    assert grads[0][1].tolist() == pytest.approx([0.0, 4 * w2])
    sae = saes.create_sae("matryoshka", 16, 64, l0=4, seed=0, term_tilt=0.01, term_relative=True)
    assert sae.config()["term_relative"] is True


@pytest.mark.parametrize("arch", ["topk", "batchtopk", "matryoshka"])
def test_term_changes_the_optimised_loss_not_the_logged_mse(arch):
    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(1))
    plain = saes.create_sae(arch, 16, 64, l0=4, seed=0)
    tilted = saes.create_sae(arch, 16, 64, l0=4, seed=0, term_tilt=0.05)
    a, b = plain.training_forward(x), tilted.training_forward(x)
    assert torch.equal(a.losses["mse"], b.losses["mse"])
    assert "term" in b.losses and float(b.losses["term"]) > float(b.losses["mse"])  # Jensen: tilted ≥ mean
    assert float(b.loss.detach()) > float(a.loss.detach())


def _hand_sae(form: str) -> saes.TopKSAE:
    """TopK (k = 1, no rescaling so that Ū = W_dec), one refinement step of ``form``: orthonormal decoder
    rows e_0, e_1, e_2, b_dec = b_enc = 0 and an encoder W_enc = diag(2, 0.1, 0.1) that prefers latent 0."""
    sae = saes.TopKSAE(
        3, 3, 1, rescale_acts_by_decoder_norm=False, ista_steps=1, ista_form=form, seed=0
    ).double()
    with torch.no_grad():
        sae.W_dec.copy_(torch.eye(3, dtype=torch.float64))
        sae.W_enc.copy_(torch.diag(torch.tensor([2.0, 0.1, 0.1], dtype=torch.float64)))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae


def test_ista_step_hand_computed():
    # TopK (k = 1, no rescaling so that Ū = W_dec) with orthonormal decoder rows e_0, e_1, e_2 in 3
    # dimensions, b_dec = 0 and an encoder that prefers latent 0: z₀ = (2, 0, 0) for x = (1, 3, 0).
    # ISTA: s = z₀ + η·(x − z₀·W)·Wᵀ = (2, 0, 0) + η·(−1, 3, 0); with η = 1: (1, 3, 0) → top-1 keeps latent 1
    sae = _hand_sae("ista")
    x = torch.tensor([[1.0, 3.0, 0.0]], dtype=torch.float64)
    assert sae.select(sae.scaled_pre(x)).tolist() == [[2.0, 0.0, 0.0]]
    assert sae.encode(x).tolist() == [[0.0, 3.0, 0.0]]
    # η = 0.25: s = (1.75, 0.75, 0) → latent 0 stays, at 1.75
    sae.ista_step_size = 0.25
    assert sae.encode(x).tolist() == [[1.75, 0.0, 0.0]]


def test_lista_step_hand_computed():
    # the same SAE, LISTA form: the residual goes through the encoder and adds to the pre-activations.
    # pre = x·W_enc = (2, 0.3, 0); z₀ = (2, 0, 0); residual (−1, 3, 0); residual·W_enc = (−2, 0.3, 0);
    # η = 1: pre = (0, 0.6, 0) → latent 1 at 0.6; η = 0.25: (1.5, 0.375, 0) → latent 0 at 1.5
    sae = _hand_sae("lista")
    x = torch.tensor([[1.0, 3.0, 0.0]], dtype=torch.float64)
    assert sae.encode(x).tolist() == [[0.0, pytest.approx(0.6), 0.0]]
    sae.ista_step_size = 0.25
    assert sae.encode(x).tolist() == [[1.5, 0.0, 0.0]]
    assert sae.config()["ista_form"] == "lista"
    with pytest.raises(ConfigError, match="ista_form"):
        saes.TopKSAE(3, 3, 1, ista_steps=1, ista_form="fista")


@pytest.mark.parametrize("arch", ["topk", "batchtopk", "matryoshka"])
@pytest.mark.parametrize("learn", [False, True])
@pytest.mark.parametrize("form", ["ista", "lista"])
def test_ista_sparse_step_equals_dense(arch, learn, form):
    # the sparse training step with ISTA or LISTA against the dense one: loss, latents and every
    # gradient (the learned step size's included) to float64 rounding
    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    out = {}
    for sparse in (True, False):
        sae = saes.create_sae(
            arch,
            16,
            64,
            l0=4,
            seed=0,
            sparse=sparse,
            ista_steps=2,
            ista_step_size=0.5,
            learn_step_size=learn,
            ista_form=form,
        ).double()
        o = sae.training_forward(x, dead_mask=torch.arange(64) % 5 == 0)
        o.loss.backward()
        out[sparse] = (o, {n: p.grad for n, p in sae.named_parameters()})
    (a, ga), (b, gb) = out[True], out[False]
    torch.testing.assert_close(a.loss.detach(), b.loss.detach(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(a.latents, b.latents, rtol=1e-10, atol=1e-12)
    assert ga.keys() == gb.keys() and ("ista_eta" in ga) == learn
    for name in ga:
        torch.testing.assert_close(ga[name], gb[name], rtol=1e-9, atol=1e-11, msg=name)


def _matryoshka(**options: object) -> saes.MatryoshkaBatchTopKSAE:
    return saes.MatryoshkaBatchTopKSAE(8, 16, 3, [4, 8, 16], seed=0, **options).double()  # type: ignore[arg-type]


def test_detached_inner_levels_train_only_their_own_segment():
    # levels [0, 4), [4, 8), [8, 16): with detach_inner the middle level's loss reaches latents 4..7
    # only, so W_dec[0:4]'s gradient is that of the full and the first level's losses alone
    x = torch.randn(32, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    sae = _matryoshka(detach_inner=True, sparse=False)
    sae.training_forward(x).loss.backward()
    assert sae.W_dec.grad is not None
    got = sae.W_dec.grad[:4].clone()
    ref = _matryoshka(sparse=False)
    z = ref.select(ref.scaled_pre(x))
    recons = ref.prefix_reconstructions(z)
    (saes.mse(recons[2], x) + saes.mse(recons[0], x)).backward()
    assert ref.W_dec.grad is not None
    torch.testing.assert_close(got, ref.W_dec.grad[:4], rtol=1e-12, atol=1e-14)
    # and it is a real change: without detaching, the middle level's loss moves W_dec[0:4] too
    plain = _matryoshka(sparse=False)
    plain.training_forward(x).loss.backward()
    assert plain.W_dec.grad is not None and not torch.allclose(plain.W_dec.grad[:4], got)


def test_levels_follow_firing_frequency():
    sae = _matryoshka(sort_by_frequency=True)
    assert [lv.tolist() for lv in sae.levels()] == [[0, 1, 2, 3], [4, 5, 6, 7], list(range(8, 16))]
    # latents 15, 14, 13, 12 fire most, then 11..8: they become the inner levels (ties by index)
    with torch.no_grad():
        sae.frequency_ema.copy_(torch.tensor([0.0] * 8 + [0.2] * 4 + [0.5] * 4, dtype=torch.float64))
    assert [lv.tolist() for lv in sae.levels()] == [[12, 13, 14, 15], [8, 9, 10, 11], list(range(8))]
    # the first prefix reconstruction uses exactly those four latents
    z = torch.rand(5, 16, dtype=torch.float64)
    inner = sae.prefix_reconstructions(z)[0]
    keep = torch.zeros(16, dtype=torch.float64)
    keep[12:] = 1
    torch.testing.assert_close(inner, sae.decode(z * keep))
    # after_step moves the average towards each latent's firing rate in the step
    out = sae.training_forward(torch.randn(32, 8, dtype=torch.float64))
    before = sae.frequency_ema.clone()
    sae.after_step(out)
    rate = (out.latents != 0).double().mean(dim=0)
    torch.testing.assert_close(sae.frequency_ema, 0.99 * before + 0.01 * rate)


@pytest.mark.parametrize(
    "options",
    [
        {"detach_inner": True},
        {"sort_by_frequency": True},
        {"detach_inner": True, "sort_by_frequency": True, "ista_steps": 1},
        {"detach_inner": True, "sort_by_frequency": True, "ista_steps": 1, "ista_form": "lista"},
    ],
)
def test_matryoshka_options_sparse_equals_dense(options):
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    dead = torch.arange(16) % 3 == 0
    grads = {}
    for sparse in (True, False):
        sae = _matryoshka(sparse=sparse, **options)
        if "sort_by_frequency" in options:
            with torch.no_grad():
                sae.frequency_ema.copy_(torch.linspace(0, 1, 16, dtype=torch.float64).flip(0).roll(5))
        o = sae.training_forward(x, dead_mask=dead)
        o.loss.backward()
        grads[sparse] = (o.loss.detach(), {n: p.grad for n, p in sae.named_parameters()})
    torch.testing.assert_close(grads[True][0], grads[False][0], rtol=1e-10, atol=1e-12)
    for name, g in grads[True][1].items():
        torch.testing.assert_close(g, grads[False][1][name], rtol=1e-9, atol=1e-11, msg=name)


def test_recipe_turns_on_every_ingredient_and_each_can_be_turned_off(tmp_path):
    from synthsae.saes.lista_matryoshka import K_START_FACTOR, TILT, LISTAMatryoshkaSAE

    sae = saes.create_sae(
        "lista-matryoshka", 16, 64, l0=4, seed=0, **LISTAMatryoshkaSAE.bench_options(100, 0.0)
    )
    assert isinstance(sae, LISTAMatryoshkaSAE)
    # the published code's settings: one LISTA step at fixed η = 0.3, K from 2.4·k over the whole run,
    # detached and frequency-sorted levels, TERM relative to the batch's mean error
    assert (sae.ista_steps, sae.ista_form, sae.ista_step_size, sae.learn_step_size) == (
        1,
        "lista",
        0.3,
        False,
    )
    assert sae.detach_inner and sae.sort_by_frequency and sae.term_relative
    assert (sae.term_tilt, sae.k_start, sae.k_anneal_steps) == (TILT, K_START_FACTOR * 4, 100)
    # without steps for the K schedule, k stays fixed; any option can be switched off
    plain = saes.create_sae("lista-matryoshka", 16, 64, l0=4, seed=0, ista_steps=0, term_tilt=0.0)
    assert plain.k_start is None and plain.ista_steps == 0 and plain.term_tilt == 0.0 and plain.detach_inner
    sae.save(tmp_path / "r")
    loaded = saes.load_sae(tmp_path / "r")
    assert type(loaded) is LISTAMatryoshkaSAE and loaded.config() == sae.config()
    x = torch.randn(32, 16, generator=torch.Generator().manual_seed(5))
    out = sae.training_forward(x)
    out.loss.backward()
    assert sae.W_enc.grad is not None and set(out.losses) >= {"mse", "term", "auxk"}
    learned = saes.create_sae("lista-matryoshka", 16, 64, l0=4, seed=0, learn_step_size=True)
    learned.training_forward(x).loss.backward()
    assert learned.ista_eta.grad is not None
