"""The argument contract for SAEs, training and evaluation: wrong types raise TypeError, bad values
(NaN/inf and out of range included) raise ValueError, and every message starts with the argument's name."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import synthsae
from synthsae.evaluation.scoring import EvalAccumulator, evaluate, reconstruction_score
from synthsae.saes import (
    BatchTopKSAE,
    JumpReLUSAE,
    L0Autotuner,
    MatchingPursuitSAE,
    MatryoshkaBatchTopKSAE,
    ReLUSAE,
    TopKSAE,
    create_sae,
    default_matryoshka_widths,
    load_sae,
    matching_pursuit,
)
from synthsae.training.loop import train

NAN, INF = float("nan"), float("inf")


def _common(build: Callable[..., Any]) -> list[tuple[Callable[[], Any], type[Exception], str]]:
    """Cases every architecture shares (the base constructor's arguments)."""
    return [
        (lambda: build(d_in=0), ValueError, "d_in"),
        (lambda: build(d_in=8.0), TypeError, "d_in"),
        (lambda: build(d_in=True), TypeError, "d_in"),
        (lambda: build(d_sae=-3), ValueError, "d_sae"),
        (lambda: build(d_sae="8"), TypeError, "d_sae"),
        (lambda: build(seed=-1), ValueError, "seed"),
        (lambda: build(seed=2**64), ValueError, "seed"),
        (lambda: build(seed=1.5), TypeError, "seed"),
        # Sizes whose weights cannot fit in memory are refused by name before torch allocates them.
        (lambda: build(d_sae=10**12), ValueError, "d_sae"),
        (lambda: build(d_in=10**12), ValueError, "d_in"),
    ]


def _sae(cls: type, *args: Any) -> Callable[..., Any]:
    def build(d_in: Any = 8, d_sae: Any = 8, **kwargs: Any) -> Any:
        return cls(d_in, d_sae, *args, **kwargs)

    return build


TOPK, BATCH = _sae(TopKSAE, 2), _sae(BatchTopKSAE, 2)
MATRYOSHKA, RELU = _sae(MatryoshkaBatchTopKSAE, 2, [4]), _sae(ReLUSAE, 1.0)
JUMPRELU, MP = _sae(JumpReLUSAE, 2.0), _sae(MatchingPursuitSAE, 2)

CASES = [
    *(case for build in (TOPK, BATCH, MATRYOSHKA, RELU, JUMPRELU, MP) for case in _common(build)),
    *(
        case
        for build in (TOPK, BATCH, MATRYOSHKA, RELU, JUMPRELU)
        for case in [
            (lambda build=build: build(decoder_init_norm=0), ValueError, "decoder_init_norm"),
            (lambda build=build: build(decoder_init_norm=NAN), ValueError, "decoder_init_norm"),
            (lambda build=build: build(decoder_init_norm="1"), TypeError, "decoder_init_norm"),
        ]
    ),
    *(
        case
        for build in (TOPK, BATCH, MATRYOSHKA)
        for case in [
            (lambda build=build: build(aux_coefficient=-1), ValueError, "aux_coefficient"),
            (lambda build=build: build(aux_coefficient=INF), ValueError, "aux_coefficient"),
            (
                lambda build=build: build(rescale_acts_by_decoder_norm=1),
                TypeError,
                "rescale_acts_by_decoder_norm",
            ),
        ]
    ),
    (lambda: TopKSAE(8, 8, 0), ValueError, "k"),
    (lambda: TopKSAE(8, 8, 9), ValueError, "k"),
    (lambda: TopKSAE(8, 8, 2.0), TypeError, "k"),
    (lambda: BatchTopKSAE(8, 8, NAN), ValueError, "k"),
    (lambda: BatchTopKSAE(8, 8, -1), ValueError, "k"),
    (lambda: BatchTopKSAE(8, 8, "2"), TypeError, "k"),
    (lambda: BatchTopKSAE(8, 8, 2, topk_threshold_lr=NAN), ValueError, "topk_threshold_lr"),
    (lambda: BatchTopKSAE(8, 8, 2, topk_threshold_lr=2), ValueError, "topk_threshold_lr"),
    (lambda: MatryoshkaBatchTopKSAE(8, 8, 2, [0, 4]), ValueError, "widths"),
    (lambda: MatryoshkaBatchTopKSAE(8, 8, 2, [4, 9]), ValueError, "widths"),
    (lambda: MatryoshkaBatchTopKSAE(8, 8, 2, [4.0]), TypeError, "widths"),
    (lambda: MatryoshkaBatchTopKSAE(8, 8, 2, [], use_matryoshka_aux_loss=1), ValueError, "widths"),
    (lambda: MatryoshkaBatchTopKSAE(8, 8, 2, [4], use_matryoshka_aux_loss=1), TypeError, "use_matryoshka"),
    (lambda: ReLUSAE(8, 8, INF), ValueError, "l1_coefficient"),
    (lambda: ReLUSAE(8, 8, None), TypeError, "l1_coefficient"),
    (lambda: ReLUSAE(8, 8, 1.0, l1_warm_up_steps=1.5), TypeError, "l1_warm_up_steps"),
    (lambda: ReLUSAE(8, 8, 1.0, target_l0=NAN), ValueError, "target_l0"),
    (lambda: ReLUSAE(8, 8, 1.0, target_l0=9), ValueError, "target_l0"),
    (lambda: ReLUSAE(8, 8, 1.0, autotune_start_step=-1), ValueError, "autotune_start_step"),
    (lambda: ReLUSAE(8, 8, 1.0, autotune_gain=NAN), ValueError, "autotune_gain"),
    (lambda: ReLUSAE(8, 8, 1.0, autotune_smoothing=1.5), ValueError, "autotune_smoothing"),
    (lambda: JumpReLUSAE(8, 8, INF), ValueError, "target_l0"),
    (lambda: JumpReLUSAE(8, 8, "2"), TypeError, "target_l0"),
    (lambda: JumpReLUSAE(8, 8, 2.0, l0_coefficient=-1), ValueError, "l0_coefficient"),
    (lambda: JumpReLUSAE(8, 8, 2.0, bandwidth=NAN), ValueError, "bandwidth"),
    (lambda: JumpReLUSAE(8, 8, 2.0, init_threshold=INF), ValueError, "init_threshold"),
    (lambda: JumpReLUSAE(8, 8, 2.0, autotune_smoothing=-0.1), ValueError, "autotune_smoothing"),
    (lambda: MatchingPursuitSAE(8, 8, 9), ValueError, "k"),
    (lambda: MatchingPursuitSAE(8, 8, 2, residual_threshold=NAN), ValueError, "residual_threshold"),
    (lambda: MatchingPursuitSAE(8, 8, 2, normalize_decoder=0), TypeError, "normalize_decoder"),
    (lambda: L0Autotuner(0), ValueError, "target_l0"),
    (lambda: L0Autotuner(2, gain=-1), ValueError, "autotune_gain"),
    (lambda: L0Autotuner(2, rate_smoothing=2), ValueError, "rate_smoothing"),
    (lambda: L0Autotuner(2, gain_scale=0), ValueError, "gain_scale"),
    (lambda: L0Autotuner(2, convergence_gain=NAN), ValueError, "convergence_gain"),
    (lambda: L0Autotuner(2, min_multiplier=0), ValueError, "min_multiplier"),
    (lambda: L0Autotuner(2, max_multiplier=INF), ValueError, "max_multiplier"),
    (lambda: L0Autotuner(2, min_multiplier=2, max_multiplier=1), ValueError, "min_multiplier"),
    (lambda: create_sae("gated", 8, 8, l0=2), ValueError, "architecture"),
    (lambda: create_sae("topk", 8, 8, l0=NAN), ValueError, "l0"),
    (lambda: create_sae("topk", 8, 8, l0="2"), TypeError, "l0"),
    (lambda: create_sae("mp", 8, 8, l0=0.4), ValueError, "l0"),
    (lambda: default_matryoshka_widths(0), ValueError, "d_sae"),
    (lambda: matching_pursuit(torch.zeros(2, 4), torch.eye(4), -1), ValueError, "max_iterations"),
    (lambda: matching_pursuit(torch.zeros(2, 4), torch.eye(4), 1.0), TypeError, "max_iterations"),
]


@pytest.mark.parametrize(("build", "exc", "name"), CASES)
def test_sae_arguments(build: Callable[[], Any], exc: type[Exception], name: str) -> None:
    with pytest.raises(exc) as info:
        build()
    assert str(info.value).startswith(name), str(info.value)


def test_an_sae_too_large_for_memory_names_the_size(tmp_path: Any) -> None:
    with pytest.raises(ValueError) as info:
        TopKSAE(64, 10**12, k=8)
    message = str(info.value)
    assert message.startswith("d_sae: an SAE of 1,000,000,000,000 latents in 64 dimensions"), message
    assert "more than this machine has" in message
    # A saved config that asks for such a size: the error names the file and the field.
    TopKSAE(8, 16, 2, seed=0).save(tmp_path / "sae")
    cfg = tmp_path / "sae" / "cfg.json"
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "d_sae": 10**12}))
    with pytest.raises(ValueError) as info:
        load_sae(tmp_path / "sae")
    assert str(info.value).startswith(f"{cfg}: d_sae: an SAE of 1,000,000,000,000 latents"), str(info.value)


