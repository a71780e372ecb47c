"""What TopK, BatchTopK and Matryoshka BatchTopK share: decoder-norm rescaling, the training step, AuxK.

* Pre-activations: with ``rescale_acts_by_decoder_norm=True`` (SAELens's training default) they are
  multiplied by the decoder row norms and ``decode`` divides by them: reconstruction uses unit decoder
  directions and each row's norm acts as an encoder gain, so no renormalisation is needed (SAELens does
  none; see ``fold_decoder_norm`` for an equivalent unit-norm parametrisation). A zero row (zero
  latents) adds nothing: the norms divided by are clamped (:func:`divisor`). With ``False`` the rows are
  renormalised to unit norm in ``after_step`` instead.
* Loss = MSE + **AuxK** (SAELens ``calculate_topk_aux_loss``, after Gao et al. 2024): with ``n_dead`` dead
  latents (``dead_mask`` from the trainer) and ``k_aux = d_in // 2``, take the top ``min(k_aux, n_dead)``
  *pre-activations* (not ReLU'd) among dead latents, decode them without ``b_dec`` and fit the detached
  residual ``e = x - x̂``: ``aux_coefficient · min(n_dead / k_aux, 1) · mean_b Σ_d (ê - e)²``. Zero when
  no latent is dead or ``dead_mask`` is None. ``aux_coefficient`` defaults to **1.0**, SAELens's default
  (OpenAI's paper used 1/32).
* **K schedule** (``k_start``, ``k_anneal_steps``; off by default): in training the number of kept
  latents starts at ``k_start`` and decreases linearly to ``k`` over the first ``k_anneal_steps`` steps
  (``k(t) = k_start + (k − k_start)·t / k_anneal_steps``, then ``k``), as in the post-paper
  "LISTA-Matryoshka" recipe ("Letting Claude do Autonomous Research to Improve SAEs", LessWrong,
  2026-03); inference always uses ``k``.
* **ISTA refinement** (``ista_steps`` n > 0; 0 = off): after the first selection ``z₀``, n iterative
  shrinkage-thresholding steps on the reconstruction ``x̂(z) = z·Ū + b_dec`` (``Ū`` the decoder's rows as
  ``decode`` uses them: unit directions when rescaling): ``s = z_t + η·(x − x̂(z_t))·Ūᵀ``, then
  ``z_{t+1}`` = the architecture's selection applied to ``s`` (top-k per row, top k·b over the batch in
  training or the threshold at inference), ReLU'd; differentiable throughout. ``η`` is
  ``ista_step_size`` (default 1.0), or a learned scalar starting there with ``learn_step_size=True``
  (the learned step of LISTA, Gregor and LeCun, ICML 2010). One such step as the encoder is an
  ingredient of the "LISTA-Matryoshka" recipe (the post above); a plain ISTA step (Daubechies, Defrise
  and De Mol, 2004) was reported to do as well. ``ista_form="lista"`` is the form of the recipe's
  published code instead: the residual goes through the encoder and adds to the (decoder-norm-scaled)
  pre-activations of every latent, ``pre ← pre + η·(x − x̂(z_t))·W_enc``, then ``z_{t+1}`` = the
  selection applied to ``pre`` (the learned encoder plays LISTA's learned matrix).
* **TERM** (``term_tilt`` t > 0; 0 = off): the reconstruction loss is the tilted empirical risk of the
  rows' squared errors ``e_i = Σ_d (x̂ − x)²``, ``(1/t)·log(mean_i exp(t·e_i))`` (Li, Beirami, Sanjabi and
  Smith, "Tilted Empirical Risk Minimization", ICLR 2021), which weights rows by ``exp(t·e_i)``; it tends
  to the MSE as t → 0. The logged ``"mse"`` stays the plain MSE; ``"term"`` is the tilted loss. With
  ``term_relative=True`` the tilt applies to each row's error relative to the batch mean ``ē`` (held
  constant), ``ē·(1/t)·log(mean_i exp(t·e_i/ē))``, so rows are weighted by ``softmax(t·e_i/ē)`` at any
  scale of the errors (the normalized tilt of the LISTA-Matryoshka recipe's code).
* **Sparse steps** (``sparse=True``, the default): only the encoder's forward product is dense; the
  decoder, AuxK's dead-latent reconstruction and every backward product touch only the selected latents
  (:mod:`synthsae.saes.sparse_ops`). ``sparse=False`` is the dense reference: the same loss and gradients
  up to float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from synthsae._validate import as_bool, as_int, as_nonnegative, as_positive
from synthsae.errors import ConfigError
from synthsae.saes.base import SAE, TrainOutput, mse
from synthsae.saes.sparse_ops import Entries, densify, gather_pre, sparse_decode

#: A group of latents: a slice of them, or their indices (int64, ascending).
Segment = slice | torch.Tensor

#: The smallest decoder row norm divided by (see :func:`divisor`).
MIN_NORM = 1e-12


def divisor(norms: torch.Tensor) -> torch.Tensor:
    """Decoder row norms to divide by: clamped to at least :data:`MIN_NORM` (or the dtype's smallest
    normal number, if larger), so that a zero row, whose latents are zero, contributes nothing instead
    of ``0/0``. Every norm above the clamp is returned unchanged, so are the quotients."""
    return norms.clamp_min(max(MIN_NORM, torch.finfo(norms.dtype).tiny))


# Gathers that carry gradient use ``index_select``: its backward (``index_add_``) sums repeated indices
# in a fixed order, where advanced indexing's (``index_put_(accumulate=True)``) does not on CPU threads.
class Selected(NamedTuple):
    """A sparse step's selection: centred input ``xc [b, d_in]``, pre-activations ``hidden [b, d_sae]``
    and their decoder-norm-scaled ``pre [b, d_sae]`` (both without gradient), the decoder row norms
    ``norms [d_sae]`` (None without rescaling), the selected ``entries`` and their latents ``z [nnz]``."""

    xc: torch.Tensor
    hidden: torch.Tensor
    pre: torch.Tensor
    norms: torch.Tensor | None
    entries: Entries
    z: torch.Tensor


class TopKFamilySAE(SAE):
    """Base of the TopK family: ``k`` latents per row (on average, for the batch variants). Subclasses
    implement ``check_k`` (what ``k`` may be) and ``select_entries(pre)`` (which of the scaled
    pre-activations ``pre [b, d_sae]`` are kept in training); the constructor, training step (sparse or
    dense), decoding and AuxK live here."""

    k: float

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        k: float,
        *,
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
        super().__init__(d_in, d_sae, decoder_init_norm=decoder_init_norm, seed=seed, device=device)
        self.sparse = as_bool("sparse", sparse)
        self.term_tilt = as_nonnegative("term_tilt", term_tilt)
        self.term_relative = as_bool("term_relative", term_relative)
        self.ista_steps = as_int("ista_steps", ista_steps, minimum=0, maximum=100)
        self.ista_step_size = as_positive("ista_step_size", ista_step_size)
        self.learn_step_size = as_bool("learn_step_size", learn_step_size)
        if ista_form not in ("ista", "lista"):
            raise ConfigError(f"ista_form must be 'ista' or 'lista', got {ista_form!r}")
        self.ista_form = ista_form
        if self.learn_step_size:
            self.ista_eta = torch.nn.Parameter(torch.tensor(self.ista_step_size, device=device))
        self.k_anneal_steps = as_int("k_anneal_steps", k_anneal_steps, minimum=0)
        self.aux_coefficient = as_nonnegative("aux_coefficient", aux_coefficient)
        self.rescale_acts_by_decoder_norm = as_bool(
            "rescale_acts_by_decoder_norm", rescale_acts_by_decoder_norm
        )
        self.k = self.check_k(k)
        self.k_start = None if k_start is None else self.check_k(k_start)
        if self.k_start is not None and self.k_anneal_steps == 0:
            raise ConfigError("k_start needs k_anneal_steps > 0 (the steps over which k decreases)")
        self.k_aux = max(self.d_in // 2, 1)

    def current_k(self) -> float:
        """The ``k`` of this training step: the K schedule's value, or ``k`` (always ``k`` in eval
        mode)."""
        if self.k_start is None or not self.training:
            return self.k
        t = int(self.n_steps)
        if t >= self.k_anneal_steps:
            return self.k
        return self.k_start + (self.k - self.k_start) * t / self.k_anneal_steps

    def step_size(self) -> torch.Tensor | float:
        """The ISTA step ``η``: the learned scalar, or ``ista_step_size``."""
        return self.ista_eta if self.learn_step_size else self.ista_step_size

    def _unit_product(self, r: torch.Tensor) -> torch.Tensor:
        """``r·Ūᵀ`` ``[b, d_sae]`` for residuals ``r [b, d_in]`` (``Ū`` the decoder rows as decoded)."""
        product = r @ self.W_dec.T
        return product / divisor(self.W_dec.norm(dim=-1)) if self.rescale_acts_by_decoder_norm else product

    def _encoder_product(self, r: torch.Tensor) -> torch.Tensor:
        """``r·W_enc`` ``[b, d_sae]``, times ``‖W_dec_l‖`` when rescaling (as the pre-activations)."""
        product = r @ self.W_enc
        return product * self.W_dec.norm(dim=-1) if self.rescale_acts_by_decoder_norm else product

    def refine(
        self,
        x: torch.Tensor,
        pre: torch.Tensor,
        activation: Callable[[torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        """The latents ``[b, d_sae]`` of ``x`` from its (scaled) pre-activations ``pre``: ``activation(pre)``,
        then ``ista_steps`` refinement steps, each selecting with ``activation`` (dense; differentiable)."""
        z = activation(pre)
        for _ in range(self.ista_steps):
            residual = x - self.decode(z)
            if self.ista_form == "lista":
                pre = pre + self.step_size() * self._encoder_product(residual)
                z = activation(pre)
            else:
                z = activation(z + self.step_size() * self._unit_product(residual))
        return z

    def _refine_selected(self, x: torch.Tensor, sel: Selected) -> Selected:
        """The sparse step's selection after ``ista_steps`` refinement steps: each chooses entries on the
        dense ``s`` (no gradient) and computes their values from the residual and, for ISTA, the kept
        latents or, for LISTA, the pre-activations (the first product's entries plus each step's)."""
        b = x.shape[0]
        lista = self.ista_form == "lista"
        pre = sel.pre  # LISTA: the updated pre-activations, without gradient
        steps: list[tuple[torch.Tensor, torch.Tensor | float]] = []  # LISTA: each step's residual and η
        for _ in range(self.ista_steps):
            residual = x - (self.decode_entries(sel, sel.z, sel.entries) + self.b_dec)
            eta = self.step_size()
            with torch.no_grad():
                if lista:
                    pre = pre + eta * self._encoder_product(residual)
                    s = pre
                else:
                    s = densify(sel.z, sel.entries, (b, self.d_sae)) + eta * self._unit_product(residual)
            entries = self.select_entries(s)
            if lista:
                steps.append((residual, eta))
                value = self._scaled(
                    gather_pre(sel.xc, self.W_enc, self.b_enc, sel.hidden, entries), sel.norms, entries
                )
                for r, step_eta in steps:
                    value = value + step_eta * self._scaled(
                        _gathered(r, self.W_enc, entries), sel.norms, entries
                    )
                z = value.relu()
            else:
                previous = torch.zeros(b, self.d_sae, dtype=sel.z.dtype, device=sel.z.device)
                previous = previous.index_put((sel.entries.rows, sel.entries.cols), sel.z)
                rows = self.W_dec.index_select(0, entries.cols)
                if sel.norms is not None:
                    rows = rows / divisor(sel.norms.index_select(0, entries.cols))[:, None]
                step = (residual.index_select(0, entries.rows) * rows).sum(dim=-1)
                z = (previous[entries.rows, entries.cols] + eta * step).relu()
            sel = Selected(sel.xc, sel.hidden, sel.pre, sel.norms, entries, z)
        return sel

    def reconstruction_loss(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The MSE of ``x̂ [b, d_in]`` against ``x``, tilted by ``term_tilt`` when it is > 0 (TERM)."""
        if self.term_tilt == 0:
            return mse(x_hat, x)
        return tilted_mse(x_hat, x, self.term_tilt, relative=self.term_relative)

    def _reconstruction_losses(self, x_hat: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"mse": …}`` plus, with TERM, ``{"term": the tilted loss}``; the optimised term is the last."""
        plain = mse(x_hat, x)
        return (
            {"mse": plain}
            if self.term_tilt == 0
            else {"mse": plain, "term": self.reconstruction_loss(x_hat, x)}
        )

    def check_k(self, k: Any) -> float:
        """``k`` checked against ``d_sae`` (TypeError/ValueError naming ``k``)."""
        raise NotImplementedError

    def select_entries(self, pre: torch.Tensor) -> Entries:
        """The entries of scaled pre-activations ``pre [b, d_sae]`` kept in training (their latents are
        ``relu(pre)`` there, zero elsewhere)."""
        raise NotImplementedError

    def select(self, pre: torch.Tensor) -> torch.Tensor:
        """Training-mode latents ``[b, d_sae]``: ``relu(pre)`` at :meth:`select_entries`, zero elsewhere
        (differentiable in ``pre``)."""
        e = self.select_entries(pre.detach())
        return torch.zeros_like(pre).index_put((e.rows, e.cols), pre[e.rows, e.cols].relu())

    def scaled_pre(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activations, times ``‖W_dec_l‖`` when ``rescale_acts_by_decoder_norm`` ``[b, d_sae]``."""
        pre = self.hidden_pre(x)
        if self.rescale_acts_by_decoder_norm:
            pre = pre * self.W_dec.norm(dim=-1)
        return pre

    def _unit_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Latents in units of the decoder's rows as used: divided by the row norms when rescaling."""
        return z / divisor(self.W_dec.norm(dim=-1)) if self.rescale_acts_by_decoder_norm else z

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(z / ‖W_dec_l‖)·W_dec + b_dec`` when rescaling (unit directions; a zero row adds nothing),
        else ``z·W_dec + b_dec``."""
        return self._unit_latents(z) @ self.W_dec + self.b_dec

    def selected(self, x: torch.Tensor) -> Selected:
        """The sparse step's selection for input ``x [b, d_in]``: one dense product without gradient,
        then the kept latents as a differentiable ``[nnz]``."""
        xc = x - self.b_dec
        with torch.no_grad():
            hidden = xc @ self.W_enc + self.b_enc
            pre = hidden * self.W_dec.norm(dim=-1) if self.rescale_acts_by_decoder_norm else hidden
        entries = self.select_entries(pre)
        norms = self.W_dec.norm(dim=-1) if self.rescale_acts_by_decoder_norm else None
        z = self._scaled(gather_pre(xc, self.W_enc, self.b_enc, hidden, entries), norms, entries).relu()
        sel = Selected(xc, hidden, pre, norms, entries, z)
        return self._refine_selected(x, sel) if self.ista_steps else sel

    def _scaled(self, values: torch.Tensor, norms: torch.Tensor | None, entries: Entries) -> torch.Tensor:
        return values if norms is None else values * norms.index_select(0, entries.cols)

    def decode_entries(self, sel: Selected, values: torch.Tensor, entries: Entries) -> torch.Tensor:
        """``Σ_entries value·W_dec[col]`` per row, in unit decoder directions when rescaling; no
        ``b_dec`` ``[b, d_in]``."""
        unit = values if sel.norms is None else values / divisor(sel.norms.index_select(0, entries.cols))
        return sparse_decode(unit, self.W_dec, entries)

    def training_forward(self, x: torch.Tensor, *, dead_mask: torch.Tensor | None = None) -> TrainOutput:
        x = self._check_input(x)
        dead_mask = self._check_dead_mask(dead_mask)
        if self.sparse:
            sel = self.selected(x)
            x_hat = self.decode_entries(sel, sel.z, sel.entries) + self.b_dec
            losses = self._reconstruction_losses(x_hat, x)
            auxk = self._sparse_auxk(x, x_hat, sel, dead_mask, [slice(0, self.d_sae)])
            z = densify(sel.z, sel.entries, (x.shape[0], self.d_sae))
            return self._output(list(losses.values())[-1] + auxk, {**losses, "auxk": auxk}, z, x_hat)
        pre = self.scaled_pre(x)
        z = self.refine(x, pre, self.select)
        x_hat = self.decode(z)
        losses = self._reconstruction_losses(x_hat, x)
        auxk = self._auxk(x, x_hat, pre, dead_mask)
        return self._output(list(losses.values())[-1] + auxk, {**losses, "auxk": auxk}, z, x_hat)

    def _auxk_term(
        self,
        x: torch.Tensor,
        x_hat: torch.Tensor,
        pre: torch.Tensor,
        dead_mask: torch.Tensor,
        latents: Segment,
    ) -> torch.Tensor | None:
        """One AuxK term for ``latents`` (a slice or ascending indices; unscaled by
        ``aux_coefficient``); None if none is dead."""
        dead = dead_mask[latents]
        num_dead = int(dead.sum())
        if num_dead == 0:
            return None
        k_aux = min(self.k_aux, num_dead)
        scale = min(num_dead / self.k_aux, 1.0)
        residual = (x - x_hat).detach()
        candidates = pre[:, latents].masked_fill(~dead, -math.inf)
        values, indices = candidates.topk(k_aux, dim=-1, sorted=False)
        acts = torch.zeros_like(candidates).scatter(-1, indices, values)
        w = self.W_dec[latents]
        if self.rescale_acts_by_decoder_norm:
            acts = acts / divisor(w.norm(dim=-1))
        return scale * mse(acts @ w, residual)

    def _sparse_auxk(
        self,
        x: torch.Tensor,
        x_hat: torch.Tensor | list[torch.Tensor],
        sel: Selected,
        dead_mask: torch.Tensor | None,
        segments: list[Segment],
    ) -> torch.Tensor:
        """AuxK as :meth:`_auxk_term`, summed over ``segments`` (slices or ascending indices of latents;
        each with its own reconstruction when ``x_hat`` is a list), touching only the dead latents."""
        total = x.new_zeros(())
        if dead_mask is None:
            return total
        recons = x_hat if isinstance(x_hat, list) else [x_hat]
        for segment, recon in zip(segments, recons, strict=True):
            if isinstance(segment, slice):
                dead = dead_mask[segment].nonzero().squeeze(1) + segment.start
            else:
                dead = segment[dead_mask[segment]]
            if dead.numel() == 0:
                continue
            scale = min(dead.numel() / self.k_aux, 1.0)
            if dead.numel() <= self.k_aux:  # every dead latent is kept: dense over the dead columns
                acts = sel.xc @ self.W_enc.index_select(1, dead) + self.b_enc.index_select(0, dead)
                w_dec = self.W_dec.index_select(0, dead)
                if sel.norms is not None:
                    norms = sel.norms.index_select(0, dead)
                    acts = acts * norms / divisor(norms)
                aux = acts @ w_dec
            else:  # the k_aux largest dead pre-activations of each row
                local = sel.pre[:, dead].topk(self.k_aux, dim=-1, sorted=False).indices
                entries = Entries.per_row(dead[local])
                pre = gather_pre(sel.xc, self.W_enc, self.b_enc, sel.hidden, entries)
                aux = self.decode_entries(sel, self._scaled(pre, sel.norms, entries), entries)
            total = total + scale * mse(aux, (x - recon).detach())
        return self.aux_coefficient * total

    def _auxk(
        self, x: torch.Tensor, x_hat: torch.Tensor, pre: torch.Tensor, dead_mask: torch.Tensor | None
    ) -> torch.Tensor:
        if dead_mask is None:
            return x_hat.new_zeros(())
        term = self._auxk_term(x, x_hat, pre, dead_mask, slice(0, self.d_sae))
        return x_hat.new_zeros(()) if term is None else self.aux_coefficient * term

    @torch.no_grad()
    def fold_decoder_norm(self) -> None:
        """Like :meth:`SAE.fold_decoder_norm`; with rescaling both latents and ``forward`` are unchanged.
        Without rescaling it would change the top-k selection, so it raises (as SAELens)."""
        if not self.rescale_acts_by_decoder_norm:
            raise NotImplementedError("fold_decoder_norm needs rescale_acts_by_decoder_norm=True")
        super().fold_decoder_norm()

    @torch.no_grad()
    def after_step(self, output: TrainOutput) -> None:
        if not self.rescale_acts_by_decoder_norm:
            self.normalize_decoder()
        super().after_step(output)

    def _family_hparams(self) -> dict[str, Any]:
        """The family's settings; the K schedule and TERM only when on (older files lack them)."""
        out: dict[str, Any] = {
            "aux_coefficient": self.aux_coefficient,
            "rescale_acts_by_decoder_norm": self.rescale_acts_by_decoder_norm,
            "sparse": self.sparse,
        }
        if self.k_start is not None:
            out.update(k_start=self.k_start, k_anneal_steps=self.k_anneal_steps)
        if self.term_tilt:
            out["term_tilt"] = self.term_tilt
        if self.term_relative:
            out["term_relative"] = True
        if self.ista_steps:
            out.update(
                ista_steps=self.ista_steps,
                ista_step_size=self.ista_step_size,
                learn_step_size=self.learn_step_size,
            )
            if self.ista_form != "ista":
                out["ista_form"] = self.ista_form
        return out


