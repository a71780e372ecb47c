"""The Gated and AbsTopK SAEs: cross-checked against SAELens's ``GatedTrainingSAE`` and
``AbsTopKTrainingSAE`` (same weights, same float64 inputs: latents, reconstruction, every loss term, the
total and every parameter's gradient), persistence, ``from_l0``, argument checks, training on the tiny
world, and ``--saelens`` building SAELens's classes. Every test that needs sae-lens has ``saelens`` in its
name (CI runs them with ``-k saelens``).

Tolerance of the cross-checks: both sides run the same float64 operations on the same tensors, so they
differ only where an operation is written differently (``z / n`` against ``z · (1/n)``) or summed in
another order, ~1e-16 relative; ``rtol = atol = 1e-12`` leaves room for that, while a wrong term, sign
or coefficient is off by far more (the terms are O(1) here).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

import synthsae
from synthsae import saes
from synthsae.bench.protocol import sae_options
from synthsae.saes import AbsTopKSAE, GatedSAE, create_sae, load_sae
from synthsae.saes.external import SAELensTrainer, saelens_factory
from synthsae.training import train

D_IN, D_SAE, BATCH = 12, 40, 64
TOL = {"rtol": 1e-12, "atol": 1e-12}

pytestmark = pytest.mark.usefixtures("single_thread")


def _inputs(seed: int = 0, n: int = BATCH) -> torch.Tensor:
    return torch.randn(n, D_IN, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@torch.no_grad()
def _perturb(sae: torch.nn.Module, seed: int) -> None:
    """Moves every parameter off its initial value (biases non-zero, decoder rows of varied norms), so
    that every term and gradient of the loss is exercised."""
    g = torch.Generator().manual_seed(seed)
    for name, p in sae.named_parameters():
        noise = torch.randn(p.shape, generator=g, dtype=torch.float64)
        if name == "W_dec":
            p.mul_(1 + 10 * torch.rand(p.shape[0], 1, generator=g, dtype=torch.float64))
        elif name == "r_mag":
            p.copy_(0.3 * noise)
        else:
            p.add_(0.1 * noise)


def _copy_into(dst: torch.nn.Module, src: torch.nn.Module) -> None:
    """Copies the parameters of ``src`` into ``dst`` by name (both must hold the same set)."""
    source = dict(src.named_parameters())
    target = dict(dst.named_parameters())
    assert set(source) == set(target), (sorted(source), sorted(target))
    with torch.no_grad():
        for name, p in target.items():
            p.copy_(source[name])


def _step_input(x: torch.Tensor, coefficients: dict[str, float], dead: torch.Tensor | None) -> Any:
    from sae_lens.saes.sae import TrainStepInput

    return TrainStepInput(
        sae_in=x, coefficients=coefficients, dead_neuron_mask=dead, n_training_steps=0, is_logging_step=False
    )


def _assert_same_step(
    ours: saes.SAE, theirs: Any, x: torch.Tensor, step_input: Any, names: dict[str, str], dead: Any
) -> None:
    """Forward, losses (ours → SAELens's names), total and every gradient agree."""
    with torch.no_grad():
        torch.testing.assert_close(ours.encode(x), theirs.encode(x), **TOL)
        torch.testing.assert_close(ours(x), theirs.decode(theirs.encode(x)), **TOL)
    out = ours.training_forward(x, dead_mask=dead)
    ref = theirs.training_forward_pass(step_input)
    torch.testing.assert_close(out.latents, ref.feature_acts.detach(), **TOL)
    torch.testing.assert_close(out.reconstruction, ref.sae_out.detach(), **TOL)
    assert set(out.losses) == set(names)
    for mine, other in names.items():
        torch.testing.assert_close(out.losses[mine], ref.losses[other].detach().reshape(()), **TOL)
    torch.testing.assert_close(out.loss.detach(), ref.loss.detach(), **TOL)
    out.loss.backward()
    ref.loss.backward()
    grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert p.grad is not None and grads[name].grad is not None, name
        torch.testing.assert_close(p.grad, grads[name].grad, **TOL, msg=name)


# ------------------------------------------------------------------------------------------ Gated


def _gated_pair(l1_coefficient: float, seed: int = 0) -> tuple[GatedSAE, Any]:
    pytest.importorskip("sae_lens")
    from sae_lens import GatedTrainingSAE, GatedTrainingSAEConfig

    ours = GatedSAE(D_IN, D_SAE, l1_coefficient, seed=seed).double()
    _perturb(ours, seed + 100)
    cfg = GatedTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE, l1_coefficient=l1_coefficient, dtype="float64")
    theirs = GatedTrainingSAE(cfg)
    _copy_into(theirs, ours)
    return ours, theirs


