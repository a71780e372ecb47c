"""Sparse training steps of the TopK family: products that touch only the selected latents.

A TopK-family step keeps ``nnz`` (≈ ``k·b``) of the ``b·d_sae`` pre-activations. The dense step computes
``z @ W_dec`` and every backward product over all ``d_sae`` latents; here only the encoder's forward
product is dense (it is needed to select), and everything else costs ``O(nnz·d_in)``:

* :func:`gather_pre` returns the pre-activations at the selected entries as a differentiable ``[nnz]``
  whose backward scatters into ``W_enc``, ``b_enc`` and the (centred) input through
  ``embedding_bag`` (no ``[b, d_sae]`` gradient is formed);
* :func:`sparse_decode` is ``Σ_entries value · W_dec[col]`` per row, an ``embedding_bag`` in ``"sum"``
  mode with per-sample weights (its backward, too, only visits the selected rows of ``W_dec``).

Entries are given row-major: ``rows`` ascending (``cols`` in any order within a row), described by
:class:`Entries`. All ops are plain torch and run on any device.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F


class Entries(NamedTuple):
    """Selected entries of a ``[b, d_sae]`` matrix, grouped by row: ``rows``, ``cols`` int64 ``[nnz]``
    (``rows`` ascending) and ``offsets`` int64 ``[b]``, the start of each row's entries."""

    rows: torch.Tensor
    cols: torch.Tensor
    offsets: torch.Tensor

    @classmethod
    def from_rows(cls, rows: torch.Tensor, cols: torch.Tensor, num_rows: int) -> Entries:
        """Entries from ``rows`` (ascending) and ``cols`` ``[nnz]``, for a matrix of ``num_rows`` rows."""
        counts = torch.bincount(rows, minlength=num_rows)
        offsets = torch.zeros(num_rows, dtype=torch.int64, device=rows.device)
        offsets[1:] = counts.cumsum(0)[:-1]
        return cls(rows, cols, offsets)

    @classmethod
    def from_flat(cls, flat: torch.Tensor, shape: tuple[int, int]) -> Entries:
        """Entries at flat indices ``flat [nnz]`` (any order) of a ``shape`` matrix; sorted row-major."""
        flat = flat.sort().values
        return cls.from_rows(flat // shape[1], flat % shape[1], shape[0])

    @classmethod
    def per_row(cls, cols: torch.Tensor) -> Entries:
        """Entries with the same number per row: ``cols [b, m]`` (row ``i``'s columns in row ``i``)."""
        b, m = cols.shape
        rows = torch.arange(b, device=cols.device).repeat_interleave(m)
        return cls(rows, cols.reshape(-1), torch.arange(b, device=cols.device) * m)

    def select(self, keep: torch.Tensor) -> Entries:
        """The entries where ``keep [nnz]`` (bool) holds, still grouped by row."""
        return Entries.from_rows(self.rows[keep], self.cols[keep], self.offsets.shape[0])


#: :func:`top_indices` estimates its threshold from every ``_STRIDE``-th value.
_STRIDE = 16


def top_indices(values: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest of ``values [n]`` (any order; among equal values any), as
    ``values.topk(k)`` but faster for ``k ≪ n``: a threshold ``t`` is read off every 16th value (the rank
    ``1.25·k/16 + 8``-th largest of those), and if at least ``k`` values exceed ``t`` (the ``k`` largest
    are then all among them) the top ``k`` are taken from those; otherwise from all values. Exact
    either way."""
    n = values.numel()
    rank = math.ceil(1.25 * k / _STRIDE) + 8
    if k > 0 and n >= 64 * _STRIDE and rank * _STRIDE < n // 4:
        sample = values[::_STRIDE]
        threshold = sample.topk(rank, sorted=False).values.min()
        above = (values > threshold).nonzero().squeeze(1)
        if above.numel() >= k:
            return above[values[above].topk(k, sorted=False).indices]
    return values.topk(k, sorted=False).indices


def _bag(
    index: torch.Tensor, table: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """``out[i] = Σ_{j in bag i} weights[j] · table[index[j]]`` ``[bags, table.shape[1]]``, in
    ``table``'s dtype (under autocast the weights may come in bfloat16)."""
    return F.embedding_bag(index, table, offsets, mode="sum", per_sample_weights=weights.to(table.dtype))


class _GatherPre(torch.autograd.Function):
    """``pre[rows, cols]`` for ``pre = xc @ W_enc + b_enc`` already computed (``values``); the backward
    forms only the entries' contributions."""

    @staticmethod
    def forward(
        ctx: Any,
        xc: torch.Tensor,
        w_enc: torch.Tensor,
        b_enc: torch.Tensor,
        values: torch.Tensor,
        rows: torch.Tensor,
        cols: torch.Tensor,
        offsets: torch.Tensor,
    ) -> torch.Tensor:
        ctx.save_for_backward(xc, w_enc, rows, cols, offsets)
        return values

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        xc, w_enc, rows, cols, offsets = ctx.saved_tensors
        d_sae = w_enc.shape[1]
        grad = grad.contiguous()
        grad_xc = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:  # Σ_entries g · W_enc[:, col] per row
            grad_xc = _bag(cols, w_enc.T.contiguous(), offsets, grad).to(xc.dtype)
        if ctx.needs_input_grad[1]:  # column c of the gradient: Σ_{entries in column c} g · xc[row]
            order = torch.argsort(cols, stable=True)
            by_col = Entries.from_rows(cols[order], rows[order], d_sae)
            grad_w = _bag(by_col.cols, xc.to(w_enc.dtype), by_col.offsets, grad[order]).T
        if ctx.needs_input_grad[2]:
            grad_b = torch.zeros(d_sae, dtype=w_enc.dtype, device=grad.device)
            grad_b.index_add_(0, cols, grad.to(w_enc.dtype))
        return grad_xc, grad_w, grad_b, None, None, None, None


def gather_pre(
    xc: torch.Tensor, w_enc: torch.Tensor, b_enc: torch.Tensor, pre: torch.Tensor, entries: Entries
) -> torch.Tensor:
    """Differentiable ``(xc @ w_enc + b_enc)[rows, cols]`` ``[nnz]``, given ``pre [b, d_sae]`` (that
    product, computed without gradient). ``xc [b, d_in]``, ``w_enc [d_in, d_sae]``, ``b_enc [d_sae]``."""
    values = pre[entries.rows, entries.cols]
    out: torch.Tensor = _GatherPre.apply(
        xc, w_enc, b_enc, values, entries.rows, entries.cols, entries.offsets
    )
    return out


def sparse_decode(weights: torch.Tensor, w_dec: torch.Tensor, entries: Entries) -> torch.Tensor:
    """``Σ_entries weight · w_dec[col]`` per row ``[b, d_in]`` (no bias); ``weights [nnz]``, ``w_dec
    [d_sae, d_in]``."""
    return _bag(entries.cols, w_dec, entries.offsets, weights)


def densify(values: torch.Tensor, entries: Entries, shape: tuple[int, int]) -> torch.Tensor:
    """The ``shape`` matrix with ``values [nnz]`` at the entries, zero elsewhere (detached)."""
    out = torch.zeros(shape, dtype=values.dtype, device=values.device)
    out[entries.rows, entries.cols] = values.detach()
    return out


# -- the ReLU and JumpReLU steps ---------------------------------------------------------------------------
# Their entries are the pre-activations above a threshold (0, or JumpReLU's θ), so how many there are
# varies from step to step: a step with many entries (early in training, say) is cheaper dense.


def entries_where(mask: torch.Tensor) -> Entries:
    """The entries where bool ``mask [b, n]`` holds, row-major."""
    flat = mask.reshape(-1).nonzero().squeeze(1)
    n = mask.shape[1]
    return Entries.from_rows(flat // n, flat % n, mask.shape[0])


class _DensePre(torch.autograd.Function):
    """``pre = xc @ W_enc + b_enc`` already computed (``values``), with the dense product's backward."""

    @staticmethod
    def forward(
        ctx: Any, xc: torch.Tensor, w_enc: torch.Tensor, b_enc: torch.Tensor, values: torch.Tensor
    ) -> torch.Tensor:
        ctx.save_for_backward(xc, w_enc)
        ctx.b_dtype = b_enc.dtype
        return values

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        xc, w_enc = ctx.saved_tensors
        grad = grad.to(w_enc.dtype)  # the parameters' dtype, as gather_pre's backward
        grad_xc = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_xc = (grad @ w_enc.T).to(xc.dtype)
        if ctx.needs_input_grad[1]:
            grad_w = xc.to(w_enc.dtype).T @ grad
        if ctx.needs_input_grad[2]:
            grad_b = grad.sum(0).to(ctx.b_dtype)
        return grad_xc, grad_w, grad_b, None


def dense_pre(xc: torch.Tensor, w_enc: torch.Tensor, b_enc: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
    """Differentiable ``xc @ w_enc + b_enc`` ``[b, d_sae]`` given ``pre``, that product computed without
    gradient: a step that selected its entries and then chose to go dense does not compute it twice."""
    out: torch.Tensor = _DensePre.apply(xc, w_enc, b_enc, pre)
    return out


#: A ReLU step goes dense when more than this share of its ``b·d_sae`` pre-activations is positive
#: (measured on one CPU thread, whole steps with Adam: the sparse step is 1.2× faster at a share of 0.1
#: and 0.8-1.0× at 0.2, for 192×1,024 and 768×4,096 SAEs, batch 1,024).
RELU_MAX_DENSITY = 0.12
#: A JumpReLU step goes dense when its active entries plus an eighth of its straight-through band's
#: entries exceed this share of ``b·d_sae`` (a band entry costs one row sum; an active entry a gather, a
#: decode and their backward). Measured as above: 1.2× faster at 0.15 active, 1.4× at 0.05 active with
#: a band of 0.3.
JUMPRELU_MAX_DENSITY = 0.15
