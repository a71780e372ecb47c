"""``SparseBatch``: a CSR batch of feature activations ``[n, N]``."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from synthsae.errors import ConfigError

if TYPE_CHECKING:
    import torch

_LAYOUTS = ("csr", "dense")


class SparseBatch:
    """Rows of feature activations in CSR form.

    Row ``r`` holds features ``indices[indptr[r]:indptr[r+1]]`` (ascending) with ``values`` at the
    same positions. Only active (> 0) entries are stored.

    Attributes:
        indptr: int64 ``[n + 1]``.
        indices: int32 ``[nnz]``, sorted within each row.
        values: float32 ``[nnz]``.
        shape: ``(n, N)``.
    """

    __slots__ = ("indices", "indptr", "shape", "values")

    def __init__(
        self,
        indptr: npt.NDArray[np.int64],
        indices: npt.NDArray[np.int32],
        values: npt.NDArray[np.float32],
        shape: tuple[int, int],
    ) -> None:
        if len(indptr) != shape[0] + 1 or len(indices) != len(values) or indptr[-1] != len(indices):
            raise ConfigError(
                f"inconsistent CSR arrays: indptr {indptr.shape}, indices {indices.shape}, "
                f"values {values.shape} for shape {shape}"
            )
        self.indptr = indptr
        self.indices = indices
        self.values = values
        self.shape = (int(shape[0]), int(shape[1]))

    @property
    def nnz(self) -> int:
        """Number of stored (active) entries."""
        return len(self.values)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        n = self.shape[0]
        l0 = self.nnz / n if n else 0.0
        return f"SparseBatch(shape={self.shape}, nnz={self.nnz}, mean L0={l0:.3f})"

    def row_ids(self) -> npt.NDArray[np.int64]:
        """The row of every stored entry, int64 ``[nnz]``."""
        return np.repeat(np.arange(self.shape[0], dtype=np.int64), np.diff(self.indptr))

    def take(self, rows: npt.ArrayLike) -> SparseBatch:
        """The rows ``rows`` (int ``[k]``, any order, repeats allowed) as a new SparseBatch ``[k, N]``."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= self.shape[0])):
            raise ConfigError(f"rows must be a 1-d array of row numbers in [0, {self.shape[0]})")
        lengths = np.diff(self.indptr)[rows]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        at = np.arange(indptr[-1], dtype=np.int64) + np.repeat(self.indptr[rows] - indptr[:-1], lengths)
        return SparseBatch(indptr, self.indices[at], self.values[at], (len(rows), self.shape[1]))

    @staticmethod
    def concat(batches: list[SparseBatch]) -> SparseBatch:
        """The rows of ``batches`` (same number of columns) one after another."""
        if not batches:
            raise ConfigError("batches must not be empty")
        cols = {b.shape[1] for b in batches}
        if len(cols) != 1:
            raise ConfigError(f"batches have different numbers of columns: {sorted(cols)}")
        offsets = np.cumsum([0] + [b.nnz for b in batches])
        indptr = np.concatenate(
            [[0]] + [b.indptr[1:] + o for b, o in zip(batches, offsets[:-1], strict=True)]
        )
        return SparseBatch(
            indptr.astype(np.int64),
            np.concatenate([b.indices for b in batches]),
            np.concatenate([b.values for b in batches]),
            (sum(len(b) for b in batches), cols.pop()),
        )

    def to_dense(self) -> npt.NDArray[np.float32]:
        """Dense float32 numpy array ``[n, N]``."""
        out = np.zeros(self.shape, dtype=np.float32)
        out[self.row_ids(), self.indices] = self.values
        return out

    def to_torch(self, device: Any = None, layout: str = "csr") -> torch.Tensor:
        """A torch tensor on ``device``: ``layout="csr"`` (``torch.sparse_csr``, int64 indices) or
        ``"dense"`` (float32 ``[n, N]``, built on the device without a host-side dense copy)."""
        if layout not in _LAYOUTS:
            raise ConfigError(f"layout must be one of {_LAYOUTS}, got {layout!r}")
        import torch

        indptr = torch.from_numpy(self.indptr)
        indices = torch.from_numpy(self.indices.astype(np.int64))
        values = torch.from_numpy(self.values)
        if layout == "csr":
            # Valid by construction (sorted, in range), so skip torch's O(nnz) invariant check.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta", UserWarning)
                csr = torch.sparse_csr_tensor(
                    indptr, indices, values, size=self.shape, check_invariants=False
                )
            return csr.to(device)
        rows = torch.from_numpy(self.row_ids())
        dense = torch.zeros(self.shape, dtype=torch.float32, device=device)
        dense[rows.to(dense.device), indices.to(dense.device)] = values.to(dense.device)
        return dense
