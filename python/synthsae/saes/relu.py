"""ReLU SAE with an L1 penalty (SAELens "standard"), optionally autotuned to a target L0.

``z = relu(pre)``, ``pre = (x - b_dec)·W_enc + b_enc``; loss = MSE + ``λ_eff · mean_b Σ_l z_l·‖W_dec_l‖``
(SAELens ``l1_loss``, ``lp_norm=1``), where ``λ_eff = l1_coefficient · min(step / l1_warm_up_steps, 1) ·
multiplier``; the multiplier is 1 unless ``target_l0`` is given, in which case an
:class:`~synthsae.saes.autotuner.L0Autotuner` adapts it (the sweep's ``XStandardTrainingSAE``). The decoder
is not renormalised (the penalty is decoder-norm weighted).

**Sparse steps** (``sparse=True``, the default): the entries are the positive pre-activations. Only the
encoder's forward product is dense (without gradient, to find them); the latents there are gathered with
a gradient that reaches ``W_enc``, ``b_enc`` and ``b_dec`` through those entries alone, the decoder and
its backward visit only them (:mod:`synthsae.saes.sparse_ops`), and the penalty is summed over them (its
gradient reaches the norms of the decoder rows in use, as the dense form's). A step whose entries exceed
:data:`~synthsae.saes.sparse_ops.RELU_MAX_DENSITY` of ``b·d_sae`` (early in training, when about half the
pre-activations are positive) goes dense instead, reusing the product already computed. ``sparse=False``
is the dense reference: the same loss and gradients up to float rounding.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import torch

from synthsae._validate import as_bool, as_int, as_nonnegative
from synthsae.saes.autotuner import AutotuneSettings, L0Autotuner
from synthsae.saes.base import SAE, TrainOutput, batch_l0, mse
from synthsae.saes.sparse_ops import (
    RELU_MAX_DENSITY,
    dense_pre,
    densify,
    entries_where,
    gather_pre,
    sparse_decode,
)


def l1_bench_options(steps: int, autotune_gain: float) -> dict[str, Any]:
    """A bench run's options for an SAE whose L0 follows an L1 coefficient: the warm-up and the
    autotuner start at a third of its ``steps``, the autotuner at ``autotune_gain``."""
    third = steps // 3
    return {"l1_warm_up_steps": third, "autotune_start_step": third, "autotune_gain": autotune_gain}


class ReLUSAE(SAE):
    """SAELens "standard" SAE: ``z = relu(pre)``; loss = MSE + ``λ·mean_b Σ_l z_l·‖W_dec_l‖``.

    ``l1_coefficient`` sets λ (linearly warmed up over ``l1_warm_up_steps``). L0 is controlled only
    through λ: with ``target_l0`` an :class:`L0Autotuner` (sweep recipe) multiplies λ to reach it.
    ``sparse`` chooses the sparse training step (the default) over the dense reference.
    """

    architecture: ClassVar[str] = "relu"
    in_paper: ClassVar[bool] = True
    bench_rank: ClassVar[float] = 4

    @classmethod
    def from_l0(cls, d_in: int, d_sae: int, l0: float, **kwargs: Any) -> Self:
        """L1 coefficient ``l1_coefficient`` (default 2.0, the sweep's) with its autotuner aimed at
        ``target_l0 = l0`` unless ``target_l0`` is given (``None``: a fixed coefficient)."""
        l1_coefficient = kwargs.pop("l1_coefficient", 2.0)
        kwargs.setdefault("target_l0", l0)
        return cls(d_in, d_sae, l1_coefficient, **kwargs)

    @classmethod
    def bench_options(cls, steps: int, autotune_gain: float) -> dict[str, Any]:
        """The L1 warm-up and the autotuner start at a third of training, as in the sweep."""
        return l1_bench_options(steps, autotune_gain)

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        l1_coefficient: float,
        *,
        l1_warm_up_steps: int = 0,
        target_l0: float | None = None,
        autotune_start_step: int = 0,
        autotune_gain: float = 3e-4,
        autotune_smoothing: float = 0.99,
        decoder_init_norm: float = 0.1,
        sparse: bool = True,
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(d_in, d_sae, decoder_init_norm=decoder_init_norm, seed=seed, device=device)
        self.sparse = as_bool("sparse", sparse)
        self.l1_coefficient = as_nonnegative("l1_coefficient", l1_coefficient)
        self.l1_warm_up_steps = as_int("l1_warm_up_steps", l1_warm_up_steps)
        self.autotune = AutotuneSettings(autotune_start_step, autotune_gain, autotune_smoothing)
        self.autotuner: L0Autotuner | None = None
        if target_l0 is not None:
            self.autotuner = self.autotune.build(target_l0, self.d_sae, device)

    @property
    def effective_l1_coefficient(self) -> float:
        """λ used at the current step: coefficient × warm-up factor × autotuner multiplier."""
        step = int(self.n_steps)
        warm = 1.0 if self.l1_warm_up_steps == 0 else min(step / self.l1_warm_up_steps, 1.0)
        multiplier = 1.0 if self.autotuner is None else self.autotuner.value
        return self.l1_coefficient * warm * multiplier

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden_pre(x).relu()

    def training_forward(self, x: torch.Tensor, *, dead_mask: torch.Tensor | None = None) -> TrainOutput:
        if not self.sparse:
            x, z, x_hat = self._reconstruct(x, dead_mask)
            return self._dense_output(x, z, x_hat)
        x = self._check_input(x)
        self._check_dead_mask(dead_mask)
        xc = x - self.b_dec
        with torch.no_grad():
            pre = xc @ self.W_enc + self.b_enc
            active = pre > 0
        if int(active.sum()) > RELU_MAX_DENSITY * active.numel():
            z = dense_pre(xc, self.W_enc, self.b_enc, pre).relu()
            return self._dense_output(x, z, self.decode(z))
        entries = entries_where(active)
        values = gather_pre(xc, self.W_enc, self.b_enc, pre, entries)  # all positive: the latents
        x_hat = sparse_decode(values, self.W_dec, entries) + self.b_dec
        loss_mse = mse(x_hat, x)
        norms = self.W_dec.norm(dim=-1).index_select(0, entries.cols)
        l1 = self.effective_l1_coefficient * (values * norms).sum() / x.shape[0]
        z = densify(values, entries, (x.shape[0], self.d_sae))
        return self._output(loss_mse + l1, {"mse": loss_mse, "l1": l1}, z, x_hat)

    def _dense_output(self, x: torch.Tensor, z: torch.Tensor, x_hat: torch.Tensor) -> TrainOutput:
        loss_mse = mse(x_hat, x)
        l1 = self.effective_l1_coefficient * (z * self.W_dec.norm(dim=-1)).sum(dim=-1).mean()
        return self._output(loss_mse + l1, {"mse": loss_mse, "l1": l1}, z, x_hat)

    @torch.no_grad()
    def after_step(self, output: TrainOutput) -> None:
        if self.autotuner is not None:
            self.autotuner.update(batch_l0(output.latents), int(self.n_steps))
        super().after_step(output)

    def _hparams(self) -> dict[str, Any]:
        return {
            "l1_coefficient": self.l1_coefficient,
            "l1_warm_up_steps": self.l1_warm_up_steps,
            "target_l0": None if self.autotuner is None else self.autotuner.target_l0,
            **self.autotune.config(),
            "sparse": self.sparse,
        }
