"""JumpReLU SAE (DeepMind/SAEBench recipe as in the sweep's ``XJumpReLUTrainingSAE``).

``z = relu(pre)·H(pre - θ)`` with a per-latent threshold ``θ ≥ 0`` (a ``threshold`` parameter, projected
to ``≥ 0`` after each step, as SAELens 6.54.12 does; since θ ≥ 0 the ReLU is implied in training and
applied explicitly in ``encode``). loss = MSE + ``λ_eff · mean_b Σ_l H(pre_l - θ_l)`` with
``λ_eff = l0_coefficient · multiplier`` (an :class:`~synthsae.saes.autotuner.L0Autotuner` drives the batch
L0 to ``target_l0``). Gradients w.r.t. θ use straight-through estimators with the rectangle kernel
``K(u) = [|u| < ½]`` of width ``bandwidth`` ε: ``∂z/∂θ = -(θ/ε)·K((pre - θ)/ε)``,
``∂H/∂θ = -(1/ε)·K((pre - θ)/ε)``; ``∂z/∂pre`` is ``H(pre - θ)`` and the L0 term sends no gradient to
``pre`` (DeepMind, ``ste_to_input=False``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import torch
from torch import nn

from synthsae._validate import as_nonnegative, as_positive
from synthsae.saes.autotuner import AutotuneSettings
from synthsae.saes.base import SAE, TrainOutput, batch_l0, mse


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


class JumpReLUSAE(SAE):
    """JumpReLU SAE with an L0 penalty whose coefficient is autotuned to reach ``target_l0``.

    ``z = relu(pre)·H(pre - θ)``; loss = MSE + ``l0_coefficient · multiplier · mean_b Σ_l H(pre_l - θ_l)``
    with rectangle-kernel STEs (width ``bandwidth``) for θ. Set ``autotune_gain=0`` to fix the coefficient.
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
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(d_in, d_sae, decoder_init_norm=decoder_init_norm, seed=seed, device=device)
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
        pre = self.hidden_pre(x)
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
        }
