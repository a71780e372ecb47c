"""BatchTopK SAE: the ``int(k·b)`` largest activations over the whole batch, a JumpReLU at inference.

In training mode keep the ``int(k·b)`` largest ``relu(pre)`` over the batch; loss = MSE + AuxK (see
:mod:`synthsae.saes.topk_family`). ``after_step`` updates ``topk_threshold ← (1 - lr)·θ + lr·min(positive
kept activations)`` (float64, ``topk_threshold_lr = 0.01``). In eval mode ``encode`` is the JumpReLU that
SAELens saves a BatchTopK SAE as: ``z = relu(pre)·[pre > θ]``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, ClassVar, Self

import torch

from synthsae._validate import as_fraction, as_int, as_positive
from synthsae.saes.base import TrainOutput
from synthsae.saes.sparse_ops import Entries, top_indices
from synthsae.saes.topk_family import TopKFamilySAE


def batch_k(l0: float) -> float:
    """BatchTopK's ``k`` for ``l0``: an int when whole (as the sweep's configs write it)."""
    l0 = float(l0)
    return int(l0) if l0.is_integer() else l0


class BatchTopKSAE(TopKFamilySAE):
    """BatchTopK SAE: in training keep the ``int(k·b)`` largest ``relu(pre)`` over the batch; in eval
    mode ``z = relu(pre)·[pre > topk_threshold]``. Loss = MSE + AuxK. ``k`` may be fractional."""

    architecture: ClassVar[str] = "batchtopk"
    thread_invariant: ClassVar[bool] = True
    direct_l0: ClassVar[bool] = True
    in_paper: ClassVar[bool] = True
    bench_rank: ClassVar[float] = 1
    topk_threshold: torch.Tensor

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        k: float,
        *,
        topk_threshold_lr: float = 0.01,
        aux_coefficient: float = 1.0,
        rescale_acts_by_decoder_norm: bool = True,
        decoder_init_norm: float = 0.1,
        sparse: bool = True,
        k_start: float | None = None,
        k_anneal_steps: int = 0,
        term_tilt: float = 0.0,
        term_relative: bool = False,
        ista_steps: int = 0,
        ista_step_size: float = 1.0,
        learn_step_size: bool = False,
        ista_form: str = "ista",
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(
            d_in,
            d_sae,
            k,
            aux_coefficient=aux_coefficient,
            rescale_acts_by_decoder_norm=rescale_acts_by_decoder_norm,
            decoder_init_norm=decoder_init_norm,
            sparse=sparse,
            k_start=k_start,
            k_anneal_steps=k_anneal_steps,
            term_tilt=term_tilt,
            term_relative=term_relative,
            ista_steps=ista_steps,
            ista_step_size=ista_step_size,
            learn_step_size=learn_step_size,
            ista_form=ista_form,
            seed=seed,
            device=device,
        )
        self.topk_threshold_lr = as_fraction("topk_threshold_lr", topk_threshold_lr)
        self.register_buffer("topk_threshold", torch.tensor(0.0, dtype=torch.float64, device=device))

    @classmethod
    def from_l0(cls, d_in: int, d_sae: int, l0: float, **kwargs: Any) -> Self:
        """``k = l0`` (:func:`batch_k`)."""
        return cls(d_in, d_sae, batch_k(l0), **kwargs)

    def check_k(self, k: Any) -> float:
        """In ``(0, d_sae]``; fractional allowed (an int stays an int)."""
        if isinstance(k, numbers.Integral) and not isinstance(k, bool):
            return as_int("k", k, minimum=1, maximum=self.d_sae, maximum_name="d_sae")
        return as_positive("k", k, maximum=self.d_sae, maximum_name="d_sae")

    def select_entries(self, pre: torch.Tensor) -> Entries:
        """The ``int(k·b)`` largest ``relu(pre)`` of the batch (the K schedule's ``k`` in training)."""
        flat = top_indices(pre.relu().flatten(), int(self.current_k() * pre.shape[0]))
        return Entries.from_flat(flat, (pre.shape[0], pre.shape[1]))

    def _threshold_activation(self, pre: torch.Tensor) -> torch.Tensor:
        return pre.relu() * (pre > self.topk_threshold.to(pre.dtype)).to(pre.dtype)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Batch top-k latents in training mode; the inference threshold in eval mode."""
        x = self._check_input(x)
        activation = self.select if self.training else self._threshold_activation
        return self.refine(x, self.scaled_pre(x), activation)

    @torch.no_grad()
    def update_threshold(self, latents: torch.Tensor) -> None:
        """EMA of the smallest positive kept activation: ``θ ← (1 - lr)·θ + lr·min(z > 0)``."""
        smallest = torch.where(latents > 0, latents, math.inf).min().double()  # inf if none is positive
        lr = self.topk_threshold_lr
        updated = (1 - lr) * self.topk_threshold + lr * smallest
        self.topk_threshold.copy_(torch.where(torch.isfinite(smallest), updated, self.topk_threshold))

    @torch.no_grad()
    def after_step(self, output: TrainOutput) -> None:
        self.update_threshold(output.latents)
        super().after_step(output)

    def _hparams(self) -> dict[str, Any]:
        return {"k": self.k, "topk_threshold_lr": self.topk_threshold_lr, **self._family_hparams()}