@pytest.mark.parametrize("l1_coefficient", [1.0, 0.37])
def test_gated_matches_saelens(l1_coefficient: float) -> None:
    ours, theirs = _gated_pair(l1_coefficient)
    x = _inputs(1)
    # sae_lens's trainer passes its coefficients as TrainStepInput.coefficients: ours is the same value
    assert theirs.get_coefficients()["l1"].value == ours.effective_l1_coefficient == l1_coefficient
    step = _step_input(x, {"l1": l1_coefficient}, None)
    names = {"mse": "mse_loss", "l1": "l1_loss", "aux": "auxiliary_reconstruction_loss"}
    _assert_same_step(ours, theirs, x, step, names, None)
    with torch.no_grad():  # the paths and the gate: some latents open, some shut by the gate alone
        gate = ours.gate_pre(x)
        open_ = gate > 0
        assert 0 < float(open_.double().mean()) < 1
        torch.testing.assert_close(ours.hidden_pre(x), theirs.encode_with_hidden_pre(x)[1], **TOL)
        z = ours.encode(x)
        assert torch.equal(z[~open_], torch.zeros_like(z[~open_]))
        assert bool(((ours.hidden_pre(x) > 0) & ~open_).any())


def test_gated_gradient_paths() -> None:
    """The gate passes no gradient: with the L1 and auxiliary terms off (coefficient 0, aux removed),
    ``b_gate`` gets none; the auxiliary reconstruction alone reaches ``b_gate`` but not ``r_mag`` or
    ``b_mag``; each term is the value ``training_forward`` reports."""
    ours = GatedSAE(D_IN, D_SAE, 0.0, seed=0).double()
    _perturb(ours, 5)
    x = _inputs(2)
    out = ours.training_forward(x)
    gates = (ours.b_gate, ours.r_mag, ours.b_mag)
    loss_mse = (ours(x) - x).pow(2).sum(-1).mean()
    torch.testing.assert_close(loss_mse, out.losses["mse"], **TOL)
    b_gate, r_mag, b_mag = torch.autograd.grad(loss_mse, gates, allow_unused=True)
    assert b_gate is None and r_mag is not None and b_mag is not None
    aux = (ours.gate_pre(x).relu() @ ours.W_dec + ours.b_dec - x).pow(2).sum(-1).mean()
    torch.testing.assert_close(aux, out.losses["aux"], **TOL)
    b_gate, r_mag, b_mag = torch.autograd.grad(aux, gates, allow_unused=True)
    assert b_gate is not None and r_mag is None and b_mag is None
    assert float(out.losses["l1"]) == 0.0


def test_gated_l1_warm_up_follows_saelens_coefficient_scheduler() -> None:
    """The coefficient at step s is SAELens's ``CoefficientScheduler`` value before its s-th ``step()``:
    ``l1_coefficient · min(s / l1_warm_up_steps, 1)``."""
    pytest.importorskip("sae_lens")
    from sae_lens.training.optim import CoefficientScheduler

    ours = GatedSAE(D_IN, D_SAE, 0.8, l1_warm_up_steps=4)
    scheduler = CoefficientScheduler(warm_up_steps=4, final_value=0.8)
    for _ in range(7):
        assert ours.effective_l1_coefficient == pytest.approx(scheduler.value, rel=1e-15, abs=0)
        scheduler.step()
        ours.n_steps += 1


def test_gated_fold_decoder_norm_preserves_forward_and_gates() -> None:
    ours = GatedSAE(D_IN, D_SAE, seed=1).double()
    _perturb(ours, 9)
    x = _inputs(3)
    with torch.no_grad():
        before, gate, z = ours(x), ours.gate_pre(x) > 0, ours.encode(x)
        norms = ours.W_dec.norm(dim=-1)
        ours.fold_decoder_norm()
        torch.testing.assert_close(ours(x), before, **TOL)
        assert torch.equal(ours.gate_pre(x) > 0, gate)
        torch.testing.assert_close(ours.encode(x), z * norms, **TOL)
        torch.testing.assert_close(ours.W_dec.norm(dim=-1), torch.ones_like(norms), **TOL)


