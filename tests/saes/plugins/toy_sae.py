"""A toy SAE architecture in one module: TopK on plain pre-activations, trained on the MSE alone.

Importing this module registers it as ``"toy"`` (``synthsae bench --sae-module tests/saes/plugins/toy_sae.py
--saes toy``)."""

from __future__ import annotations

from typing import Any, ClassVar, Self

import torch

from synthsae.saes import SAE, TrainOutput, mse


class ToySAE(SAE):
    """``z`` = the ``k`` largest ``relu(pre)`` of each row; loss = MSE."""

    architecture: ClassVar[str] = "toy"
    direct_l0: ClassVar[bool] = True

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        k: int,
        *,
        decoder_init_norm: float = 0.1,
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(d_in, d_sae, decoder_init_norm=decoder_init_norm, seed=seed, device=device)
        self.k = k

    @classmethod
    def from_l0(cls, d_in: int, d_sae: int, l0: float, **kwargs: Any) -> Self:
        return cls(d_in, d_sae, max(1, round(l0)), **kwargs)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.hidden_pre(x).relu()
        top = pre.topk(self.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, top.indices, top.values)

    def training_forward(self, x: torch.Tensor, *, dead_mask: torch.Tensor | None = None) -> TrainOutput:
        x, z, x_hat = self._reconstruct(x, dead_mask)
        loss = mse(x_hat, x)
        return self._output(loss, {"mse": loss}, z, x_hat)

    def _hparams(self) -> dict[str, Any]:
        return {"k": self.k}
