"""Matryoshka BatchTopK SAE: BatchTopK latents trained to reconstruct from every prefix of the latents.

For each prefix width ``w`` in ``widths`` (the last is ``d_sae``) reconstruct with ``z[:, :w]`` only:
``x̂_w = decode`` restricted to latents ``< w``. Loss = **Σ_w MSE(x̂_w)** (a sum, not a mean, as SAELens:
the full-width MSE plus one ``inner_mse_loss`` per inner width) + AuxK. With
``use_matryoshka_aux_loss=True`` (the sweep's setting; SAELens's default is False) AuxK is computed per
level segment ``[w_prev, w)``: that segment's dead latents fit the residual of the prefix-``w``
reconstruction, each term scaled by ``min(n_dead_segment / k_aux, 1)`` and summed.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import torch

from synthsae._validate import as_bool, as_int
from synthsae.errors import ConfigError, ConfigTypeError
from synthsae.saes.base import TrainOutput, mse
from synthsae.saes.batchtopk import BatchTopKSAE, batch_k
from synthsae.saes.sparse_ops import densify
from synthsae.saes.topk_family import Selected


def default_matryoshka_widths(d_sae: int) -> list[int]:
    """The sweep's prefixes: those of 128, 512, 2048 below ``d_sae``, then ``d_sae`` (so
    ``[128, 512, 2048, 4096]`` at 4096). For ``d_sae <= 128``: ``[d_sae // 8, d_sae // 2, d_sae]``
    keeping only positive, strictly increasing values."""
    d_sae = as_int("d_sae", d_sae, minimum=1)
    inner = [w for w in (128, 512, 2048) if w < d_sae]
    if not inner:
        inner = sorted({w for w in (d_sae // 8, d_sae // 2) if 0 < w < d_sae})
    return [*inner, d_sae]


class MatryoshkaBatchTopKSAE(BatchTopKSAE):
    """Matryoshka BatchTopK SAE: BatchTopK latents; loss = Σ over prefix widths ``w`` of the MSE of the
    reconstruction from latents ``[:w]`` (the full width included), + AuxK (per level by default)."""

    architecture: ClassVar[str] = "matryoshka"
    direct_l0: ClassVar[bool] = True
    in_paper: ClassVar[bool] = True
    bench_rank: ClassVar[float] = 2

    @classmethod
    def from_l0(cls, d_in: int, d_sae: int, l0: float, **kwargs: Any) -> Self:
        """``k = l0`` (:func:`~synthsae.saes.batchtopk.batch_k`); ``widths`` default to
        :func:`default_matryoshka_widths`."""
        widths = kwargs.pop("widths", None)
        if widths is None:
            widths = default_matryoshka_widths(d_sae)
        return cls(d_in, d_sae, batch_k(l0), widths, **kwargs)

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        k: float,
        widths: Sequence[int],
        *,
        use_matryoshka_aux_loss: bool = True,
        topk_threshold_lr: float = 0.01,
        aux_coefficient: float = 1.0,
        rescale_acts_by_decoder_norm: bool = True,
        decoder_init_norm: float = 0.1,
        sparse: bool = True,
        k_start: float | None = None,
        k_anneal_steps: int = 0,
        term_tilt: float = 0.0,
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(
            d_in,
            d_sae,
            k,
            topk_threshold_lr=topk_threshold_lr,
            aux_coefficient=aux_coefficient,
            rescale_acts_by_decoder_norm=rescale_acts_by_decoder_norm,
            decoder_init_norm=decoder_init_norm,
            sparse=sparse,
            k_start=k_start,
            k_anneal_steps=k_anneal_steps,
            term_tilt=term_tilt,
            seed=seed,
            device=device,
        )
        self.widths = self._check_widths(widths)
        self.use_matryoshka_aux_loss = as_bool("use_matryoshka_aux_loss", use_matryoshka_aux_loss)

    def _check_widths(self, widths: Sequence[int]) -> list[int]:
        if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
            raise ConfigTypeError(f"widths must be a sequence of ints, got {type(widths).__name__}")
        checked = [as_int("widths", w, minimum=1, maximum=self.d_sae, maximum_name="d_sae") for w in widths]
        if not checked:
            raise ConfigError("widths must not be empty")
        if any(b <= a for a, b in itertools.pairwise(checked)):
            raise ConfigError(f"widths must be strictly increasing, got {checked}")
        if checked[-1] != self.d_sae:
            checked.append(self.d_sae)
        return checked

    def prefix_reconstructions(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Reconstructions ``z[:, :w]·W_dec[:w] + b_dec`` for each width ``w`` (last = ``decode(z)``)."""
        unit = self._unit_latents(z)
        out = []
        current = self.b_dec.expand(z.shape[0], self.d_in)
        lo = 0
        for width in self.widths:
            current = current + unit[:, lo:width] @ self.W_dec[lo:width]
            out.append(current)
            lo = width
        return out

    def _segments(self) -> list[tuple[int, int]]:
        """The level segments ``[w_prev, w)`` of the prefix widths."""
        return list(itertools.pairwise([0, *self.widths]))

    def _sparse_prefix_reconstructions(self, sel: Selected) -> list[torch.Tensor]:
        """:meth:`prefix_reconstructions` from the sparse step's selection."""
        out = []
        current = self.b_dec.expand(sel.xc.shape[0], self.d_in)
        cols = sel.entries.cols
        for lo, hi in self._segments():
            keep = (cols >= lo) & (cols < hi)
            current = current + self.decode_entries(sel, sel.z[keep], sel.entries.select(keep))
            out.append(current)
        return out

    def _losses(self, x: torch.Tensor, recons: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """The summed terms: each level's reconstruction loss (tilted with TERM, then logged as
        ``term`` / ``term_<width>``, the plain full-width ``mse`` beside them)."""
        name = "mse" if self.term_tilt == 0 else "term"
        losses: dict[str, torch.Tensor] = {name: self.reconstruction_loss(recons[-1], x)}
        for width, inner in zip(self.widths[:-1], recons[:-1], strict=True):
            losses[f"{name}_{width}"] = self.reconstruction_loss(inner, x)
        return losses

    def training_forward(self, x: torch.Tensor, *, dead_mask: torch.Tensor | None = None) -> TrainOutput:
        x = self._check_input(x)
        dead_mask = self._check_dead_mask(dead_mask)
        if self.sparse:
            sel = self.selected(x)
            recons = self._sparse_prefix_reconstructions(sel)
            if self.use_matryoshka_aux_loss:
                auxk = self._sparse_auxk(x, recons, sel, dead_mask, self._segments())
            else:
                auxk = self._sparse_auxk(x, recons[-1], sel, dead_mask, [(0, self.d_sae)])
            z = densify(sel.z, sel.entries, (x.shape[0], self.d_sae))
        else:
            pre = self.scaled_pre(x)
            z = self.select(pre)
            recons = self.prefix_reconstructions(z)
            if self.use_matryoshka_aux_loss:
                auxk = self._matryoshka_auxk(x, recons, pre, dead_mask)
            else:
                auxk = self._auxk(x, recons[-1], pre, dead_mask)
        losses = self._losses(x, recons)
        loss = torch.stack(list(losses.values())).sum() + auxk
        if self.term_tilt:
            losses["mse"] = mse(recons[-1], x).detach()
        losses["auxk"] = auxk
        return self._output(loss, losses, z, recons[-1])

    def _matryoshka_auxk(
        self, x: torch.Tensor, recons: list[torch.Tensor], pre: torch.Tensor, dead_mask: torch.Tensor | None
    ) -> torch.Tensor:
        total = x.new_zeros(())
        if dead_mask is None:
            return total
        lo = 0
        for width, partial in zip(self.widths, recons, strict=True):
            term = self._auxk_term(x, partial, pre, dead_mask, lo, width)
            if term is not None:
                total = total + term
            lo = width
        return self.aux_coefficient * total

    def _hparams(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "widths": list(self.widths),
            "use_matryoshka_aux_loss": self.use_matryoshka_aux_loss,
            "topk_threshold_lr": self.topk_threshold_lr,
            **self._family_hparams(),
        }