def test_gated_autotuner_raises_the_coefficient_when_l0_is_too_high() -> None:
    sae = GatedSAE(D_IN, D_SAE, 0.1, target_l0=1.0, autotune_gain=0.05, seed=0)
    out = sae.training_forward(_inputs(4).float())
    assert saes.batch_l0(out.latents) > 1.0
    for _ in range(5):
        sae.after_step(out)
    assert sae.autotuner is not None and sae.autotuner.value > 1.0
    assert sae.effective_l1_coefficient == pytest.approx(0.1 * sae.autotuner.value)


# ------------------------------------------------------------------------------------------ AbsTopK


def _dead_mask(kind: str) -> torch.Tensor | None:
    if kind == "none":
        return None
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    if kind == "few":  # fewer than k_aux = D_IN // 2 = 6: every dead latent is kept
        dead[[3, 17, 30]] = True
    elif kind == "many":  # more than k_aux: the 6 of largest |pre| among them
        dead[::2] = True
    return dead


def _abstopk_pair(k: int, rescale: bool, aux_coefficient: float, seed: int = 0) -> tuple[AbsTopKSAE, Any]:
    pytest.importorskip("sae_lens")
    from sae_lens import AbsTopKTrainingSAE, AbsTopKTrainingSAEConfig

    ours = AbsTopKSAE(
        D_IN, D_SAE, k, aux_coefficient=aux_coefficient, rescale_acts_by_decoder_norm=rescale, seed=seed
    ).double()
    _perturb(ours, seed + 200)
    cfg = AbsTopKTrainingSAEConfig(
        d_in=D_IN,
        d_sae=D_SAE,
        k=k,
        aux_loss_coefficient=aux_coefficient,
        rescale_acts_by_decoder_norm=rescale,
        dtype="float64",
    )
    theirs = AbsTopKTrainingSAE(cfg)
    _copy_into(theirs, ours)
    return ours, theirs


@pytest.mark.parametrize("rescale", [True, False])
@pytest.mark.parametrize("dead", ["none", "zero", "few", "many"])
def test_abstopk_matches_saelens(rescale: bool, dead: str) -> None:
    ours, theirs = _abstopk_pair(5, rescale, 0.5)
    x = _inputs(5)
    mask = _dead_mask(dead)
    step = _step_input(x, {}, mask)
    _assert_same_step(
        ours, theirs, x, step, {"mse": "mse_loss", "auxk": "auxiliary_reconstruction_loss"}, mask
    )
    out = ours.training_forward(x, dead_mask=mask)
    assert torch.equal((out.latents != 0).sum(-1), torch.full((BATCH,), 5))
    assert bool((out.latents < 0).any()) and bool((out.latents > 0).any())  # bidirectional
    assert (float(out.losses["auxk"]) > 0) == (dead in ("few", "many"))


def test_abstopk_keeps_the_largest_magnitudes_with_their_signs() -> None:
    sae = AbsTopKSAE(3, 4, 2, rescale_acts_by_decoder_norm=False)
    with torch.no_grad():
        sae.W_enc.copy_(torch.eye(3, 4))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    x = torch.tensor([[0.5, -2.0, 1.0], [-3.0, 0.1, -0.2]])
    expected = torch.tensor([[0.0, -2.0, 1.0, 0.0], [-3.0, 0.0, -0.2, 0.0]])
    assert torch.equal(sae.encode(x), expected)


def test_abstopk_fold_decoder_norm() -> None:
    sae = AbsTopKSAE(D_IN, D_SAE, 4, seed=0).double()
    _perturb(sae, 3)
    x = _inputs(6)
    with torch.no_grad():
        before, z = sae(x), sae.encode(x)
        sae.fold_decoder_norm()
        torch.testing.assert_close(sae(x), before, **TOL)
        torch.testing.assert_close(sae.encode(x), z, **TOL)
    with pytest.raises(NotImplementedError, match="rescale_acts_by_decoder_norm"):
        AbsTopKSAE(D_IN, D_SAE, 4, rescale_acts_by_decoder_norm=False).fold_decoder_norm()


