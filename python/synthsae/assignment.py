"""Exact assignment (a drop-in for scipy's ``linear_sum_assignment``) and the matching metrics built
on it: MCC and feature uniqueness (SAELens definitions)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from synthsae import _core
from synthsae._validate import as_bool, as_native, is_real, to_numpy

if TYPE_CHECKING:
    import torch

#: Decoder rows per block of the cosine matrix.
_BLOCK = 4096


def linear_sum_assignment(
    cost_matrix: Any, maximize: bool = False
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Optimal one-to-one assignment of the rows and columns of ``cost_matrix`` ``[n, m]``.

    Same contract as ``scipy.optimize.linear_sum_assignment``: returns ``(row_ind, col_ind)``, with
    ``row_ind`` sorted, pairing ``min(n, m)`` rows and columns so that ``cost_matrix[row_ind,
    col_ind].sum()`` is minimal (maximal with ``maximize``). ``+inf`` (``-inf`` when maximizing)
    marks forbidden pairs. float32 and float64 arrays are solved in place (no copy, GIL released);
    other numeric types are converted to float64; torch tensors are moved to the CPU.

    Raises ``ValueError`` for a non-2-D input, NaN (or ``-inf``/``+inf`` on the wrong side) and
    ``"cost matrix is infeasible"`` when no complete assignment avoids the forbidden pairs.
    """
    try:
        cost = np.asarray(to_numpy(cost_matrix))
    except (TypeError, ValueError) as e:
        raise TypeError(f"cost_matrix must be a matrix of real numbers: {e}") from None
    if cost.ndim != 2:
        raise ValueError(f"cost_matrix: expected a matrix (2-D array), got a {cost.ndim}-D array")
    if cost.dtype not in (np.float32, np.float64):
        if not (is_real(cost.dtype) or cost.dtype == np.bool_):
            raise TypeError(f"cost_matrix must be real numbers, got dtype {cost.dtype}")
        cost = cost.astype(np.float64)
    maximize = as_bool("maximize", maximize)
    return _core.linear_sum_assignment(np.ascontiguousarray(cost), maximize)


class Matching(NamedTuple):
    """The MCC pairs: ``latents[k]`` (ascending) ↔ ``features[k]`` with ``abs_cos[k]`` = their |cos|."""

    latents: npt.NDArray[np.int64]
    features: npt.NDArray[np.int64]
    abs_cos: npt.NDArray[np.float32]


def _unit_rows(x: Any, name: str, device: Any = None) -> torch.Tensor:
    import torch

    if isinstance(x, torch.Tensor):
        t = x.detach()
        if t.dtype == torch.bool or t.is_complex():
            raise TypeError(f"{name} must be real numbers, got {t.dtype}")
    else:
        t = torch.from_numpy(as_native(name, x))
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D [rows, D], got shape {tuple(t.shape)}")
    t = t.to(device if device is not None else t.device, torch.float32)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return t / t.norm(dim=-1, keepdim=True).clamp(min=1e-8)


def _pair(decoder: Any, gt_features: Any) -> tuple[torch.Tensor, torch.Tensor]:
    d = _unit_rows(decoder, "decoder")
    g = _unit_rows(gt_features, "gt_features", d.device)
    if d.shape[1] != g.shape[1]:
        raise ValueError(
            f"decoder and gt_features must have the same width D, got {d.shape[1]} and {g.shape[1]}"
        )
    return d, g


def abs_cos_matrix(decoder: Any, gt_features: Any) -> npt.NDArray[np.float32]:
    """``|cos|`` ``[d_sae, N]`` float32 of the rows of ``decoder`` ``[d_sae, D]`` and ``gt_features``
    ``[N, D]`` (norms clamped at 1e-8), built by blocks of decoder rows on the decoder's device; the
    result is the only full-size copy."""
    d, g = _pair(decoder, gt_features)
    out = np.empty((d.shape[0], g.shape[0]), dtype=np.float32)
    for lo in range(0, d.shape[0], _BLOCK):
        out[lo : lo + _BLOCK] = (d[lo : lo + _BLOCK] @ g.T).abs_().cpu().numpy()
    return out


def mean_max_abs_cos(rows: Any, block: int = 2048) -> float:
    """ρ_mm of a dictionary ``[n, D]`` (numpy or torch): the mean over rows of the largest ``|cos|``
    with another row, in blocks of ``block`` rows (memory ``[block, n]``); 0.0 below two rows."""
    import torch

    u = _unit_rows(rows, "rows")
    if u.shape[0] < 2:
        return 0.0
    best = []
    with torch.no_grad():
        for lo in range(0, u.shape[0], block):
            cos = (u[lo : lo + block] @ u.T).abs_()
            cos[torch.arange(cos.shape[0]), lo + torch.arange(cos.shape[0])] = 0
            best.append(cos.max(dim=1).values)
    return float(torch.cat(best).double().mean())


def mcc(decoder: Any, gt_features: Any, *, return_matching: bool = False) -> float | tuple[float, Matching]:
    """Mean correlation coefficient: the mean ``|cos|`` over the ``min(d_sae, N)`` pairs of an optimal
    one-to-one matching of decoder rows ``[d_sae, D]`` to ground-truth features ``[N, D]`` (SAELens's
    definition; numpy or torch on any device). 0.0 when either side is empty. With
    ``return_matching=True`` also returns the :class:`Matching`."""
    return_matching = as_bool("return_matching", return_matching)
    s = abs_cos_matrix(decoder, gt_features)
    rows, cols = linear_sum_assignment(s, maximize=True)
    values = s[rows, cols]
    value = float(values.mean()) if len(values) else 0.0
    return (value, Matching(rows, cols, values)) if return_matching else value


def feature_uniqueness(decoder: Any, gt_features: Any) -> float:
    """Distinct arg-max ``|cos|`` ground-truth features over decoder rows, divided by ``d_sae``
    (SAELens's definition: ties go to the first feature; 0.0 without latents)."""
    import torch

    d, g = _pair(decoder, gt_features)
    if d.shape[0] == 0 or g.shape[0] == 0:
        return 0.0
    blocks = range(0, d.shape[0], _BLOCK)
    best = torch.cat([(d[lo : lo + _BLOCK] @ g.T).abs_().argmax(dim=1) for lo in blocks])
    return len(torch.unique(best)) / d.shape[0]
