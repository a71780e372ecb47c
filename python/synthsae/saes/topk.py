"""TopK SAE: keep the ``k`` largest (decoder-norm-scaled) pre-activations per row, then ReLU.

``z = scatter(topk(pre·‖W_dec‖, k)).relu()``; loss = MSE + AuxK (see :mod:`synthsae.saes.topk_family`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import torch

from synthsae._validate import as_int
from synthsae.saes.base import round_l0
from synthsae.saes.sparse_ops import Entries
from synthsae.saes.topk_family import TopKFamilySAE


class TopKSAE(TopKFamilySAE):
    """TopK SAE: keep the ``k`` largest (decoder-norm-scaled) pre-activations per row, then ReLU.
    Loss = MSE + AuxK. ``TopKSAE(d_in, d_sae, k, *, aux_coefficient=1.0, rescale_acts_by_decoder_norm=True,
    decoder_init_norm=0.1, sparse=True, seed=None, device=None)`` (the family's constructor)."""

    architecture: ClassVar[str] = "topk"
    direct_l0: ClassVar[bool] = True
    bench_rank: ClassVar[float] = 5

    @classmethod
    def from_l0(cls, d_in: int, d_sae: int, l0: float, **kwargs: Any) -> Self:
        """``k = round(l0)``."""
        return cls(d_in, d_sae, round_l0(cls.architecture, l0), **kwargs)

    def check_k(self, k: Any) -> int:
        """An integer in ``[1, d_sae]``."""
        return as_int("k", k, minimum=1, maximum=self.d_sae, maximum_name="d_sae")

    def select_entries(self, pre: torch.Tensor) -> Entries:
        """The ``k`` largest of each row (the K schedule's ``k`` in training, rounded)."""
        return Entries.per_row(pre.topk(round(self.current_k()), dim=-1, sorted=False).indices)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check_input(x)
        return self.refine(x, self.scaled_pre(x), self.select)

    def _hparams(self) -> dict[str, Any]:
        return {"k": self.k, **self._family_hparams()}