@pytest.mark.parametrize("arch", ["gated", "abstopk"])
def test_adam_steps_match_saelens(arch: str) -> None:
    """Six Adam steps on each side (SAELens's coefficient from its ``CoefficientScheduler``, our L1
    warm-up from the step counter; AbsTopK without rescaling and half its latents dead, so nothing may
    renormalise the decoder) leave the same parameters, to 1e-10 (Adam divides by the gradients' root
    mean square, which can scale a 1e-16 difference up, but not to 1e-10 in six steps)."""
    pytest.importorskip("sae_lens")
    from sae_lens.training.optim import CoefficientScheduler

    ours: saes.SAE
    if arch == "gated":
        _, theirs = _gated_pair(0.6)  # perturbed weights, copied into a gated SAE with an L1 warm-up
        ours = GatedSAE(D_IN, D_SAE, 0.6, l1_warm_up_steps=3).double()
        _copy_into(ours, theirs)
        scheduler = CoefficientScheduler(warm_up_steps=3, final_value=0.6)
        dead = None
    else:
        ours, theirs = _abstopk_pair(4, False, 1.0)
        scheduler = None
        dead = _dead_mask("many")
    opt_ours = torch.optim.Adam(ours.parameters(), lr=1e-2)
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=1e-2)
    for i in range(6):
        x = _inputs(20 + i)
        out = ours.training_forward(x, dead_mask=dead)
        coefficients = {} if scheduler is None else {"l1": scheduler.value}
        ref = theirs.training_forward_pass(_step_input(x, coefficients, dead))
        for loss, opt in ((out.loss, opt_ours), (ref.loss, opt_theirs)):
            loss.backward()
            opt.step()
            opt.zero_grad()
        ours.after_step(out)
        if scheduler is not None:
            scheduler.step()
    other = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p, other[name], rtol=1e-10, atol=1e-10, msg=name)


# ------------------------------------------------------------------------------------------ both


def _make(arch: str, **kwargs: Any) -> saes.SAE:
    if arch == "gated":
        return GatedSAE(D_IN, D_SAE, kwargs.pop("l1_coefficient", 0.05), seed=1, **kwargs)
    return AbsTopKSAE(D_IN, D_SAE, kwargs.pop("k", 4), seed=1, **kwargs)


@pytest.mark.parametrize("arch", ["gated", "abstopk"])
def test_save_load_round_trip(arch: str, tmp_path: Any) -> None:
    sae = _make(arch, **({"target_l0": 3.0, "autotune_gain": 0.01} if arch == "gated" else {}))
    opt = torch.optim.Adam(sae.parameters(), lr=1e-2)
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[::3] = True
    for i in range(3):
        out = sae.training_forward(_inputs(i).float(), dead_mask=dead)
        out.loss.backward()
        opt.step()
        opt.zero_grad()
        sae.after_step(out)
    path = tmp_path / "sae"
    sae.save(path)
    config = json.loads((path / "cfg.json").read_text())
    assert config == sae.config() and config["architecture"] == arch
    loaded = load_sae(path)
    assert type(loaded) is type(sae) and loaded.config() == sae.config()
    state, loaded_state = sae.state_dict(), loaded.state_dict()
    assert state.keys() == loaded_state.keys()
    for name, tensor in state.items():
        assert torch.equal(tensor, loaded_state[name]) and tensor.dtype == loaded_state[name].dtype, name
    x = _inputs(7).float()
    assert torch.equal(sae(x), loaded(x))
    assert int(loaded.n_steps) == 3
    if arch == "gated":
        assert "b_enc" not in state and {"b_gate", "r_mag", "b_mag"} <= set(state)
        assert (
            isinstance(loaded, GatedSAE) and loaded.effective_l1_coefficient == sae.effective_l1_coefficient
        )


