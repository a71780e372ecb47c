"""JumpReLU SAE (DeepMind/SAEBench recipe as in the sweep's ``XJumpReLUTrainingSAE``).

``z = relu(pre)·H(pre - θ)`` with a per-latent threshold ``θ ≥ 0`` (a ``threshold`` parameter, projected
to ``≥ 0`` after each step, as SAELens 6.54.12 does; since θ ≥ 0 the ReLU is implied in training and
applied explicitly in ``encode``). loss = MSE + ``λ_eff · mean_b Σ_l H(pre_l - θ_l)`` with
``λ_eff = l0_coefficient · multiplier`` (an :class:`~synthsae.saes.autotuner.L0Autotuner` drives the batch
L0 to ``target_l0``). Gradients w.r.t. θ use straight-through estimators with the rectangle kernel
``K(u) = [|u| < ½]`` of width ``bandwidth`` ε: ``∂z/∂θ = -(θ/ε)·K((pre - θ)/ε)``,
``∂H/∂θ = -(1/ε)·K((pre - θ)/ε)``; ``∂z/∂pre`` is ``H(pre - θ)`` and the L0 term sends no gradient to
``pre`` (DeepMind, ``ste_to_input=False``).

**Sparse steps** (``sparse=True``, the default): only the encoder's forward product is dense (without
gradient), to find the *active* entries (``pre > θ``) and the straight-through *band* (``|pre - θ| < ε/2``,
every entry of it, as the dense step). The latents are gathered at the active entries with a gradient
that reaches the encoder through them alone, and decoded from them (:mod:`synthsae.saes.sparse_ops`). The
L0 term's value is the active count over ``b``; θ's gradient needs ``∂L/∂z`` only in the band, where
``∂L/∂z_il = ∂L/∂x̂_i · W_dec_l``: per latent, the band rows' ``∂L/∂x̂`` are summed (an ``embedding_bag``)
and dotted with its decoder row, so ``∂L/∂θ_l = -(1/ε)·(θ_l·W_dec_l·Σ_{i in band} ∂L/∂x̂_i + λ_eff·n_l/b)``
with ``n_l`` the band count, with no ``[b, d_sae]`` gradient. A step whose active entries plus an eighth of
its band entries (a band entry costs one row sum, an active one a gather and a decode) exceed
:data:`~synthsae.saes.sparse_ops.JUMPRELU_MAX_DENSITY` of ``b·d_sae`` goes dense instead, reusing the
product already computed. ``sparse=False`` is the dense reference: the same loss and gradients up to float
rounding.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import torch
import torch.nn.functional as F
from torch import nn

from synthsae._validate import as_bool, as_nonnegative, as_positive
from synthsae.saes.autotuner import AutotuneSettings
from synthsae.saes.base import SAE, TrainOutput, batch_l0, mse
from synthsae.saes.sparse_ops import (
    JUMPRELU_MAX_DENSITY,
    dense_pre,
    densify,
    entries_where,
    gather_pre,
    sparse_decode,
)


def _rectangle(u: torch.Tensor) -> torch.Tensor:
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


class _JumpReLUFn(torch.autograd.Function):
    """``x·[x > θ]`` with the rectangle-kernel STE for θ (DeepMind JumpReLU)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, threshold: torch.Tensor, bandwidth: float) -> torch.Tensor:
        ctx.save_for_backward(x, threshold)
        ctx.bandwidth = bandwidth
        return x * (x > threshold).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        x, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_threshold = (-(threshold / eps) * _rectangle((x - threshold) / eps) * grad).sum(dim=0)
        grad_x = (x > threshold).to(grad.dtype) * grad
        return grad_x, grad_threshold, None


