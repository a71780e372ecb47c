"""Gated SAE (SAELens ``GatedTrainingSAE``, after Rajamanoharan et al. 2024), optionally autotuned to a
target L0.

Parameters: ``W_enc [d_in, d_sae]`` (shared by both paths), ``b_gate``, ``r_mag``, ``b_mag`` ``[d_sae]``
(zero at initialisation), ``W_dec [d_sae, d_in]``, ``b_dec [d_in]``; there is no ``b_enc``. With the
centred input ``xc = x - b_dec`` ``[b, d_in]``:

* gate path: ``π_gate = xc·W_enc + b_gate`` ``[b, d_sae]``; latent ``l`` is open where ``π_gate_l > 0``;
* magnitude path: ``π_mag = xc·(W_enc ⊙ exp(r_mag)) + b_mag`` ``[b, d_sae]`` (column ``l`` of ``W_enc``
  scaled by ``exp(r_mag_l)``: the weight sharing);
* ``z = [π_gate > 0] · relu(π_mag)`` ``[b, d_sae]``; the gate is a step and passes no gradient, so the
  MSE reaches ``W_enc`` through the magnitude path only;
* ``decode(z) = z·W_dec + b_dec`` ``[b, d_in]``.

loss = MSE + ``λ_eff · mean_b Σ_l relu(π_gate)_l·‖W_dec_l‖`` (the L1 penalty on the gate path, decoder-norm
weighted) + ``mean_b Σ_d (relu(π_gate)·W_dec + b_dec - x)²`` (the auxiliary reconstruction through the gate
path, with coefficient 1 and no warm-up). As in SAELens (``GatedTrainingSAE.calculate_aux_loss``) the
auxiliary reconstruction uses the trained ``W_dec`` and ``b_dec`` themselves, so its gradient reaches
them too; the paper's formulation decodes it with a frozen copy of the decoder instead.

``λ_eff = l1_coefficient · min(step / l1_warm_up_steps, 1) · multiplier`` (SAELens's linear coefficient
warm-up); the multiplier is 1 unless ``target_l0`` is given, in which case an
:class:`~synthsae.saes.autotuner.L0Autotuner` adapts it until the batch L0 of ``z`` reaches the target,
as for :mod:`~synthsae.saes.relu`. ``l1_coefficient`` defaults to 1.0 (SAELens's
``GatedTrainingSAEConfig``). The decoder is not renormalised (the penalty is decoder-norm weighted).
Every step is dense.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import torch
from torch import nn

from synthsae._validate import as_int, as_nonnegative
from synthsae.saes.autotuner import AutotuneSettings, L0Autotuner
from synthsae.saes.base import SAE, TrainOutput, batch_l0, mse
from synthsae.saes.relu import l1_bench_options


class GatedSAE(SAE):
    """SAELens "gated" SAE: ``z = [xc·W_enc + b_gate > 0] · relu(xc·(W_enc ⊙ exp(r_mag)) + b_mag)``;
    loss = MSE + ``λ·mean_b Σ_l relu(π_gate)_l·‖W_dec_l‖`` + the gate path's reconstruction MSE.

    ``l1_coefficient`` sets λ (linearly warmed up over ``l1_warm_up_steps``); with ``target_l0`` an
    :class:`L0Autotuner` multiplies λ to reach that L0.
    """

    architecture: ClassVar[str] = "gated"
    bench_rank: ClassVar[float] = 7

    b_gate: nn.Parameter
    r_mag: nn.Parameter
    b_mag: nn.Parameter

    @classmethod
    def from_l0(cls, d_in: int, d_sae: int, l0: float, **kwargs: Any) -> Self:
        """L1 coefficient ``l1_coefficient`` (default 1.0, SAELens's) with its autotuner aimed at
        ``target_l0 = l0`` unless ``target_l0`` is given (``None``: a fixed coefficient)."""
        l1_coefficient = kwargs.pop("l1_coefficient", 1.0)
        kwargs.setdefault("target_l0", l0)
        return cls(d_in, d_sae, l1_coefficient, **kwargs)

    @classmethod
    def bench_options(cls, steps: int, autotune_gain: float) -> dict[str, Any]:
        """The L1 warm-up and the autotuner start at a third of training, as for ReLU."""
        return l1_bench_options(steps, autotune_gain)

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        l1_coefficient: float = 1.0,
        *,
        l1_warm_up_steps: int = 0,
        target_l0: float | None = None,
        autotune_start_step: int = 0,
        autotune_gain: float = 3e-4,
        autotune_smoothing: float = 0.99,
        decoder_init_norm: float = 0.1,
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(d_in, d_sae, decoder_init_norm=decoder_init_norm, seed=seed, device=device)
        del self.b_enc  # the gate and magnitude paths have biases of their own
        self.l1_coefficient = as_nonnegative("l1_coefficient", l1_coefficient)
        self.l1_warm_up_steps = as_int("l1_warm_up_steps", l1_warm_up_steps)
        self.autotune = AutotuneSettings(autotune_start_step, autotune_gain, autotune_smoothing)
        self.autotuner: L0Autotuner | None = None
        if target_l0 is not None:
            self.autotuner = self.autotune.build(target_l0, self.d_sae, device)
        self.b_gate = nn.Parameter(torch.zeros(self.d_sae, device=device))
        self.r_mag = nn.Parameter(torch.zeros(self.d_sae, device=device))
        self.b_mag = nn.Parameter(torch.zeros(self.d_sae, device=device))

    @property
    def effective_l1_coefficient(self) -> float:
        """λ used at the current step: coefficient × warm-up factor × autotuner multiplier."""
        step = int(self.n_steps)
        warm = 1.0 if self.l1_warm_up_steps == 0 else min(step / self.l1_warm_up_steps, 1.0)
        multiplier = 1.0 if self.autotuner is None else self.autotuner.value
        return self.l1_coefficient * warm * multiplier

    # -- forward ------------------------------------------------------------------------------------------

    def _paths(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The gate and magnitude pre-activations ``π_gate``, ``π_mag`` ``[b, d_sae]`` of checked ``x``."""
        xc = x - self.b_dec
        gate = xc @ self.W_enc + self.b_gate
        magnitude = xc @ (self.W_enc * self.r_mag.exp()) + self.b_mag
        return gate, magnitude

    def gate_pre(self, x: torch.Tensor) -> torch.Tensor:
        """Gate pre-activations ``π_gate = (x - b_dec)·W_enc + b_gate`` ``[b, d_sae]``."""
        x = self._check_input(x)
        return (x - self.b_dec) @ self.W_enc + self.b_gate

    def hidden_pre(self, x: torch.Tensor) -> torch.Tensor:
        """Magnitude pre-activations ``π_mag = (x - b_dec)·(W_enc ⊙ exp(r_mag)) + b_mag`` ``[b, d_sae]``
        (SAELens's ``hidden_pre`` for this architecture)."""
        x = self._check_input(x)
        return (x - self.b_dec) @ (self.W_enc * self.r_mag.exp()) + self.b_mag

    @staticmethod
    def _combine(gate: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
        return (gate > 0).to(magnitude.dtype) * magnitude.relu()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        gate, magnitude = self._paths(self._check_input(x))
        return self._combine(gate, magnitude)

    def training_forward(self, x: torch.Tensor, *, dead_mask: torch.Tensor | None = None) -> TrainOutput:
        x = self._check_input(x)
        self._check_dead_mask(dead_mask)
        gate, magnitude = self._paths(x)
        z = self._combine(gate, magnitude)
        x_hat = self.decode(z)
        loss_mse = mse(x_hat, x)
        gate_acts = gate.relu()
        l1 = self.effective_l1_coefficient * (gate_acts * self.W_dec.norm(dim=-1)).sum(dim=-1).mean()
        aux = mse(gate_acts @ self.W_dec + self.b_dec, x)
        return self._output(loss_mse + l1 + aux, {"mse": loss_mse, "l1": l1, "aux": aux}, z, x_hat)

    @torch.no_grad()
    def after_step(self, output: TrainOutput) -> None:
        if self.autotuner is not None:
            self.autotuner.update(batch_l0(output.latents), int(self.n_steps))
        super().after_step(output)

    @torch.no_grad()
    def fold_decoder_norm(self) -> None:
        """Rescales ``W_dec`` rows to unit norm and multiplies ``W_enc`` columns, ``b_gate`` and ``b_mag``
        by the old norms (SAELens ``GatedTrainingSAE.fold_W_dec_norm``; ``r_mag`` is unchanged): the gates
        are unchanged, the latents scale by the norms and ``forward`` is unchanged."""
        norms = self.W_dec.norm(dim=-1).clamp_min(1e-8)
        self.W_dec.div_(norms[:, None])
        self.W_enc.mul_(norms)
        self.b_gate.mul_(norms)
        self.b_mag.mul_(norms)

    def _hparams(self) -> dict[str, Any]:
        return {
            "l1_coefficient": self.l1_coefficient,
            "l1_warm_up_steps": self.l1_warm_up_steps,
            "target_l0": None if self.autotuner is None else self.autotuner.target_l0,
            **self.autotune.config(),
        }
