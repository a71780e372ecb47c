"""Evaluation inputs as the Rust state reads them: numpy or torch (any device, dense or sparse) and
``SparseBatch`` to float32 dense rows or CSR arrays; errors name the argument."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from synthsae import _core
from synthsae._validate import as_native
from synthsae.errors import ConfigError, ConfigTypeError
from synthsae.world.sparse import SparseBatch


def dense_rows(x: Any, name: str, width: int) -> npt.NDArray[np.float32]:
    """``x`` (numpy, torch on any device, or nested lists of real numbers) as a C-contiguous float32
    ``[b, width]`` CPU array."""
    x = as_native(name, x)
    _check_width(x, name, width)
    return np.ascontiguousarray(x, dtype=np.float32)


def _indptr(rows: npt.NDArray[np.int64], b: int) -> npt.NDArray[np.int64]:
    """CSR row pointers ``[b + 1]`` of entries whose (sorted) row indices are ``rows``."""
    return np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=b))]).astype(np.int64)


def _check_width(x: Any, name: str, width: int) -> None:
    if x.ndim != 2 or x.shape[1] != width:
        raise ConfigError(f"{name} must have shape [b, {width}], got {list(x.shape)}")


def csr_arrays(x: Any, name: str, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-zero entries of ``x`` ``[b, width]`` as CSR ``(indptr int64, indices int32, values float32)``;
    ``x`` is a SparseBatch, a torch tensor (dense or sparse, any device) or a numpy array. Tensors are
    reduced on their own device, so only the non-zeros travel."""
    if isinstance(x, SparseBatch):
        if x.shape[1] != width:
            raise ConfigError(f"{name} must have {width} columns, got {x.shape[1]}")
        keep = x.values != 0
        kept_before = np.concatenate([[0], np.cumsum(keep)]).astype(np.int64)
        return kept_before[x.indptr], x.indices[keep].astype(np.int32), x.values[keep].astype(np.float32)
    if hasattr(x, "detach"):
        import torch

        x = x.detach()
        _check_width(x, name, width)
        if x.layout != torch.strided:
            x = x.to_sparse_coo().coalesce()
            rows, cols = x.indices()
            values = x.values()
            keep = values != 0
            rows, cols, values = rows[keep], cols[keep], values[keep]
        else:
            rows, cols = (x != 0).nonzero(as_tuple=True)
            values = x[rows, cols]
        rows, cols, values = rows.cpu().numpy(), cols.cpu().numpy(), values.float().cpu().numpy()
    else:
        if not isinstance(x, np.ndarray):
            raise ConfigTypeError(
                f"{name} must be a SparseBatch, numpy array or torch tensor, got {type(x).__name__}"
            )
        _check_width(x, name, width)
        rows, cols = np.nonzero(x)
        values = x[rows, cols]
    return _indptr(rows, x.shape[0]), cols.astype(np.int32), np.asarray(values, dtype=np.float32)


def latent_arrays(z: Any, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The non-zeros of latents ``z`` ``[b, width]`` as CSR ``(indptr, indices, values)``: dense CPU
    arrays and tensors in one Rust pass (``_core.dense_to_csr``), anything else as :func:`csr_arrays`."""
    if hasattr(z, "detach"):
        import torch

        if z.layout == torch.strided and z.device.type == "cpu":
            z = z.detach().float().numpy()
    if isinstance(z, np.ndarray):
        return _core.dense_to_csr(dense_rows(z, "latents", width))
    return csr_arrays(z, "latents", width)