class _StepFn(torch.autograd.Function):
    """Heaviside ``[x > θ]`` with the rectangle-kernel STE for θ only (no gradient to x)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, threshold: torch.Tensor, bandwidth: float) -> torch.Tensor:
        ctx.save_for_backward(x, threshold)
        ctx.bandwidth = bandwidth
        return (x > threshold).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor, None]:
        x, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_threshold = (-(1.0 / eps) * _rectangle((x - threshold) / eps) * grad).sum(dim=0)
        return None, grad_threshold, None


class _BandSTE(torch.autograd.Function):
    """The sparse step's straight-through estimators for θ, from the band's entries alone.

    Returns ``x̂`` (unchanged; its gradient ``∂L/∂x̂`` is what the backward needs) and the L0 term
    ``n_active / b``. The band's batch rows come grouped by latent: ``band_rows`` ``[n_band]``, latent
    ``l``'s from ``band_offsets[l]``, ``band_counts[l]`` of them; ``w_dec`` is the decoder (no gradient
    here)."""

    @staticmethod
    def forward(
        ctx: Any,
        x_hat: torch.Tensor,
        threshold: torch.Tensor,
        w_dec: torch.Tensor,
        band_rows: torch.Tensor,
        band_offsets: torch.Tensor,
        band_counts: torch.Tensor,
        n_active: int,
        bandwidth: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        ctx.save_for_backward(threshold, w_dec, band_rows, band_offsets, band_counts)
        ctx.bandwidth = bandwidth
        ctx.batch = x_hat.shape[0]
        l0 = torch.tensor(n_active, dtype=x_hat.dtype, device=x_hat.device) / ctx.batch
        return x_hat.clone(), l0

    @staticmethod
    def backward(
        ctx: Any, grad_x_hat: torch.Tensor, grad_l0: torch.Tensor
    ) -> tuple[torch.Tensor | None, ...]:
        threshold, w_dec, band_rows, band_offsets, band_counts = ctx.saved_tensors
        grad_threshold = None
        if ctx.needs_input_grad[1]:
            # Σ over latent l's band rows of ∂L/∂z_il = W_dec_l · Σ_{i in band_l} ∂L/∂x̂_i
            summed = F.embedding_bag(band_rows, grad_x_hat.to(w_dec.dtype), band_offsets, mode="sum")
            grad_z = (summed * w_dec).sum(dim=-1).to(threshold.dtype)
            counts = band_counts.to(threshold.dtype)
            grad_threshold = -(threshold * grad_z + grad_l0 / ctx.batch * counts) / ctx.bandwidth
        return grad_x_hat, grad_threshold, None, None, None, None, None, None


class JumpReLUSAE(SAE):
    """JumpReLU SAE with an L0 penalty whose coefficient is autotuned to reach ``target_l0``.

    ``z = relu(pre)·H(pre - θ)``; loss = MSE + ``l0_coefficient · multiplier · mean_b Σ_l H(pre_l - θ_l)``
    with rectangle-kernel STEs (width ``bandwidth``) for θ. Set ``autotune_gain=0`` to fix the coefficient.
    ``sparse`` chooses the sparse training step (the default) over the dense reference.
    """

    architecture: ClassVar[str] = "jumprelu"
    in_paper: ClassVar[bool] = True
    bench_rank: ClassVar[float] = 3

    @classmethod
    def from_l0(cls, d_in: int, d_sae: int, l0: float, **kwargs: Any) -> Self:
        """``target_l0 = l0``, reached by the coefficient autotuner."""
        return cls(d_in, d_sae, l0, **kwargs)

    @classmethod
    def bench_options(cls, steps: int, autotune_gain: float) -> dict[str, Any]:
        """The autotuner's gain."""
        return {"autotune_gain": autotune_gain}

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        target_l0: float,
        *,
        l0_coefficient: float = 1.0,
        bandwidth: float = 1.0,
        init_threshold: float = 1.0,
        autotune_start_step: int = 0,
        autotune_gain: float = 3e-4,
        autotune_smoothing: float = 0.99,
        decoder_init_norm: float = 0.5,
        sparse: bool = True,
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(d_in, d_sae, decoder_init_norm=decoder_init_norm, seed=seed, device=device)
        self.sparse = as_bool("sparse", sparse)
        self.autotune = AutotuneSettings(autotune_start_step, autotune_gain, autotune_smoothing)
        self.l0_coefficient = as_nonnegative("l0_coefficient", l0_coefficient)
        self.bandwidth = as_positive("bandwidth", bandwidth)
        self.init_threshold = as_nonnegative("init_threshold", init_threshold)
        self.threshold = nn.Parameter(torch.full((self.d_sae,), self.init_threshold, device=device))
        self.autotuner = self.autotune.build(target_l0, self.d_sae, device)

    @property
    def target_l0(self) -> float:
        return self.autotuner.target_l0

    @property
    def effective_l0_coefficient(self) -> float:
        """``l0_coefficient × autotuner multiplier``."""
        return self.l0_coefficient * self.autotuner.value

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.hidden_pre(x)
        return pre.relu() * (pre > self.threshold).to(pre.dtype)

    def training_forward(self, x: torch.Tensor, *, dead_mask: torch.Tensor | None = None) -> TrainOutput:
        x = self._check_input(x)
        self._check_dead_mask(dead_mask)
        if not self.sparse:
            return self._dense_step(x, self.hidden_pre(x))
        xc = x - self.b_dec
        with torch.no_grad():
            pre = xc @ self.W_enc + self.b_enc
            threshold = self.threshold.detach()
            active = pre > threshold
            u = pre - threshold
            if self.bandwidth != 1.0:  # (dividing by 1 changes nothing)
                u = u / self.bandwidth
            band = u.abs_() < 0.5  # the dense step's band, (pre - θ)/ε in (-1/2, 1/2), bit for bit
            del u
        n_active, n_band = int(active.sum()), int(band.sum())
        if n_active + n_band / 8 > JUMPRELU_MAX_DENSITY * active.numel():
            return self._dense_step(x, dense_pre(xc, self.W_enc, self.b_enc, pre))
        entries = entries_where(active)
        in_band = entries_where(band.T)  # grouped by latent
        values = gather_pre(xc, self.W_enc, self.b_enc, pre, entries)
        x_hat = sparse_decode(values, self.W_dec, entries) + self.b_dec
        counts = in_band.offsets.diff(append=in_band.offsets.new_tensor([n_band]))
        x_hat, l0 = _BandSTE.apply(
            x_hat,
            self.threshold,
            self.W_dec.detach(),
            in_band.cols,
            in_band.offsets,
            counts,
            n_active,
            self.bandwidth,
        )
        loss_mse = mse(x_hat, x)
        l0_loss = self.effective_l0_coefficient * l0
        z = densify(values, entries, (x.shape[0], self.d_sae))
        return self._output(loss_mse + l0_loss, {"mse": loss_mse, "l0": l0_loss}, z, x_hat)

    def _dense_step(self, x: torch.Tensor, pre: torch.Tensor) -> TrainOutput:
        z = _JumpReLUFn.apply(pre, self.threshold, self.bandwidth)
        x_hat = self.decode(z)
        loss_mse = mse(x_hat, x)
        l0 = _StepFn.apply(pre, self.threshold, self.bandwidth).sum(dim=-1).mean()
        l0_loss = self.effective_l0_coefficient * l0
        return self._output(loss_mse + l0_loss, {"mse": loss_mse, "l0": l0_loss}, z, x_hat)

    @torch.no_grad()
    def fold_decoder_norm(self) -> None:
        """Like :meth:`SAE.fold_decoder_norm`, and the thresholds scale with the latents."""
        norms = self.W_dec.norm(dim=-1).clamp_min(1e-8)
        super().fold_decoder_norm()
        self.threshold.mul_(norms)

    @torch.no_grad()
    def after_step(self, output: TrainOutput) -> None:
        self.threshold.clamp_(min=0.0)
        self.autotuner.update(batch_l0(output.latents), int(self.n_steps))
        super().after_step(output)

    def _hparams(self) -> dict[str, Any]:
        return {
            "target_l0": self.target_l0,
            "l0_coefficient": self.l0_coefficient,
            "bandwidth": self.bandwidth,
            "init_threshold": self.init_threshold,
            **self.autotune.config(),
            "sparse": self.sparse,
        }
