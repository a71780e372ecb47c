"""The argument contract of the public API, in one place.

Every check raises ``ConfigTypeError`` (a ``TypeError``) for a value of the wrong type and
``ConfigError`` (a ``ValueError``) for a value of the right type that is out of range (NaN and ±inf
included), and every message starts with the argument's name. A size this machine cannot hold is a
``ResourceError`` (a ``ValueError``). Seeds are integers in ``[0, 2**64)`` everywhere.
"""

from __future__ import annotations

import numbers
import operator
from typing import Any

import numpy as np
import numpy.typing as npt

from synthsae.errors import ConfigError, ConfigTypeError, ResourceError

U64_MAX = 2**64 - 1
COUNT_MAX = 2**63 - 1  # rows, features, batch sizes: i64 in numpy and torch


def _size(num_bytes: float) -> str:
    """``num_bytes`` as the core writes sizes (``"1.5 GiB"``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if num_bytes < 1024 or unit == "PiB":
            return f"{num_bytes:.0f} B" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1024
    raise AssertionError("unreachable")


def check_memory(name: str, num_bytes: float, what: str) -> None:
    """Refuses, before anything is allocated, a request whose ``what`` needs ``num_bytes`` bytes,
    more than this machine's memory (``_core.MEMORY_LIMIT``, the limit the Rust core applies):
    ``ResourceError`` starting with ``name``, the argument that sized it."""
    from synthsae import _core

    if not num_bytes <= _core.MEMORY_LIMIT:
        raise ResourceError(
            f"{name}: {what} would need {_size(num_bytes)} of memory, more than this machine has "
            f"({_size(_core.MEMORY_LIMIT)})"
        )


def as_count(name: str, value: Any, *, minimum: int = 0, bytes_each: float = 0.0, what: str = "") -> int:
    """A count (rows, features) in ``[minimum, 2**63 - 1]``; with ``bytes_each``, one whose
    ``count · bytes_each`` bytes (for ``what``) fit in memory (:func:`check_memory`)."""
    value = as_int(name, value, minimum=minimum, maximum=COUNT_MAX)
    if bytes_each:
        check_memory(name, value * bytes_each, f"{value:,} {what}")
    return value


def _bound(bound: float, label: str | None) -> str:
    return f"{label} ({bound})" if label else f"{bound}"


def as_int(
    name: str,
    value: Any,
    *,
    minimum: int | None = 0,
    maximum: int | None = None,
    maximum_name: str | None = None,
) -> int:
    """An integer (Python or numpy, not bool) in ``[minimum, maximum]`` (``None``: unbounded);
    ``maximum_name`` names the bound in the message (e.g. ``"d_sae"``)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise ConfigTypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = operator.index(value)
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be <= {_bound(maximum, maximum_name)}, got {value}")
    return value


def as_float(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    maximum_name: str | None = None,
) -> float:
    """A finite real number (not bool) in ``[minimum, maximum]`` (``(minimum, maximum]`` with
    ``exclusive_minimum``; ``None``: unbounded)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise ConfigTypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ConfigError(f"{name} must be finite, got {value}")
    if minimum is not None:
        if exclusive_minimum and value <= minimum:
            raise ConfigError(f"{name} must be > {minimum:g}, got {value}")
        if value < minimum:
            raise ConfigError(f"{name} must be >= {minimum:g}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be <= {_bound(maximum, maximum_name)}, got {value}")
    return value


def as_positive(
    name: str, value: Any, *, maximum: float | None = None, maximum_name: str | None = None
) -> float:
    """A finite real number > 0 (and <= ``maximum`` if given)."""
    return as_float(
        name, value, minimum=0.0, exclusive_minimum=True, maximum=maximum, maximum_name=maximum_name
    )


def as_nonnegative(name: str, value: Any) -> float:
    """A finite real number >= 0."""
    return as_float(name, value, minimum=0.0)


def as_fraction(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """A real number in ``(0, 1]`` (``[0, 1]`` with ``allow_zero``)."""
    value = as_float(name, value)
    if not ((value >= 0 if allow_zero else value > 0) and value <= 1):
        raise ConfigError(f"{name} must be in {'[0' if allow_zero else '(0'}, 1], got {value}")
    return value


def as_bool(name: str, value: Any) -> bool:
    """A bool (Python or numpy)."""
    if not isinstance(value, bool | np.bool_):
        raise ConfigTypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def as_seed(value: Any, name: str = "seed") -> int:
    """A seed: an integer in ``[0, 2**64)``."""
    return as_int(name, value, minimum=0, maximum=U64_MAX)


def as_optional_seed(value: Any, name: str = "seed") -> int | None:
    """``None`` (unseeded) or a seed (:func:`as_seed`)."""
    return None if value is None else as_seed(value, name)


def as_num_threads(value: Any) -> int | None:
    """``None`` (all cores / ``RAYON_NUM_THREADS``) or an integer >= 1."""
    return None if value is None else as_int("num_threads", value, minimum=1, maximum=4096)


def to_numpy(value: Any) -> Any:
    """torch tensors (any device) to numpy without importing torch (bfloat16, which numpy lacks, as
    float32); anything else unchanged."""
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        return value.numpy()
    return value


def is_real(dtype: np.dtype[Any]) -> bool:
    """Integer or floating numbers (not bool, complex, dates, timedeltas, strings or objects)."""
    return dtype.kind in "iuf"


def as_native(name: str, value: Any) -> npt.NDArray[Any]:
    """A numpy array of real numbers (see :func:`is_real`) in native byte order and C layout: any
    layout, stride or byte order is accepted (copied); anything else is a TypeError naming ``name``."""
    try:
        arr = np.asarray(to_numpy(value))
    except (TypeError, ValueError) as e:
        raise ConfigTypeError(f"{name} must be an array of real numbers: {e}") from None
    if not is_real(arr.dtype):
        raise ConfigTypeError(f"{name} must be an array of real numbers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("="))


def as_float_array(name: str, value: Any, dtype: type[np.floating], ndim: int) -> npt.NDArray[Any]:
    """A C-contiguous floating array of ``ndim`` dimensions, converted to ``dtype``."""
    try:
        arr = np.asarray(to_numpy(value))
    except (TypeError, ValueError) as e:
        raise ConfigTypeError(f"{name} must be a floating-point array: {e}") from None
    if not np.issubdtype(arr.dtype, np.floating):
        raise ConfigTypeError(f"{name} must be a floating-point array, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ConfigError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=dtype)


def as_per_feature(name: str, value: Any, num_features: int) -> npt.NDArray[np.float32]:
    """A finite scalar or ``[num_features]`` vector, as float32 of length 1 or ``num_features``."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
        arr = np.array([float(value)])
    else:
        arr = as_float_array(name, value, np.float64, 1)
        if arr.shape != (num_features,):
            raise ConfigError(f"{name} must be a scalar or have shape ({num_features},), got {arr.shape}")
    if not np.all(np.abs(arr) <= np.finfo(np.float32).max):
        raise ConfigError(f"{name} must be finite and within float32 range")
    return arr.astype(np.float32)
