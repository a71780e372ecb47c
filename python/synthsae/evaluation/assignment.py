"""Exact assignment (a drop-in for scipy's ``linear_sum_assignment``) and the matching metrics built
on it: MCC and feature uniqueness (SAELens definitions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from synthsae import _core
from synthsae._validate import as_bool, as_native, is_real, to_numpy
from synthsae.errors import ConfigError, ConfigTypeError

if TYPE_CHECKING:
    import torch

#: Rows of every ``|cos|`` GEMM: each entry, stored or streamed, comes from a ``[TILE, D] × [D, m]``
#: product (zero rows pad a short tile), so both modes see the same bits as long as the BLAS gives a
#: row the same result wherever it sits in the tile (true of the CPU builds measured here, and checked
#: by the tests on the machine running them; BLAS does not promise it, and where it fails the two
#: modes can differ by a few ulps of an entry).
TILE = 256
#: Above this size (bytes of float32 ``|cos|``) :func:`mcc` and :func:`~synthsae.evaluate` stream the
#: matrix instead of storing it (``streaming=None``).
STREAMING_BYTES = 1 << 31
#: Entries of one streamed block (``[rows, max(d_sae, N)]`` float32): 256 MiB.
STREAM_BLOCK_ENTRIES = 1 << 26


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
        raise ConfigTypeError(f"cost_matrix must be a matrix of real numbers: {e}") from None
    if cost.ndim != 2:
        raise ConfigError(f"cost_matrix: expected a matrix (2-D array), got a {cost.ndim}-D array")
    if cost.dtype not in (np.float32, np.float64):
        if not (is_real(cost.dtype) or cost.dtype == np.bool_):
            raise ConfigTypeError(f"cost_matrix must be real numbers, got dtype {cost.dtype}")
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
            raise ConfigTypeError(f"{name} must be real numbers, got {t.dtype}")
    else:
        t = torch.from_numpy(as_native(name, x))
    if t.ndim != 2:
        raise ConfigError(f"{name} must be 2-D [rows, D], got shape {tuple(t.shape)}")
    t = t.to(device if device is not None else t.device, torch.float32)
    step = max(1, (1 << 24) // max(t.shape[1], 1))  # the finiteness mask a block at a time
    if not all(bool(torch.isfinite(t[lo : lo + step]).all()) for lo in range(0, t.shape[0], step)):
        raise ConfigError(f"{name} must be finite (no NaN or inf)")
    return t / t.norm(dim=-1, keepdim=True).clamp(min=1e-8)


def unit_pair(decoder: Any, gt_features: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``decoder`` ``[d_sae, D]`` and ``gt_features`` ``[N, D]`` validated, as float32 unit rows on the
    decoder's device (norms clamped at 1e-8)."""
    d = _unit_rows(decoder, "decoder")
    g = _unit_rows(gt_features, "gt_features", d.device)
    if d.shape[1] != g.shape[1]:
        raise ConfigError(
            f"decoder and gt_features must have the same width D, got {d.shape[1]} and {g.shape[1]}"
        )
    return d, g


def abs_cos_matrix(decoder: Any, gt_features: Any) -> npt.NDArray[np.float32]:
    """``|cos|`` ``[d_sae, N]`` float32 of the rows of ``decoder`` ``[d_sae, D]`` and ``gt_features``
    ``[N, D]`` (norms clamped at 1e-8), built by blocks on the decoder's device; the result is the only
    full-size copy."""
    return unit_abs_cos(*unit_pair(decoder, gt_features))


