"""AbsTopK SAE (SAELens ``AbsTopKTrainingSAE``): per row, the ``k`` pre-activations of largest magnitude,
with their signs (bidirectional latents).

With ``pre = ((x - b_dec)·W_enc + b_enc) ⊙ ‖W_dec‖`` ``[b, d_sae]`` (the decoder row norms multiply in
when ``rescale_acts_by_decoder_norm``, SAELens's default; otherwise ``pre`` is the plain pre-activation):

* ``z [b, d_sae]`` keeps, in each row, the ``k`` entries of ``pre`` with the largest ``|pre|`` at their
  signed values (no ReLU: a latent may be negative) and is zero elsewhere; the gradient reaches ``pre``
  at the kept entries;
* ``decode(z) = (z ⊙ 1/‖W_dec‖)·W_dec + b_dec`` ``[b, d_in]`` when rescaling (unit decoder directions; a
  zero row adds nothing, its norm clamped as in :func:`~synthsae.saes.topk_family.divisor`), else
  ``z·W_dec + b_dec``. SAELens renormalises nothing in either case, and neither does this class.

loss = MSE + **AuxK** with dead latents chosen by magnitude (SAELens ``calculate_abstopk_aux_loss``):
with ``n_dead`` dead latents (``dead_mask`` from the trainer) and ``k_aux = d_in // 2`` (at least 1),
each row keeps the ``min(k_aux, n_dead)`` dead entries of ``pre`` with the largest ``|pre|``, signed,
decodes them without ``b_dec`` and fits the detached residual ``e = x - x̂``:
``aux_coefficient · min(n_dead / k_aux, 1) · mean_b Σ_d (ê - e)²``. Zero when no latent is dead or
``dead_mask`` is None. ``aux_coefficient`` defaults to 1.0 (SAELens's). Every step is dense.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Self

import torch

from synthsae._validate import as_bool, as_int, as_nonnegative
from synthsae.saes.base import SAE, TrainOutput, mse, round_l0
from synthsae.saes.topk_family import divisor


def abs_topk(pre: torch.Tensor, k: int) -> torch.Tensor:
    """``[b, n]``: the ``k`` entries of each row of ``pre [b, n]`` with the largest magnitude, signed, and
    zero elsewhere (differentiable in ``pre`` at those entries)."""
    indices = pre.detach().abs().topk(k, dim=-1, sorted=False).indices
    return torch.zeros_like(pre).scatter(-1, indices, pre.gather(-1, indices))


class AbsTopKSAE(SAE):
    """AbsTopK SAE: keep the ``k`` (decoder-norm-scaled) pre-activations of largest magnitude per row,
    with their signs. Loss = MSE + AuxK over the dead latents of largest magnitude."""

    architecture: ClassVar[str] = "abstopk"
    direct_l0: ClassVar[bool] = True
    bench_rank: ClassVar[float] = 8

    @classmethod
    def from_l0(cls, d_in: int, d_sae: int, l0: float, **kwargs: Any) -> Self:
        """``k = round(l0)``."""
        return cls(d_in, d_sae, round_l0(cls.architecture, l0), **kwargs)

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
        super().__init__(d_in, d_sae, decoder_init_norm=decoder_init_norm, seed=seed, device=device)
        self.k = as_int("k", k, minimum=1, maximum=self.d_sae, maximum_name="d_sae")
        self.aux_coefficient = as_nonnegative("aux_coefficient", aux_coefficient)
        self.rescale_acts_by_decoder_norm = as_bool(
            "rescale_acts_by_decoder_norm", rescale_acts_by_decoder_norm
        )
        self.k_aux = max(self.d_in // 2, 1)

    def scaled_pre(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activations, times ``‖W_dec_l‖`` when ``rescale_acts_by_decoder_norm`` ``[b, d_sae]``."""
        pre = self.hidden_pre(x)
        if self.rescale_acts_by_decoder_norm:
            pre = pre * self.W_dec.norm(dim=-1)
        return pre

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return abs_topk(self.scaled_pre(x), self.k)

    def _times_w_dec(self, z: torch.Tensor) -> torch.Tensor:
        """``z·W_dec`` in unit decoder directions when rescaling (no ``b_dec``) ``[b, d_in]``."""
        if self.rescale_acts_by_decoder_norm:
            z = z * divisor(self.W_dec.norm(dim=-1)).reciprocal()
        return z @ self.W_dec

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(z / ‖W_dec_l‖)·W_dec + b_dec`` when rescaling, else ``z·W_dec + b_dec``."""
        return self._times_w_dec(z) + self.b_dec

    def training_forward(self, x: torch.Tensor, *, dead_mask: torch.Tensor | None = None) -> TrainOutput:
        x = self._check_input(x)
        dead_mask = self._check_dead_mask(dead_mask)
        pre = self.scaled_pre(x)
        z = abs_topk(pre, self.k)
        x_hat = self.decode(z)
        loss_mse = mse(x_hat, x)
        auxk = self._auxk(x, x_hat, pre, dead_mask)
        return self._output(loss_mse + auxk, {"mse": loss_mse, "auxk": auxk}, z, x_hat)

    def _auxk(
        self, x: torch.Tensor, x_hat: torch.Tensor, pre: torch.Tensor, dead_mask: torch.Tensor | None
    ) -> torch.Tensor:
        num_dead = 0 if dead_mask is None else int(dead_mask.sum())
        if dead_mask is None or num_dead == 0:
            return x_hat.new_zeros(())
        scale = min(num_dead / self.k_aux, 1.0)
        residual = (x - x_hat).detach()
        candidates = torch.where(dead_mask[None], pre.detach().abs(), -math.inf)
        indices = candidates.topk(min(self.k_aux, num_dead), dim=-1, sorted=False).indices
        acts = torch.zeros_like(pre).scatter(-1, indices, pre.gather(-1, indices))
        return self.aux_coefficient * scale * mse(self._times_w_dec(acts), residual)

    @torch.no_grad()
    def fold_decoder_norm(self) -> None:
        """Like :meth:`SAE.fold_decoder_norm`; with rescaling both latents and ``forward`` are unchanged.
        Without rescaling it would change the selection, so it raises (as SAELens)."""
        if not self.rescale_acts_by_decoder_norm:
            raise NotImplementedError("fold_decoder_norm needs rescale_acts_by_decoder_norm=True")
        super().fold_decoder_norm()

    def _hparams(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "aux_coefficient": self.aux_coefficient,
            "rescale_acts_by_decoder_norm": self.rescale_acts_by_decoder_norm,
        }