def test_from_l0_and_bench_options() -> None:
    assert {"gated", "abstopk"} <= set(saes.ARCHITECTURES)
    gated = create_sae("gated", 32, 256, l0=5.4, seed=0)
    assert isinstance(gated, GatedSAE) and gated.l1_coefficient == 1.0
    assert gated.autotuner is not None and gated.autotuner.target_l0 == 5.4
    fixed = create_sae("gated", 32, 256, l0=5, l1_coefficient=0.5, target_l0=None)
    assert isinstance(fixed, GatedSAE) and fixed.l1_coefficient == 0.5 and fixed.autotuner is None
    abstopk = create_sae("abstopk", 32, 256, l0=5.4, seed=0)
    assert isinstance(abstopk, AbsTopKSAE) and abstopk.k == 5
    assert create_sae("abstopk", 32, 256, l0=5.6).config()["k"] == 6
    assert not GatedSAE.direct_l0 and AbsTopKSAE.direct_l0
    assert not GatedSAE.in_paper and not AbsTopKSAE.in_paper
    assert sae_options("gated", 300, 0.02) == {
        "l1_warm_up_steps": 100,
        "autotune_start_step": 100,
        "autotune_gain": 0.02,
    }
    assert sae_options("abstopk", 300) == {}
    order = saes.registry.bench_order()
    assert order.index("mp") < order.index("gated") < order.index("abstopk") < order.index("lista-matryoshka")


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: GatedSAE(8, 8, -0.1), "l1_coefficient"),
        (lambda: GatedSAE(8, 8, float("nan")), "l1_coefficient"),
        (lambda: GatedSAE(8, 8, "1"), "l1_coefficient"),
        (lambda: GatedSAE(8, 8, 1.0, l1_warm_up_steps=-1), "l1_warm_up_steps"),
        (lambda: GatedSAE(8, 8, 1.0, target_l0=0), "target_l0"),
        (lambda: GatedSAE(8, 8, 1.0, target_l0=9), "target_l0"),
        (lambda: GatedSAE(8, 8, 1.0, autotune_gain=-1), "autotune_gain"),
        (lambda: GatedSAE(8, 8, 1.0, decoder_init_norm=0), "decoder_init_norm"),
        (lambda: GatedSAE(0, 8), "d_in"),
        (lambda: AbsTopKSAE(8, 8, 0), "k"),
        (lambda: AbsTopKSAE(8, 8, 9), "k"),
        (lambda: AbsTopKSAE(8, 8, 2.0), "k"),
        (lambda: AbsTopKSAE(8, 8, True), "k"),
        (lambda: AbsTopKSAE(8, 8, 2, aux_coefficient=-1), "aux_coefficient"),
        (lambda: AbsTopKSAE(8, 8, 2, rescale_acts_by_decoder_norm=1), "rescale_acts_by_decoder_norm"),
        (lambda: AbsTopKSAE(8, 8, 2, seed=-1), "seed"),
        (lambda: AbsTopKSAE(8, -1, 2), "d_sae"),
        (lambda: create_sae("abstopk", 8, 8, l0=0.3), "l0"),
        (lambda: create_sae("gated", 8, 8, l0=0), "l0"),
        (lambda: GatedSAE(8, 8).encode(torch.zeros(2, 7)), "shape"),
        (
            lambda: AbsTopKSAE(8, 8, 2).training_forward(torch.zeros(2, 8), dead_mask=torch.zeros(3)),
            "dead_mask",
        ),
    ],
)
def test_bad_arguments(build: Any, name: str) -> None:
    with pytest.raises((ValueError, TypeError), match=name):
        build()


def _train_tiny(world: synthsae.World, sae: saes.SAE) -> tuple[Any, float, Any]:
    """~390 steps of ``synthsae.train`` on 50k rows of the tiny world: (history, explained variance of
    the initial SAE, evaluation of the trained one), on held-out rows."""
    before = synthsae.evaluate(sae, world, num_samples=4096, seed=9, show_progress=False)
    history = train(
        sae,
        world,
        total_samples=50_000,
        batch_size=128,
        lr=3e-3,
        dead_window=50,
        log_every=30,
        show_progress=False,
    )
    after = synthsae.evaluate(sae, world, num_samples=4096, seed=9, show_progress=False)
    assert history.steps == 390 and history.diverged is None
    return history, before.explained_variance, after


def test_abstopk_trains_on_the_tiny_world(world: synthsae.World) -> None:
    """The loss goes down, the reconstruction improves, the L0 is k, AuxK ran (dead window 50 steps)."""
    sae = create_sae("abstopk", world.hidden_dim, 128, l0=6, seed=3)
    history, ev_before, after = _train_tiny(world, sae)
    losses = [r["loss"] for r in history.records]
    assert losses[-1] < 0.8 * losses[0], losses
    assert any(r["auxk"] > 0 for r in history.records)
    assert after.explained_variance > max(ev_before, 0.0) + 0.3
    assert after.sae_l0 == pytest.approx(6.0, abs=0.05)