def _gathered(r: torch.Tensor, w_enc: torch.Tensor, entries: Entries) -> torch.Tensor:
    """Differentiable ``(r @ w_enc)[rows, cols]`` ``[nnz]`` without the dense product."""
    return (r.index_select(0, entries.rows) * w_enc.T.index_select(0, entries.cols)).sum(dim=-1)


def tilted_mse(x_hat: torch.Tensor, x: torch.Tensor, tilt: float, *, relative: bool = False) -> torch.Tensor:
    """TERM's tilted risk of the rows' squared errors ``e_i = Σ_d (x̂ − x)²``:
    ``(logsumexp_i(t·e_i) − log b) / t`` for tilt ``t > 0`` (scalar; equals the MSE's
    ``mean_i e_i`` as ``t → 0`` and tends to ``max_i e_i`` as ``t → ∞``). ``relative``: the tilt applies
    to the errors relative to their batch mean ``ē`` (held constant),
    ``ē·(logsumexp_i(t·e_i/ē) − log b) / t``, whose gradient weights rows by ``softmax_i(t·e_i/ē)``
    whatever the scale of the errors."""
    errors = (x_hat - x).pow(2).sum(dim=-1)
    if not relative:
        return (torch.logsumexp(tilt * errors, dim=0) - math.log(errors.shape[0])) / tilt
    scale = errors.detach().mean().clamp_min(torch.finfo(errors.dtype).tiny)
    return scale * (torch.logsumexp(tilt * errors / scale, dim=0) - math.log(errors.shape[0])) / tilt