def unit_abs_cos(d: torch.Tensor, g: torch.Tensor) -> npt.NDArray[np.float32]:
    """``|cos|`` ``[n, m]`` of unit rows ``d`` ``[n, D]`` and ``g`` ``[m, D]``, computed with the
    smaller side's rows as GEMM rows (as the streamed matching does), a block at a time."""
    n, m = d.shape[0], g.shape[0]
    out = np.empty((n, m), dtype=np.float32)
    a, b = (g, d) if n > m else (d, g)
    step = TILE * max(1, (1 << 24) // max(TILE * max(n, m), 1))
    for lo in range(0, a.shape[0], step):
        block = cos_rows(a, b, slice(lo, lo + step)).cpu().numpy()
        if n > m:
            out[:, lo : lo + step] = block.T
        else:
            out[lo : lo + step] = block
    return out


def cos_rows(a: torch.Tensor, b: torch.Tensor, rows: torch.Tensor | slice) -> torch.Tensor:
    """``|cos|`` ``[k, m]`` of unit rows ``a[rows]`` with unit rows ``b`` ``[m, D]``, :data:`TILE` rows
    per GEMM."""
    import torch

    x = a[rows]
    k = x.shape[0]
    out = torch.empty((k, b.shape[0]), dtype=torch.float32, device=a.device)
    for lo in range(0, k, TILE):
        tile = x[lo : lo + TILE]
        if tile.shape[0] < TILE:
            tile = torch.cat([tile, tile.new_zeros(TILE - tile.shape[0], tile.shape[1])])
        part = out[lo : lo + TILE]
        if len(part) == TILE:
            torch.mm(tile, b.T, out=part)
        else:
            part.copy_((tile @ b.T)[: len(part)])
        part.abs_()
    return out


def streams(d_sae: int, num_features: int, streaming: bool | None) -> bool:
    """Whether a ``[d_sae, N]`` ``|cos|`` matrix is streamed: ``streaming``, or by default when it
    would take more than :data:`STREAMING_BYTES` (or a quarter of the memory limit)."""
    if streaming is not None:
        return as_bool("streaming", streaming)
    size = 4 * d_sae * num_features
    return size > min(STREAMING_BYTES, _core.MEMORY_LIMIT // 4)


#: ``on_block(lo, block)``: called with each block of the first pass, ``block`` = ``|cos|`` of rows
#: ``lo … lo + k - 1`` of the streamed side (torch ``[k, other side]``, on the inputs' device).
BlockHook = Callable[[int, "torch.Tensor"], None]


def streamed_matching(
    d: torch.Tensor,
    g: torch.Tensor,
    *,
    block_entries: int | None = None,
    on_block: BlockHook | None = None,
    show_progress: bool = False,
) -> Matching:
    """The optimal ``|cos|`` matching of unit rows ``d`` ``[n, D]`` and ``g`` ``[m, D]`` without the
    ``[n, m]`` matrix: blocks of about ``block_entries`` (:data:`STREAM_BLOCK_ENTRIES`; whole tiles
    of :data:`TILE` rows) ``|cos|`` values (GEMMs on the rows' device, as :func:`unit_abs_cos`) go to
    the solver (:class:`synthsae._core.StreamedAssignment`), every row of the smaller side once for
    the first core, then the rows each certificate round checks. Same optimum as
    :func:`linear_sum_assignment` on the stored matrix. Returns the matching (``d``'s rows as
    latents); ``on_block`` sees the blocks of the smaller side's rows (``g``'s when ``d`` has more).

    Memory, besides the inputs: one block, the first core while it is built (up to 64 entries per row
    of the smaller side and 8 per row of the other, 16 bytes each, then as many again while it becomes
    the solver's core, plus what certificate rounds add) and the duals and search state (about 40 bytes
    per row of either side).
    """
    import torch
    from tqdm.auto import tqdm

    swapped = d.shape[0] > g.shape[0]
    a, b = (g, d) if swapped else (d, g)
    n, m = a.shape[0], b.shape[0]
    solver = _core.StreamedAssignment(n, m, maximize=True)
    block_entries = STREAM_BLOCK_ENTRIES if block_entries is None else block_entries
    step = TILE * max(1, block_entries // max(TILE * m, 1))

    with tqdm(total=n, unit="row", desc="MCC first core", disable=not show_progress) as bar:
        for lo in range(0, n, step):
            x = cos_rows(a, b, slice(lo, lo + step))
            if on_block is not None:
                on_block(lo, x)
            solver.add_rows(x.cpu().numpy())
            bar.update(x.shape[0])
    rounds = 0
    while len(asked := solver.next_rows()):
        rounds += 1
        index = torch.from_numpy(asked).to(a.device)
        desc = f"MCC certificate round {rounds}"
        with tqdm(total=len(asked), unit="row", desc=desc, disable=not show_progress) as bar:
            for lo in range(0, len(asked), step):
                solver.supply(cos_rows(a, b, index[lo : lo + step]).cpu().numpy())
                bar.update(min(step, len(asked) - lo))
    rows, cols, values = solver.assignment()
    abs_cos = values.astype(np.float32)
    if swapped:
        order = np.argsort(cols, kind="stable")
        return Matching(cols[order], rows[order], abs_cos[order])
    return Matching(rows, cols, abs_cos)


def stored_matching(s: npt.NDArray[np.float32]) -> Matching:
    """The optimal matching of a stored ``|cos|`` matrix ``[d_sae, N]``."""
    rows, cols = linear_sum_assignment(s, maximize=True)
    return Matching(rows, cols, s[rows, cols])


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


def mcc(
    decoder: Any,
    gt_features: Any,
    *,
    return_matching: bool = False,
    streaming: bool | None = None,
    show_progress: bool = False,
) -> float | tuple[float, Matching]:
    """Mean correlation coefficient: the mean ``|cos|`` over the ``min(d_sae, N)`` pairs of an optimal
    one-to-one matching of decoder rows ``[d_sae, D]`` to ground-truth features ``[N, D]`` (SAELens's
    definition; numpy or torch on any device). 0.0 when either side is empty. With
    ``return_matching=True`` also returns the :class:`Matching`.

    ``streaming`` (default: by size, :func:`streams`) never stores the ``[d_sae, N]`` matrix
    (:func:`streamed_matching`: memory bounded by a block of :data:`STREAM_BLOCK_ENTRIES` entries
    plus the solver's core), for the same optimum; ``show_progress`` shows its passes."""
    return_matching = as_bool("return_matching", return_matching)
    d, g = unit_pair(decoder, gt_features)
    if streams(d.shape[0], g.shape[0], streaming):
        matching = streamed_matching(d, g, show_progress=as_bool("show_progress", show_progress))
    else:
        matching = stored_matching(unit_abs_cos(d, g))
    value = float(matching.abs_cos.mean()) if len(matching.abs_cos) else 0.0
    return (value, matching) if return_matching else value


def feature_uniqueness(decoder: Any, gt_features: Any) -> float:
    """Distinct arg-max ``|cos|`` ground-truth features over decoder rows, divided by ``d_sae``
    (SAELens's definition: ties go to the first feature; 0.0 without latents)."""
    import torch

    d, g = unit_pair(decoder, gt_features)
    if d.shape[0] == 0 or g.shape[0] == 0:
        return 0.0
    blocks = range(0, d.shape[0], TILE)
    best = torch.cat([cos_rows(d, g, slice(lo, lo + TILE)).argmax(dim=1) for lo in blocks])
    return len(torch.unique(best)) / d.shape[0]