ZERO_ROW_SAES = [
    lambda sparse: TopKSAE(8, 16, 3, sparse=sparse, seed=0),
    lambda sparse: BatchTopKSAE(8, 16, 3, sparse=sparse, seed=0),
    lambda sparse: MatryoshkaBatchTopKSAE(8, 16, 3, [4, 8], sparse=sparse, seed=0),
]


@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("build", ZERO_ROW_SAES)
def test_a_zero_decoder_row_adds_nothing(build: Callable[[bool], Any], sparse: bool) -> None:
    """With rescaled activations a zero decoder row gives its latent 0 and must add 0 (not 0/0 = NaN);
    the other rows' results are bit-identical to those of an SAE where that row is anything else."""
    sae, other = build(sparse), build(sparse)
    with torch.no_grad():
        sae.W_dec[5] = 0.0
        other.W_dec[5] = torch.arange(1.0, 9.0)
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))
    for model in (sae, other):
        model.eval()
    with torch.no_grad():
        z = sae.encode(x)
        assert torch.isfinite(z).all() and (z[:, 5] == 0).all()
        x_hat = sae.decode(z)
        assert torch.isfinite(x_hat).all()
        assert torch.equal(x_hat, other.decode(z))
        units = synthsae.evaluation.scoring.effective_decoder(sae)
        assert (units[5] == 0).all() and torch.isfinite(units).all()
    sae.train()
    for dead in ([5], [3, 5], list(range(16))):  # AuxK over a few dead latents and over many
        dead_mask = torch.zeros(16, dtype=torch.bool)
        dead_mask[dead] = True
        out = sae.training_forward(x, dead_mask=dead_mask)
        sae.zero_grad()
        out.loss.backward()
        assert all(math.isfinite(float(v)) for v in out.losses.values()), out.losses
        assert torch.isfinite(out.reconstruction).all() and torch.isfinite(out.latents).all()
        assert all(torch.isfinite(p.grad).all() for p in sae.parameters() if p.grad is not None)