def test_gated_trains_on_the_tiny_world(world: synthsae.World) -> None:
    """With a fixed coefficient the loss goes down and the reconstruction improves; with the autotuner
    (a gain for a short run) the coefficient rises and the L0 comes down toward the target of 6 (a
    fixed coefficient of 1.0 leaves it near 60 on this world)."""
    fixed = create_sae("gated", world.hidden_dim, 128, l0=6, seed=3, target_l0=None)
    history, ev_before, after = _train_tiny(world, fixed)
    losses = [r["loss"] for r in history.records]
    assert losses[-1] < 0.5 * losses[0], losses
    assert after.explained_variance > max(ev_before, 0.0) + 0.5

    tuned = create_sae("gated", world.hidden_dim, 128, l0=6, seed=3, autotune_gain=0.03)
    history, _, after = _train_tiny(world, tuned)
    l0s = [r["l0"] for r in history.records]
    assert isinstance(tuned, GatedSAE) and tuned.autotuner is not None and tuned.autotuner.value > 2
    assert l0s[-1] < 0.3 * l0s[0] and after.sae_l0 < 30, l0s


# ------------------------------------------------------------------------------------------ --saelens


def test_saelens_factory_builds_gated_and_abstopk() -> None:
    """``--saelens`` accepts both: AbsTopK with k = round(l0), Gated with SAELens's default L1
    coefficient whatever the L0; each trains through synthsae's trainer protocol and matches our own
    class given the same weights. Other classes keep their messages."""
    pytest.importorskip("sae_lens")
    from sae_lens import AbsTopKTrainingSAE, GatedTrainingSAE

    abstopk = saelens_factory("AbsTopKTrainingSAE")(D_IN, D_SAE, 5.4, 0)
    gated = saelens_factory("GatedTrainingSAE")(D_IN, D_SAE, 6, 0)
    assert isinstance(abstopk, SAELensTrainer) and isinstance(abstopk.sae, AbsTopKTrainingSAE)
    assert isinstance(gated, SAELensTrainer) and isinstance(gated.sae, GatedTrainingSAE)
    assert abstopk.sae.cfg.k == 5 and gated.sae.cfg.l1_coefficient == 1.0
    again = saelens_factory("GatedTrainingSAE")(D_IN, D_SAE, 6, 0)  # the seed fixes the init
    assert torch.equal(again.sae.W_dec, gated.sae.W_dec)

    x = _inputs(8).float()
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[:20] = True
    ours_abs = AbsTopKSAE(D_IN, D_SAE, 5)
    ours_gated = GatedSAE(D_IN, D_SAE, 1.0)
    for mine, wrapped in ((ours_abs, abstopk), (ours_gated, gated)):
        _copy_into(mine, wrapped.sae)
        out, ref = mine.training_forward(x, dead_mask=dead), wrapped.training_forward(x, dead_mask=dead)
        # float32 on both sides: the same operations, so agreement to float32 rounding
        torch.testing.assert_close(out.loss, ref.loss, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(out.latents, ref.latents, rtol=1e-5, atol=1e-6)
        assert wrapped.steps == 1

    with pytest.raises(ValueError, match="has no k"):
        saelens_factory("StandardTrainingSAE")
    with pytest.raises(ValueError, match="l0"):
        saelens_factory("AbsTopKTrainingSAE")(D_IN, D_SAE, 0.3, 0)


def test_saelens_gated_trains_with_synthsae_train(world: synthsae.World) -> None:
    pytest.importorskip("sae_lens")
    sae = saelens_factory("GatedTrainingSAE")(world.hidden_dim, 64, 6, 0)
    history = train(
        sae, world, total_samples=40 * 128, batch_size=128, lr=3e-3, log_every=10, show_progress=False
    )
    assert history.steps == 40 and history.diverged is None
    assert {"mse_loss", "l1_loss", "auxiliary_reconstruction_loss"} <= set(history.records[-1])
    assert history.records[-1]["loss"] < history.records[0]["loss"]
