"""Tests for ``synthsae.saes``: the six SAE architectures, their losses, hooks and persistence."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import pytest
import torch

from synthsae import saes
from synthsae.saes import (
    ARCHITECTURES,
    SAE,
    BatchTopKSAE,
    JumpReLUSAE,
    L0Autotuner,
    MatchingPursuitSAE,
    MatryoshkaBatchTopKSAE,
    ReLUSAE,
    TopKSAE,
    TrainOutput,
    create_sae,
    default_matryoshka_widths,
    load_sae,
    matching_pursuit,
)

D_IN, D_SAE = 16, 32


pytestmark = pytest.mark.usefixtures("single_thread")


def make(arch: str, d_in: int = D_IN, d_sae: int = D_SAE, seed: int = 0, **kwargs: Any) -> SAE:
    """A small SAE of each architecture with fixed hyper-parameters."""
    if arch == "relu":
        return ReLUSAE(d_in, d_sae, kwargs.pop("l1_coefficient", 0.05), seed=seed, **kwargs)
    if arch == "topk":
        return TopKSAE(d_in, d_sae, kwargs.pop("k", 4), seed=seed, **kwargs)
    if arch == "batchtopk":
        return BatchTopKSAE(d_in, d_sae, kwargs.pop("k", 4), seed=seed, **kwargs)
    if arch == "jumprelu":
        return JumpReLUSAE(d_in, d_sae, kwargs.pop("target_l0", 4.0), seed=seed, **kwargs)
    if arch == "matryoshka":
        widths = kwargs.pop("widths", [4, 16])
        return MatryoshkaBatchTopKSAE(d_in, d_sae, kwargs.pop("k", 4), widths, seed=seed, **kwargs)
    if arch == "mp":
        return MatchingPursuitSAE(d_in, d_sae, kwargs.pop("k", 4), seed=seed, **kwargs)
    raise AssertionError(arch)


ALL = ["relu", "topk", "batchtopk", "jumprelu", "matryoshka", "mp"]


def gaussian(n: int, d: int = D_IN, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def sparse_data(n: int, d: int = 32, num_features: int = 64, p: float = 0.06, seed: int = 0) -> torch.Tensor:
    """x = sparse nonnegative codes · random unit dictionary + a constant bias; ``[n, d]``."""
    g = torch.Generator().manual_seed(seed)
    dictionary = torch.randn(num_features, d, generator=g)
    dictionary /= dictionary.norm(dim=1, keepdim=True)
    codes = (torch.rand(n, num_features, generator=g) < p) * (1 + torch.rand(n, num_features, generator=g))
    return codes @ dictionary + 0.3


def step(
    sae: SAE, opt: torch.optim.Optimizer, x: torch.Tensor, dead: torch.Tensor | None = None
) -> TrainOutput:
    out = sae.training_forward(x, dead_mask=dead)
    out.loss.backward()
    opt.step()
    opt.zero_grad()
    sae.after_step(out)
    return out


def sae_mse(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (x_hat - x).pow(2).sum(dim=-1).mean()


# ------------------------------------------------------------------------------------------ shapes, init


def test_registry() -> None:
    assert set(ARCHITECTURES) == {
        "relu",
        "topk",
        "batchtopk",
        "jumprelu",
        "matryoshka",
        "mp",
        "gated",
        "abstopk",
        "lista-matryoshka",
    }
    for name, cls in ARCHITECTURES.items():
        assert cls.architecture == name
        assert issubclass(cls, SAE)


@pytest.mark.parametrize("arch", ALL)
def test_shapes_and_consistency(arch: str) -> None:
    sae = make(arch)
    assert (sae.d_in, sae.d_sae) == (D_IN, D_SAE)
    assert sae.W_enc.shape == (D_IN, D_SAE)
    assert sae.W_dec.shape == (D_SAE, D_IN)
    assert sae.b_dec.shape == (D_IN,)
    params = dict(sae.named_parameters())
    if arch == "mp":
        assert "W_enc" not in params and "b_enc" not in params  # tied encoder, no encoder bias (SAELens)
        torch.testing.assert_close(sae.W_enc, sae.W_dec.T, rtol=0, atol=0)
    else:
        assert sae.b_enc.shape == (D_SAE,)
        assert {"W_enc", "b_enc", "W_dec", "b_dec"} <= set(params)
    assert all(p.dtype == torch.float32 for p in params.values())

    x = gaussian(8)
    z = sae.encode(x)
    x_hat = sae.decode(z)
    assert z.shape == (8, D_SAE) and x_hat.shape == (8, D_IN)
    torch.testing.assert_close(sae(x), x_hat, rtol=0, atol=0)
    torch.testing.assert_close(x_hat, z @ (sae.W_dec / _row_scale(sae)) + sae.b_dec)

    out = sae.training_forward(x)
    assert out.loss.shape == () and out.loss.requires_grad
    assert out.latents.shape == (8, D_SAE) and out.reconstruction.shape == (8, D_IN)
    assert "mse" in out.losses
    assert all(v.shape == () and not v.requires_grad for v in out.losses.values())
    torch.testing.assert_close(out.losses["mse"], sae_mse(out.reconstruction, x))


def _row_scale(sae: SAE) -> torch.Tensor:
    """Per-latent divisor applied by decode (decoder norms for the rescaling TopK family, else 1)."""
    if getattr(sae, "rescale_acts_by_decoder_norm", False):
        return sae.W_dec.norm(dim=-1)[:, None]
    return torch.ones(sae.d_sae, 1)


@pytest.mark.parametrize(
    ("arch", "norm"),
    [("relu", 0.1), ("topk", 0.1), ("batchtopk", 0.1), ("matryoshka", 0.1), ("jumprelu", 0.5), ("mp", 1.0)],
)
def test_init_conventions(arch: str, norm: float) -> None:
    sae = make(arch, seed=3)
    torch.testing.assert_close(sae.W_dec.norm(dim=-1), torch.full((D_SAE,), norm))
    torch.testing.assert_close(sae.W_enc, sae.W_dec.T, rtol=0, atol=0)
    assert not sae.b_dec.any()
    if arch != "mp":
        assert not sae.b_enc.any()
    again, other = make(arch, seed=3), make(arch, seed=4)
    assert torch.equal(again.W_dec, sae.W_dec)
    assert not torch.allclose(other.W_dec, sae.W_dec)
    if arch != "mp":
        custom = make(arch, decoder_init_norm=0.7)
        torch.testing.assert_close(custom.W_dec.norm(dim=-1), torch.full((D_SAE,), 0.7))


@pytest.mark.parametrize("arch", ALL)
def test_input_is_centred_by_b_dec(arch: str) -> None:
    """Encoding sees ``x - b_dec``: shifting x and b_dec together leaves z unchanged and shifts x̂."""
    sae = make(arch)
    x = gaussian(8, seed=1)
    shift = gaussian(1, seed=2)[0]
    z0, x_hat0 = sae.encode(x), sae(x)
    with torch.no_grad():
        sae.b_dec += shift
    torch.testing.assert_close(sae.encode(x + shift), z0, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sae(x + shift), x_hat0 + shift, atol=1e-5, rtol=1e-5)


def test_bad_input_shapes() -> None:
    sae = make("topk")
    with pytest.raises(ValueError, match="x must have shape"):
        sae.encode(gaussian(4, d=D_IN + 1))
    with pytest.raises(ValueError, match="x must have shape"):
        sae.encode(torch.zeros(D_IN))
    with pytest.raises(ValueError, match="dead_mask"):
        sae.training_forward(gaussian(4), dead_mask=torch.zeros(D_SAE + 1, dtype=torch.bool))


# ------------------------------------------------------------------------------------------ ReLU


def test_relu_loss_by_hand_and_warm_up() -> None:
    sae = ReLUSAE(D_IN, D_SAE, 0.3, l1_warm_up_steps=4, seed=0)
    with torch.no_grad():
        sae.W_dec.mul_(torch.linspace(0.5, 3.0, D_SAE)[:, None])  # non-uniform decoder norms
        sae.b_enc.fill_(0.05)
    x = gaussian(16)
    z = ((x - sae.b_dec) @ sae.W_enc + sae.b_enc).relu()
    x_hat = z @ sae.W_dec + sae.b_dec
    mse = (x_hat - x).pow(2).sum(-1).mean()
    penalty = (z * sae.W_dec.norm(dim=-1)).sum(-1).mean()
    assert (z > 0).any() and (z == 0).any()

    out = sae.training_forward(x)  # step 0 of a 4-step warm-up: coefficient 0
    torch.testing.assert_close(out.losses["mse"], mse.detach())
    torch.testing.assert_close(out.losses["l1"], torch.tensor(0.0))
    for _ in range(2):
        sae.after_step(out)
    out = sae.training_forward(x)  # step 2: coefficient 0.3 · 2/4
    torch.testing.assert_close(out.losses["l1"], (0.15 * penalty).detach())
    torch.testing.assert_close(out.loss, mse + 0.15 * penalty)
    for _ in range(5):
        sae.after_step(out)
    assert sae.effective_l1_coefficient == pytest.approx(0.3)


def test_relu_autotuner_raises_coefficient_when_l0_too_high() -> None:
    sae = ReLUSAE(D_IN, D_SAE, 0.1, target_l0=1.0, autotune_gain=0.1, seed=0)
    x = gaussian(64)
    out = sae.training_forward(x)
    assert saes.batch_l0(out.latents) > 5  # ~half the latents fire at init
    sae.after_step(out)
    assert sae.effective_l1_coefficient > 0.1
    assert ReLUSAE(D_IN, D_SAE, 0.1).autotuner is None


# ------------------------------------------------------------------------------------------ TopK family


def test_topk_exactly_k_per_row() -> None:
    sae = TopKSAE(D_IN, D_SAE, 5, seed=0)
    with torch.no_grad():
        sae.b_enc.fill_(1.0)  # most pre-activations positive, so the k largest are all positive
    x = gaussian(32)
    z = sae.encode(x)
    assert ((z != 0).sum(-1) == 5).all()
    pre = ((x - sae.b_dec) @ sae.W_enc + sae.b_enc) * sae.W_dec.norm(dim=-1)
    kept = pre.topk(5, dim=-1).indices
    assert torch.equal(torch.sort(kept).values, torch.sort(z.topk(5, dim=-1).indices).values)
    torch.testing.assert_close(z.gather(1, kept), pre.gather(1, kept))


def test_topk_relu_drops_negative_selections() -> None:
    sae = TopKSAE(D_IN, D_SAE, 5, seed=0)
    with torch.no_grad():
        sae.b_enc.fill_(-100.0)  # every pre-activation negative
    assert not sae.encode(gaussian(4)).any()


@pytest.mark.parametrize("arch", ["relu", "topk", "batchtopk", "matryoshka", "jumprelu"])
def test_fold_decoder_norm_preserves_the_function(arch: str) -> None:
    sae = make(arch)
    with torch.no_grad():
        sae.W_dec.mul_(torch.linspace(0.2, 5.0, D_SAE)[:, None])
        sae.b_enc.copy_(0.05 * gaussian(1, d=D_SAE, seed=3)[0])
        if arch in ("batchtopk", "matryoshka"):
            sae.topk_threshold.fill_(0.05)
        if arch == "jumprelu":
            sae.threshold.fill_(0.02)
    sae.eval()
    x = gaussian(16)
    before, z_before = sae(x), sae.encode(x)
    assert (z_before != 0).any()
    sae.fold_decoder_norm()
    torch.testing.assert_close(sae.W_dec.norm(dim=-1), torch.ones(D_SAE))
    torch.testing.assert_close(sae(x), before, atol=1e-5, rtol=1e-5)
    if getattr(sae, "rescale_acts_by_decoder_norm", False):  # latents already in unit-decoder units
        torch.testing.assert_close(sae.encode(x), z_before, atol=1e-5, rtol=1e-5)
    with pytest.raises(NotImplementedError):
        make("mp").fold_decoder_norm()
    with pytest.raises(NotImplementedError):
        make("topk", rescale_acts_by_decoder_norm=False).fold_decoder_norm()


@pytest.mark.parametrize("arch", ["topk", "batchtopk", "matryoshka"])
def test_rescaled_family_uses_unit_decoder_directions(arch: str) -> None:
    """With rescale_acts_by_decoder_norm a row's norm acts as an encoder gain: scaling W_dec row l by s
    equals scaling encoder column l by s; after_step leaves the decoder alone (as SAELens)."""
    sae, twin = make(arch), make(arch)
    scale = torch.linspace(0.2, 5.0, D_SAE)
    with torch.no_grad():
        sae.W_dec.mul_(scale[:, None])
        twin.W_enc.mul_(scale)
    x = gaussian(16)
    torch.testing.assert_close(sae(x), twin(x), atol=1e-5, rtol=1e-5)
    out = sae.training_forward(x)
    sae.after_step(out)
    torch.testing.assert_close(sae.W_dec.norm(dim=-1), 0.1 * scale)


@pytest.mark.parametrize("arch", ["topk", "batchtopk", "matryoshka"])
def test_after_step_renormalises_without_rescaling(arch: str) -> None:
    sae = make(arch, rescale_acts_by_decoder_norm=False)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-2)
    step(sae, opt, gaussian(32))
    torch.testing.assert_close(sae.W_dec.norm(dim=-1), torch.ones(D_SAE))


def test_mp_after_step_renormalises_only_when_asked() -> None:
    x = gaussian(32)
    for normalize in (False, True):
        sae = make("mp", normalize_decoder=normalize)
        step(sae, torch.optim.Adam(sae.parameters(), lr=5e-2), x)
        norms = sae.W_dec.norm(dim=-1)
        if normalize:
            torch.testing.assert_close(norms, torch.ones(D_SAE))
        else:
            assert (norms - 1).abs().max() > 1e-3  # SAELens lets MP decoder norms drift


def test_batchtopk_training_keeps_k_times_batch() -> None:
    sae = BatchTopKSAE(D_IN, D_SAE, 3, seed=0)
    x = gaussian(20)
    z = sae.encode(x)  # training mode
    assert int((z != 0).sum()) == 3 * 20
    per_row = (z != 0).sum(-1)
    assert per_row.min() != per_row.max()  # the budget is shared across the batch, not per row
    pre = ((x - sae.b_dec) @ sae.W_enc + sae.b_enc) * sae.W_dec.norm(dim=-1)
    kept = z != 0
    torch.testing.assert_close(z[kept], pre[kept])
    assert pre[kept].min() >= pre[~kept].max()
    fractional = BatchTopKSAE(D_IN, D_SAE, 2.5, seed=0)
    assert int((fractional.encode(x) != 0).sum()) == 50
    torch.testing.assert_close(sae.training_forward(x).latents, z)


def test_batchtopk_threshold_ema_and_eval_mode() -> None:
    sae = BatchTopKSAE(D_IN, D_SAE, 3, seed=0)
    x = gaussian(20)
    assert float(sae.topk_threshold) == 0.0
    out = sae.training_forward(x)
    min_kept = float(out.latents[out.latents > 0].min())
    sae.after_step(out)
    assert float(sae.topk_threshold) == pytest.approx(0.01 * min_kept, rel=1e-12)
    for _ in range(2000):
        sae.update_threshold(out.latents)
    assert float(sae.topk_threshold) == pytest.approx(min_kept, rel=1e-6)
    assert sae.topk_threshold.dtype == torch.float64
    before = float(sae.topk_threshold)
    sae.update_threshold(torch.zeros(4, D_SAE))  # nothing positive: no update
    assert float(sae.topk_threshold) == before

    sae.eval()
    pre = ((x - sae.b_dec) @ sae.W_enc + sae.b_enc) * sae.W_dec.norm(dim=-1)
    theta = float(sae.topk_threshold)
    expected = torch.where(pre > theta, pre, torch.zeros_like(pre))
    torch.testing.assert_close(sae.encode(x), expected)
    with torch.no_grad():
        sae.topk_threshold.fill_(1e9)
    assert not sae.encode(x).any()
    with torch.no_grad():
        sae.topk_threshold.fill_(0.0)
    torch.testing.assert_close(sae.encode(x), pre.relu())


def test_auxk_zero_without_dead_latents_and_matches_hand_value() -> None:
    sae = TopKSAE(D_IN, D_SAE, 3, seed=0)
    with torch.no_grad():
        sae.W_dec.mul_(torch.linspace(0.5, 2.0, D_SAE)[:, None])
    x = gaussian(16)
    assert float(sae.training_forward(x).losses["auxk"]) == 0.0
    none_dead = torch.zeros(D_SAE, dtype=torch.bool)
    assert float(sae.training_forward(x, dead_mask=none_dead).losses["auxk"]) == 0.0

    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[[1, 4, 9, 20, 31]] = True  # 5 dead latents < k_aux = d_in // 2 = 8 → scale 5/8
    out = sae.training_forward(x, dead_mask=dead)
    norms = sae.W_dec.norm(dim=-1)
    pre = ((x - sae.b_dec) @ sae.W_enc + sae.b_enc) * norms
    residual = x - out.reconstruction
    aux_acts = torch.where(dead, pre, torch.zeros_like(pre))  # all 5 dead latents, not ReLU'd
    recon = (aux_acts / norms) @ sae.W_dec
    expected = 5 / 8 * (recon - residual).pow(2).sum(-1).mean()
    assert float(out.losses["auxk"]) > 0
    torch.testing.assert_close(out.losses["auxk"], expected.detach())
    torch.testing.assert_close(out.loss.detach(), out.losses["mse"] + expected.detach())

    many = torch.ones(D_SAE, dtype=torch.bool)  # 32 dead ≥ k_aux: top 8 per row, scale 1
    out = sae.training_forward(x, dead_mask=many)
    values, idx = pre.topk(8, dim=-1)
    recon = (torch.zeros_like(pre).scatter(1, idx, values) / norms) @ sae.W_dec
    expected = (recon - (x - out.reconstruction)).pow(2).sum(-1).mean()
    torch.testing.assert_close(out.losses["auxk"], expected.detach())
    half = TopKSAE(D_IN, D_SAE, 3, aux_coefficient=0.5, seed=0)
    with torch.no_grad():
        half.W_dec.copy_(sae.W_dec)
    torch.testing.assert_close(
        half.training_forward(x, dead_mask=many).losses["auxk"], 0.5 * expected.detach()
    )


def test_auxk_gradient_reaches_only_dead_latents() -> None:
    sae = BatchTopKSAE(D_IN, D_SAE, 3, seed=0)
    x = gaussian(16)
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[:4] = True
    out = sae.training_forward(x, dead_mask=dead)
    mse_only = sae.training_forward(x)
    (out.loss - mse_only.loss).backward()  # the AuxK term alone
    grad = sae.W_dec.grad
    assert grad is not None
    assert grad[:4].abs().max() > 1e-2
    assert grad[4:].abs().max() < 1e-6  # zero up to float cancellation between the two MSE terms


# ------------------------------------------------------------------------------------------ Matryoshka


def test_matryoshka_loss_is_sum_of_prefix_losses() -> None:
    sae = MatryoshkaBatchTopKSAE(D_IN, D_SAE, 4, [4, 16], seed=0)
    assert sae.widths == [4, 16, D_SAE]
    with torch.no_grad():
        sae.W_dec.mul_(torch.linspace(0.5, 2.0, D_SAE)[:, None])
    x = gaussian(24)
    out = sae.training_forward(x)
    z = out.latents
    assert int((z != 0).sum()) == 4 * 24
    unit = sae.W_dec / sae.W_dec.norm(dim=-1, keepdim=True)
    prefix = {w: sae_mse(z[:, :w] @ unit[:w] + sae.b_dec, x) for w in sae.widths}
    assert set(out.losses) == {"mse", "mse_4", "mse_16", "auxk"}
    torch.testing.assert_close(out.losses["mse_4"], prefix[4].detach())
    torch.testing.assert_close(out.losses["mse_16"], prefix[16].detach())
    torch.testing.assert_close(out.losses["mse"], prefix[D_SAE].detach())
    torch.testing.assert_close(out.loss, prefix[4] + prefix[16] + prefix[D_SAE])
    assert prefix[4] > prefix[16] > prefix[D_SAE]  # the sum is not just the full-width loss
    torch.testing.assert_close(out.reconstruction, sae.decode(z))


def test_matryoshka_per_level_auxk() -> None:
    sae = MatryoshkaBatchTopKSAE(D_IN, D_SAE, 4, [4, 16], seed=0)
    x = gaussian(24)
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[[5, 7, 10]] = True  # all in the level [4, 16)
    out = sae.training_forward(x, dead_mask=dead)
    z = out.latents
    norms = sae.W_dec.norm(dim=-1)
    unit = sae.W_dec / norms[:, None]
    pre = ((x - sae.b_dec) @ sae.W_enc + sae.b_enc) * norms
    residual = x - (z[:, :16] @ unit[:16] + sae.b_dec)  # residual of the level's own prefix
    recon = pre[:, [5, 7, 10]] @ unit[[5, 7, 10]]
    expected = 3 / 8 * (recon - residual).pow(2).sum(-1).mean()
    torch.testing.assert_close(out.losses["auxk"], expected.detach())
    flat = MatryoshkaBatchTopKSAE(D_IN, D_SAE, 4, [4, 16], use_matryoshka_aux_loss=False, seed=0)
    residual_full = x - flat.training_forward(x).reconstruction
    expected_flat = 3 / 8 * (recon - residual_full).pow(2).sum(-1).mean()
    torch.testing.assert_close(
        flat.training_forward(x, dead_mask=dead).losses["auxk"], expected_flat.detach()
    )
    assert float(sae.training_forward(x).losses["auxk"]) == 0.0


def test_matryoshka_widths() -> None:
    assert MatryoshkaBatchTopKSAE(D_IN, D_SAE, 2, [8, D_SAE]).widths == [8, D_SAE]
    assert MatryoshkaBatchTopKSAE(D_IN, D_SAE, 2, (8,)).widths == [8, D_SAE]
    for bad in ([8, 8], [16, 8], [0, 8], [8, D_SAE + 1], []):
        with pytest.raises(ValueError, match="widths"):
            MatryoshkaBatchTopKSAE(D_IN, D_SAE, 2, bad)
    with pytest.raises(TypeError, match="widths"):
        MatryoshkaBatchTopKSAE(D_IN, D_SAE, 2, [4.5, 8])  # type: ignore[list-item]
    assert default_matryoshka_widths(4096) == [128, 512, 2048, 4096]
    assert default_matryoshka_widths(16384) == [128, 512, 2048, 16384]
    assert default_matryoshka_widths(1024) == [128, 512, 1024]
    assert default_matryoshka_widths(64) == [8, 32, 64]
    assert default_matryoshka_widths(3) == [1, 3]
    assert default_matryoshka_widths(1) == [1]


# ------------------------------------------------------------------------------------------ JumpReLU


def test_jumprelu_encode_and_threshold_ste_gradient() -> None:
    sae = JumpReLUSAE(D_IN, D_SAE, 3.0, bandwidth=0.5, init_threshold=0.2, l0_coefficient=0.7, seed=0)
    with torch.no_grad():
        sae.b_enc.copy_(0.3 * gaussian(1, d=D_SAE, seed=5)[0])
    x = gaussian(32)
    pre = ((x - sae.b_dec) @ sae.W_enc + sae.b_enc).detach()
    theta, eps = sae.threshold.detach(), 0.5
    z = pre.relu() * (pre > theta)
    torch.testing.assert_close(sae.encode(x), z)

    out = sae.training_forward(x)
    torch.testing.assert_close(out.latents, z)
    torch.testing.assert_close(out.losses["l0"], 0.7 * (pre > theta).float().sum(-1).mean())
    out.loss.backward()
    # dL/dθ by hand: the rectangle-kernel STEs of both the JumpReLU (MSE) and the step (L0) terms.
    window = ((pre - theta) / eps).abs() < 0.5
    grad_z = 2 * (z @ sae.W_dec + sae.b_dec - x) @ sae.W_dec.T / x.shape[0]
    expected = (-(theta / eps) * window * grad_z.detach()).sum(0) - 0.7 / eps * window.sum(0) / x.shape[0]
    assert sae.threshold.grad is not None and window.any()
    assert sae.threshold.grad.abs().max() > 0
    torch.testing.assert_close(sae.threshold.grad, expected)
    # the L0 term sends no gradient to the pre-activations: b_enc only gets the MSE gradient
    torch.testing.assert_close(sae.b_enc.grad, (grad_z.detach() * (pre > theta)).sum(0))


def test_jumprelu_after_step_projects_threshold() -> None:
    sae = make("jumprelu")
    out = sae.training_forward(gaussian(8))
    with torch.no_grad():
        sae.threshold[:5] = -0.3
    sae.after_step(out)
    assert sae.threshold.min() >= 0
    assert int(sae.n_steps) == 1


def test_l0_autotuner_update_rule() -> None:
    tuner = L0Autotuner(10.0, gain=0.01)
    m = tuner.update(20.0, step=0)  # first observation; error 10 → rel 1; rate 0 → full gain
    assert m == pytest.approx(1 + 0.01 * math.tanh(10.0))
    m2 = tuner.update(0.0, step=1)  # EMA 19.8, still above the target, now moving toward it → damped
    assert float(tuner.smoothed_l0) == pytest.approx(19.8)
    assert m2 == pytest.approx(m * (1 + 0.01 * 0.01 * math.tanh(0.98 * 10)))
    late = L0Autotuner(10.0, gain=0.5, start_step=5)
    assert late.update(20.0, step=4) == 1.0
    for s in range(5, 40):
        late.update(20.0, step=s)
    assert late.value == 100.0  # clamped at max_multiplier
    low = L0Autotuner(10.0, gain=0.5)
    for s in range(40):
        low.update(1.0, step=s)
    assert low.value == 0.01


def _train_jumprelu(x: torch.Tensor, target: float, gain: float) -> tuple[JumpReLUSAE, float]:
    sae = JumpReLUSAE(32, 64, target, autotune_gain=gain, autotune_smoothing=0.9, seed=0)
    opt = torch.optim.Adam(sae.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    l0s = []
    flushed = torch.set_flush_denormal(True)  # subnormal floats make this run ~10x slower on CPU
    try:
        for _ in range(300):
            out = step(sae, opt, x[torch.randint(0, x.shape[0], (256,), generator=g)])
            l0s.append(saes.batch_l0(out.latents))
    finally:
        if flushed:
            torch.set_flush_denormal(False)
    return sae, sum(l0s[-50:]) / 50


def test_jumprelu_controller_moves_l0_toward_target() -> None:
    x = sparse_data(4096)
    fixed, l0_fixed = _train_jumprelu(x, 1.0, gain=0.0)
    assert fixed.effective_l0_coefficient == 1.0
    assert 1.5 < l0_fixed < 4.0  # without control the L0 settles between the two targets below
    _, l0_low = _train_jumprelu(x, 1.0, gain=0.05)
    assert l0_low < l0_fixed - 0.5  # L0 was too high, so the controller pushed it down
    assert abs(l0_low - 1.0) < 0.3 * abs(l0_fixed - 1.0)
    high, l0_high = _train_jumprelu(x, 5.0, gain=0.05)
    assert high.effective_l0_coefficient < 0.5  # L0 was too low, so the coefficient was lowered
    assert l0_high > l0_fixed + 1.0


# ------------------------------------------------------------------------------------------ matching pursuit


def _orthonormal_rows(rows: int, cols: int, seed: int = 0) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(cols, rows, generator=torch.Generator().manual_seed(seed)))
    return q.T.contiguous()


def test_mp_recovers_sparse_code_with_orthonormal_decoder() -> None:
    sae = MatchingPursuitSAE(16, 8, 3, seed=0)
    with torch.no_grad():
        sae.W_dec.copy_(_orthonormal_rows(8, 16))
        sae.b_dec.copy_(gaussian(1, d=16, seed=9)[0])
    code = torch.zeros(5, 8)
    g = torch.Generator().manual_seed(2)
    for row in range(5):
        support = torch.randperm(8, generator=g)[:3]
        code[row, support] = 0.5 + torch.rand(3, generator=g)
    x = code @ sae.W_dec + sae.b_dec
    torch.testing.assert_close(sae.encode(x), code, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sae(x), x, atol=1e-5, rtol=1e-5)


def test_mp_residual_norm_decreases_and_positive_only() -> None:
    w = torch.randn(48, 16, generator=torch.Generator().manual_seed(0))
    w /= w.norm(dim=-1, keepdim=True)
    r = gaussian(10)
    norms = [r.norm(dim=-1)]
    for iterations in range(1, 9):
        z = matching_pursuit(r, w, iterations)
        assert ((z != 0).sum(-1) <= iterations).all()
        norms.append((r - z @ w).norm(dim=-1))
    for before, after in itertools.pairwise(norms):
        assert (after <= before + 1e-6).all()
    assert (norms[-1] < 0.8 * norms[0]).all()
    assert (matching_pursuit(r, w, 8) >= 0).all()
    # only positive inner products are used: an input anti-aligned with every atom gives z = 0
    sae = MatchingPursuitSAE(16, 2, 2, seed=0)
    with torch.no_grad():
        sae.W_dec.copy_(_orthonormal_rows(2, 16))
    assert not sae.encode(-(sae.W_dec[0] + sae.W_dec[1])[None]).any()


def test_mp_stopping_rules_and_reselection() -> None:
    w = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    x = torch.tensor([[2.0, 0.5]])
    # it 1: scores (2.0, 1.6) → latent 0, c = 2, r = (0, 0.5); it 2: scores (0, 0.4) → latent 1, c = 0.4
    torch.testing.assert_close(matching_pursuit(x, w, 2), torch.tensor([[2.0, 0.4]]))
    # residual_threshold: a row stops once ‖r‖ < threshold (‖r‖ = 0.5 after iteration 1)
    torch.testing.assert_close(matching_pursuit(x, w, 2, residual_threshold=0.6), torch.tensor([[2.0, 0.0]]))
    # anti-correlated atoms: latent 0 is picked again in iteration 3 and its coefficient accumulates
    w = torch.tensor([[1.0, 0.0], [-0.6, 0.8]])
    x = torch.tensor([[1.0, 1.0]])
    # it 1: latent 0, c = 1, r = (0, 1); it 2: latent 1, c = 0.8, r = (0.48, 0.36); it 3: latent 0, c = 0.48,
    # r = (0, 0.36); it 4: latent 1, c = 0.288
    torch.testing.assert_close(matching_pursuit(x, w, 3), torch.tensor([[1.48, 0.8]]))
    torch.testing.assert_close(matching_pursuit(x, w, 4), torch.tensor([[1.48, 1.088]]))
    # stop_on_duplicate_support: iteration 3 leaves the support unchanged, so the row stops after it
    stopped = matching_pursuit(x, w, 4, stop_on_duplicate_support=True)
    torch.testing.assert_close(stopped, torch.tensor([[1.48, 0.8]]))
    sae = MatchingPursuitSAE(2, 2, 2, stop_on_duplicate_support=True)
    with torch.no_grad():
        sae.W_dec.copy_(w)
        sae.b_dec.fill_(0.25)
    torch.testing.assert_close(sae.encode(x + 0.25), matching_pursuit(x, w, 2))


# ------------------------------------------------------------------------------------------ persistence


@pytest.mark.parametrize("arch", ALL)
def test_save_load_round_trip(arch: str, tmp_path: Any) -> None:
    kwargs: dict[str, Any] = {"target_l0": 2.0} if arch == "relu" else {}
    sae = make(arch, seed=1, **kwargs)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-2)
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[::3] = True
    for i in range(3):
        step(sae, opt, gaussian(32, seed=i), dead)
    path = tmp_path / "sae"
    sae.save(path)
    assert sorted(p.name for p in path.iterdir()) == ["cfg.json", "sae_weights.safetensors"]
    config = json.loads((path / "cfg.json").read_text())
    assert config == sae.config() and config["architecture"] == arch

    loaded = load_sae(path)
    assert type(loaded) is type(sae)
    assert loaded.config() == sae.config()
    state, loaded_state = sae.state_dict(), loaded.state_dict()
    assert state.keys() == loaded_state.keys()
    for name, tensor in state.items():
        assert torch.equal(tensor, loaded_state[name]), name
        assert tensor.dtype == loaded_state[name].dtype, name
    x = gaussian(16, seed=7)
    for mode in (True, False):
        sae.train(mode)
        loaded.train(mode)
        assert torch.equal(sae(x), loaded(x))
    assert type(type(sae).load(path)) is type(sae)
    assert int(loaded.n_steps) == 3


def test_save_refuses_overwrite_and_load_checks_class(tmp_path: Any) -> None:
    sae = make("topk", seed=0)
    path = tmp_path / "sae"
    sae.save(path)
    other = make("topk", seed=1)
    with pytest.raises(FileExistsError, match="overwrite"):
        other.save(path)
    assert torch.equal(load_sae(path).W_dec, sae.W_dec)
    other.save(path, overwrite=True)
    assert torch.equal(load_sae(path).W_dec, other.W_dec)
    assert not [p for p in path.iterdir() if p.name.startswith(".")]  # no temporary files left behind
    (tmp_path / "empty").mkdir()
    sae.save(tmp_path / "empty")  # an existing empty directory is fine
    with pytest.raises(ValueError, match="topk"):
        BatchTopKSAE.load(path)
    state = torch.random.get_rng_state()
    load_sae(path)
    assert torch.equal(torch.random.get_rng_state(), state)  # loading does not consume global RNG state


# ------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: TopKSAE(0, 8, 2), "d_in"),
        (lambda: TopKSAE(8, -1, 2), "d_sae"),
        (lambda: TopKSAE(8.0, 8, 2), "d_in"),
        (lambda: TopKSAE(8, 8, 0), "k"),
        (lambda: TopKSAE(8, 8, 9), "k"),
        (lambda: TopKSAE(8, 8, 2.0), "k"),
        (lambda: TopKSAE(8, 8, True), "k"),
        (lambda: TopKSAE(8, 8, 2, aux_coefficient=-1), "aux_coefficient"),
        (lambda: TopKSAE(8, 8, 2, decoder_init_norm=0), "decoder_init_norm"),
        (lambda: TopKSAE(8, 8, 2, seed=-1), "seed"),
        (lambda: BatchTopKSAE(8, 8, 0.0), "k"),
        (lambda: BatchTopKSAE(8, 8, 8.5), "k"),
        (lambda: BatchTopKSAE(8, 8, 2, topk_threshold_lr=0), "topk_threshold_lr"),
        (lambda: BatchTopKSAE(8, 8, 2, topk_threshold_lr=1.5), "topk_threshold_lr"),
        (lambda: ReLUSAE(8, 8, -0.1), "l1_coefficient"),
        (lambda: ReLUSAE(8, 8, float("nan")), "l1_coefficient"),
        (lambda: ReLUSAE(8, 8, 1.0, l1_warm_up_steps=-1), "l1_warm_up_steps"),
        (lambda: ReLUSAE(8, 8, 1.0, target_l0=0), "target_l0"),
        (lambda: JumpReLUSAE(8, 8, 0.0), "target_l0"),
        (lambda: JumpReLUSAE(8, 8, 9.0), "target_l0"),
        (lambda: JumpReLUSAE(8, 8, 2.0, bandwidth=0), "bandwidth"),
        (lambda: JumpReLUSAE(8, 8, 2.0, autotune_gain=-1), "autotune_gain"),
        (lambda: JumpReLUSAE(8, 8, 2.0, init_threshold=-1), "init_threshold"),
        (lambda: MatryoshkaBatchTopKSAE(8, 8, 2, [4, 2]), "widths"),
        (lambda: MatryoshkaBatchTopKSAE(8, 8, 2, 4), "widths"),
        (lambda: MatchingPursuitSAE(8, 8, 0), "k"),
        (lambda: MatchingPursuitSAE(8, 8, 2, residual_threshold=-1), "residual_threshold"),
        (lambda: MatchingPursuitSAE(8, 8, 2, decoder_init_norm=0.5), "decoder_init_norm"),
        (lambda: MatchingPursuitSAE(8, 8, 2, stop_on_duplicate_support=1), "stop_on_duplicate_support"),
        (lambda: create_sae("no-such-architecture", 8, 8, l0=2), "architecture"),
        (lambda: create_sae("topk", 8, 8, l0=0), "l0"),
        (lambda: create_sae("topk", 8, 8, l0=0.3), "l0"),
    ],
)
def test_bad_arguments(build: Any, name: str) -> None:
    with pytest.raises((ValueError, TypeError), match=name):
        build()


def test_create_sae() -> None:
    built = {arch: create_sae(arch, 32, 256, l0=5.4, seed=0) for arch in ARCHITECTURES}
    assert {arch: type(sae) for arch, sae in built.items()} == ARCHITECTURES
    assert built["topk"].k == 5 and built["mp"].k == 5
    assert built["batchtopk"].k == 5.4 and built["matryoshka"].k == 5.4
    assert create_sae("batchtopk", 32, 256, l0=20).config()["k"] == 20
    assert built["matryoshka"].widths == [128, 256]
    assert built["jumprelu"].target_l0 == 5.4
    relu = built["relu"]
    assert relu.l1_coefficient == 2.0 and relu.autotuner is not None and relu.autotuner.target_l0 == 5.4
    fixed = create_sae("relu", 32, 256, l0=5, l1_coefficient=0.5, target_l0=None)
    assert fixed.l1_coefficient == 0.5 and fixed.autotuner is None
    assert create_sae("matryoshka", 32, 256, l0=4, widths=[16, 64]).widths == [16, 64, 256]
    assert create_sae("mp", 32, 64, l0=3, residual_threshold=0.1).residual_threshold == 0.1


# ------------------------------------------------------------------------------------------ training


@pytest.mark.parametrize("arch", ALL)
def test_training_reduces_mse(arch: str) -> None:
    torch.manual_seed(0)
    x = sparse_data(4096)
    kwargs: dict[str, Any] = {"seed": 0}
    if arch == "relu":
        kwargs.update(l1_coefficient=0.05, target_l0=None)
    if arch == "jumprelu":
        kwargs.update(autotune_gain=0.05)
    sae = create_sae(arch, 32, 64, l0=4, **kwargs)
    sae.eval()
    with torch.no_grad():
        initial = float(sae_mse(sae(x), x))
    sae.train()
    opt = torch.optim.Adam(sae.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    since_fired = torch.zeros(64, dtype=torch.long)
    for _ in range(300):
        out = step(sae, opt, x[torch.randint(0, x.shape[0], (256,), generator=g)], since_fired > 50)
        assert torch.isfinite(out.loss)
        since_fired += 1
        since_fired[(out.latents != 0).any(0)] = 0
    sae.eval()
    with torch.no_grad():
        final = float(sae_mse(sae(x), x))
        l0 = float((sae.encode(x) != 0).float().sum(-1).mean())
    assert final < 0.5 * initial, (initial, final)
    if arch != "relu":
        assert l0 < 8  # the sparsity mechanism is working (eval mode for the batch-top-k variants)


def test_mp_gradients_are_the_same_on_every_call() -> None:
    """Matching pursuit's decoder gradient is bit-identical across repeated passes with two intra-op
    threads (a backward through ``W_dec[index]`` summed repeated rows in a thread-dependent order)."""
    torch.set_num_threads(2)  # the autouse fixture restores the count
    x = torch.randn(512, 64, generator=torch.Generator().manual_seed(1))
    grads = []
    for i in range(6):
        _heap = [torch.empty(7 * j + 1) for j in range(3 * i)]  # vary the allocator's state between calls
        sae = MatchingPursuitSAE(64, 256, 6, seed=0)
        sae.training_forward(x).loss.backward()
        grads.append(sae.W_dec.grad)
    for grad in grads[1:]:
        assert torch.equal(grad, grads[0])
