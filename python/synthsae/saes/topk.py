"""TopK SAE: keep the ``k`` largest (decoder-norm-scaled) pre-activations per row, then ReLU.

``z = scatter(topk(pre·‖W_dec‖, k)).relu()``; loss = MSE + AuxK (see :mod:`synthsae.saes.topk_family`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from synthsae._validate import as_int
from synthsae.saes.topk_family import TopKFamilySAE


class TopKSAE(TopKFamilySAE):
    """TopK SAE: keep the ``k`` largest (decoder-norm-scaled) pre-activations per row, then ReLU.
    Loss = MSE + AuxK."""

    architecture: ClassVar[str] = "topk"

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        k: int,
        *,
        aux_coefficient: float = 1.0,
        rescale_acts_by_decoder_norm: bool = True,
        decoder_init_norm: float = 0.1,
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(
            d_in,
            d_sae,
            aux_coefficient=aux_coefficient,
            rescale_acts_by_decoder_norm=rescale_acts_by_decoder_norm,
            decoder_init_norm=decoder_init_norm,
            seed=seed,
            device=device,
        )
        self.k = as_int("k", k, minimum=1, maximum=self.d_sae, maximum_name="d_sae")

    def select(self, pre: torch.Tensor) -> torch.Tensor:
        values, indices = pre.topk(int(self.k), dim=-1, sorted=False)
        return torch.zeros_like(pre).scatter(-1, indices, values.relu())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.select(self.scaled_pre(x))

    def _hparams(self) -> dict[str, Any]:
        return {"k": self.k, **self._family_hparams()}