@pytest.fixture(scope="module")
def world() -> synthsae.World:
    config = synthsae.preset("tiny")
    return synthsae.World(config)


TRAIN_CASES = [
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"batch_size": 2.0}, TypeError, "batch_size"),
    ({"total_samples": -1}, ValueError, "total_samples"),
    ({"lr": 0}, ValueError, "lr"),
    ({"lr": NAN}, ValueError, "lr"),
    ({"lr": "1e-3"}, TypeError, "lr"),
    ({"lr_end": -1.0}, ValueError, "lr_end"),
    ({"lr_end": INF}, ValueError, "lr_end"),
    ({"seed": -1}, ValueError, "seed"),
    ({"seed": 2**64}, ValueError, "seed"),
    ({"seed": None}, TypeError, "seed"),
    ({"lr_warmup_steps": -1}, ValueError, "lr_warmup_steps"),
    ({"lr_decay_steps": 0.5}, TypeError, "lr_decay_steps"),
    ({"eval_every": 0}, ValueError, "eval_every"),
    ({"eval_samples": -1}, ValueError, "eval_samples"),
    ({"checkpoint_every": 0}, ValueError, "checkpoint_every"),
    ({"dead_window": 0}, ValueError, "dead_window"),
    ({"log_every": 0}, ValueError, "log_every"),
    ({"max_grad_norm": 0}, ValueError, "max_grad_norm"),
    ({"max_grad_norm": INF}, ValueError, "max_grad_norm"),
    ({"adam_betas": (0.9, 1.0)}, ValueError, "adam_betas"),
    ({"adam_betas": (2.0, 0.9)}, ValueError, "adam_betas"),  # issue 24: once torch's message
    ({"adam_betas": (0.9, NAN)}, ValueError, "adam_betas"),
    ({"adam_betas": 0.9}, TypeError, "adam_betas"),
    ({"resume": "yes"}, TypeError, "resume"),
    ({"log_to_wandb": 1}, TypeError, "log_to_wandb"),
    ({"autocast": 1}, TypeError, "autocast"),
]


