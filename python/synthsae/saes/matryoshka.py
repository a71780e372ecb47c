"""Matryoshka BatchTopK SAE: BatchTopK latents trained to reconstruct from every prefix of the latents.

For each prefix width ``w`` in ``widths`` (the last is ``d_sae``) reconstruct with ``z[:, :w]`` only:
``x̂_w = decode`` restricted to latents ``< w``. Loss = **Σ_w MSE(x̂_w)** (a sum, not a mean, as SAELens:
the full-width MSE plus one ``inner_mse_loss`` per inner width) + AuxK. With
``use_matryoshka_aux_loss=True`` (the sweep's setting; SAELens's default is False) AuxK is computed per
level segment ``[w_prev, w)``: that segment's dead latents fit the residual of the prefix-``w``
reconstruction, each term scaled by ``min(n_dead_segment / k_aux, 1)`` and summed.

Two options from the post-paper "LISTA-Matryoshka" recipe ("Letting Claude do Autonomous Research to
Improve SAEs", LessWrong, 2026-03), off by default:

* ``detach_inner=True``: each inner level's loss trains only its own segment: its reconstruction is
  ``b_dec + (the earlier segments' contribution, detached) + its segment's``; the outermost level's
  loss (the full reconstruction) is not detached and trains every latent.
* ``sort_by_frequency=True``: the levels hold latents by firing frequency, not by index: level ``i``
  is the latents ranked ``[w_{i−1}, w_i)`` by an exponential moving average of their firing rate
  (``frequency_ema``, updated in ``after_step`` with rate ``frequency_lr``; ties by index), so the
  most frequent latents form the innermost level.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import torch

from synthsae._validate import as_bool, as_fraction, as_int
from synthsae.errors import ConfigError, ConfigTypeError
from synthsae.saes.base import TrainOutput, mse
from synthsae.saes.batchtopk import BatchTopKSAE, batch_k
from synthsae.saes.sparse_ops import densify
from synthsae.saes.topk_family import Segment, Selected


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
    #: With ``sort_by_frequency``: each latent's firing-rate moving average ``[d_sae]`` (float64).
    frequency_ema: torch.Tensor
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
        term_relative: bool = False,
        ista_steps: int = 0,
        ista_step_size: float = 1.0,
        learn_step_size: bool = False,
        ista_form: str = "ista",
        detach_inner: bool = False,
        sort_by_frequency: bool = False,
        frequency_lr: float = 0.01,
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
            term_relative=term_relative,
            ista_steps=ista_steps,
            ista_step_size=ista_step_size,
            learn_step_size=learn_step_size,
            ista_form=ista_form,
            seed=seed,
            device=device,
        )
        self.widths = self._check_widths(widths)
        self.use_matryoshka_aux_loss = as_bool("use_matryoshka_aux_loss", use_matryoshka_aux_loss)
        self.detach_inner = as_bool("detach_inner", detach_inner)
        self.sort_by_frequency = as_bool("sort_by_frequency", sort_by_frequency)
        self.frequency_lr = as_fraction("frequency_lr", frequency_lr)
        if self.sort_by_frequency:
            self.register_buffer("frequency_ema", torch.zeros(self.d_sae, dtype=torch.float64, device=device))

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

    def levels(self) -> list[Segment]:
        """The latents of each level: slices of the index order, or with ``sort_by_frequency`` the
        ascending indices of the latents ranked ``[w_{i−1}, w_i)`` by ``frequency_ema``."""
        pairs = list(itertools.pairwise([0, *self.widths]))
        if not self.sort_by_frequency:
            return [slice(lo, hi) for lo, hi in pairs]
        order = torch.sort(self.frequency_ema, descending=True, stable=True).indices
        return [order[lo:hi].sort().values for lo, hi in pairs]

    def _level_of(self, levels: list[Segment]) -> torch.Tensor:
        """int64 ``[d_sae]``: each latent's level."""
        out = torch.empty(self.d_sae, dtype=torch.int64, device=self.W_dec.device)
        for i, latents in enumerate(levels):
            out[latents] = i
        return out

    def _accumulate(self, contributions: list[torch.Tensor]) -> list[torch.Tensor]:
        """Prefix reconstructions from each level's contribution ``[b, d_in]`` (no ``b_dec``): the
        running sums plus ``b_dec``, the earlier levels detached in the inner ones with
        ``detach_inner``."""
        out = []
        current = self.b_dec.expand(contributions[0].shape[0], self.d_in)
        last = len(contributions) - 1
        for i, part in enumerate(contributions):
            if self.detach_inner and i < last:
                earlier = current - self.b_dec
                out.append(self.b_dec + earlier.detach() + part)
            else:
                out.append(current + part)
            current = current + part
        return out

    def prefix_reconstructions(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Reconstructions from the latents of the first ``i`` levels, for each ``i`` (last =
        ``decode(z)``; ``z[:, :w]·W_dec[:w] + b_dec`` without the options)."""
        unit = self._unit_latents(z)
        return self._accumulate([unit[:, latents] @ self.W_dec[latents] for latents in self.levels()])

    def _sparse_prefix_reconstructions(self, sel: Selected) -> list[torch.Tensor]:
        """:meth:`prefix_reconstructions` from the sparse step's selection."""
        levels = self.levels()
        if self.sort_by_frequency:
            level = self._level_of(levels).index_select(0, sel.entries.cols)
            keeps = [level == i for i in range(len(levels))]
        else:
            cols = sel.entries.cols
            keeps = [(cols >= s.start) & (cols < s.stop) for s in levels if isinstance(s, slice)]
        parts = [self.decode_entries(sel, sel.z[keep], sel.entries.select(keep)) for keep in keeps]
        return self._accumulate(parts)

    @torch.no_grad()
    def after_step(self, output: TrainOutput) -> None:
        if self.sort_by_frequency:
            fired = (output.latents != 0).double().mean(dim=0)
            self.frequency_ema.mul_(1 - self.frequency_lr).add_(self.frequency_lr * fired)
        super().after_step(output)

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
                auxk = self._sparse_auxk(x, recons, sel, dead_mask, self.levels())
            else:
                auxk = self._sparse_auxk(x, recons[-1], sel, dead_mask, [slice(0, self.d_sae)])
            z = densify(sel.z, sel.entries, (x.shape[0], self.d_sae))
        else:
            pre = self.scaled_pre(x)
            z = self.refine(x, pre, self.select)
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
        for latents, partial in zip(self.levels(), recons, strict=True):
            term = self._auxk_term(x, partial, pre, dead_mask, latents)
            if term is not None:
                total = total + term
        return self.aux_coefficient * total

    def _hparams(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "widths": list(self.widths),
            "use_matryoshka_aux_loss": self.use_matryoshka_aux_loss,
            "topk_threshold_lr": self.topk_threshold_lr,
            **self._family_hparams(),
            **({"detach_inner": True} if self.detach_inner else {}),
            **(
                {"sort_by_frequency": True, "frequency_lr": self.frequency_lr}
                if self.sort_by_frequency
                else {}
            ),
        }