@pytest.mark.parametrize(("overrides", "exc", "name"), TRAIN_CASES)
def test_train_arguments(world: synthsae.World, overrides: dict[str, Any], exc: type, name: str) -> None:
    sae = TopKSAE(world.hidden_dim, 16, 2, seed=0)
    kwargs: dict[str, Any] = {"total_samples": 64, "batch_size": 32, "show_progress": False, **overrides}
    with pytest.raises(exc) as info:
        train(sae, world, **kwargs)
    assert str(info.value).startswith(name), str(info.value)
    assert int(sae.n_steps) == 0  # refused before any step


@pytest.mark.parametrize(
    ("overrides", "exc", "name"),
    [
        ({"num_samples": -1}, ValueError, "num_samples"),
        ({"num_samples": 1.5}, TypeError, "num_samples"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": "0"}, TypeError, "seed"),
        ({"device": "bogus"}, ValueError, "device"),
        ({"device": "cuda:99"}, ValueError, "device"),
        ({"device": 1.5}, TypeError, "device"),
    ],
)
def test_evaluate_arguments(world: synthsae.World, overrides: dict[str, Any], exc: type, name: str) -> None:
    sae = TopKSAE(world.hidden_dim, 16, 2, seed=0)
    with pytest.raises(exc) as info:
        evaluate(sae, world, **{"num_samples": 64, "show_progress": False, **overrides})
    assert str(info.value).startswith(name), str(info.value)


def test_evaluate_scores_an_sae_with_a_zero_decoder_row(world: synthsae.World) -> None:
    sae = TopKSAE(world.hidden_dim, 16, 2, seed=0)
    with torch.no_grad():
        sae.W_dec[3] = 0.0
    for extended in (True, False):
        result = evaluate(sae, world, num_samples=256, extended=extended, show_progress=False)
        assert math.isfinite(result.explained_variance) and math.isfinite(result.shrinkage)
        assert result.latent_precision[3] == 0.0  # the zero row's latent never fires


@pytest.mark.parametrize(("mean_rows", "exc"), [(0, ValueError), (True, TypeError), (2.0, TypeError)])
def test_accumulator_mean_rows(mean_rows: Any, exc: type) -> None:
    with pytest.raises(exc, match=r"^mean_rows"):
        EvalAccumulator(np.eye(4, dtype=np.float32), np.eye(4, dtype=np.float32), mean_rows=mean_rows)


@pytest.mark.parametrize(
    ("args", "exc", "name"),
    [
        ((NAN, 1.0, 2.0), ValueError, "loss_clean"),
        ((1.0, INF, 2.0), ValueError, "loss_reconstructed"),
        ((1.0, 1.5, "x"), TypeError, "loss_zero_ablation"),
    ],
)
def test_reconstruction_score_arguments(args: tuple[Any, ...], exc: type, name: str) -> None:
    with pytest.raises(exc) as info:
        reconstruction_score(*args)
    assert str(info.value).startswith(name), str(info.value)
