"""Gaussian-copula correlation: SAELens's random low-rank factor, dense matrices for small N.

The sampler works with the form ``C = F Fᵀ + diag(d)`` (unit diagonal). A dense correlation matrix
is converted to that form exactly with :func:`low_rank_from_dense` (rank N, so for small N).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from synthsae._validate import as_count, as_fraction, as_optional_seed, as_positive, check_memory
from synthsae.errors import ConfigError, ConfigTypeError

if TYPE_CHECKING:
    import torch

    from synthsae.world.config import LowRankCorrelationConfig

logger = logging.getLogger(__name__)
_MIN_DIAG = 0.01


def low_rank_correlation(
    num_features: int,
    config: LowRankCorrelationConfig,
    seed: int | None,
    device: Any = "cpu",
    dtype: Any = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SAELens's random low-rank factor: ``F = scale · N(0, 1)`` ``[N, r]``, rows with ``1 - |F_i|² <
    0.01`` capped to ``|F_i|² = 0.99``; returns ``(F, d = 1 - |F_i|²)``."""
    import torch

    generator = torch.Generator(device=device)
    if seed is not None:
        generator.manual_seed(seed)
    factor = (
        torch.randn(num_features, config.rank, generator=generator, device=device, dtype=dtype)
        * config.correlation_scale
    )
    sq = (factor**2).sum(dim=1)
    capped = (1 - sq) < _MIN_DIAG
    factor[capped, :] *= torch.sqrt((1 - _MIN_DIAG) / sq[capped].unsqueeze(1))
    if int(capped.sum()):
        logger.warning("%d / %d correlation rows were capped to norm² 0.99", int(capped.sum()), num_features)
    return factor, 1 - (factor**2).sum(dim=1)


def fix_correlation_matrix(matrix: torch.Tensor, min_eigenvalue: float = 1e-6) -> torch.Tensor:
    """Nearest-style PSD repair (SAELens): clamp eigenvalues to ``min_eigenvalue``, rescale to a unit
    diagonal; ``[N, N]``."""
    import torch

    matrix = _square("matrix", matrix)
    min_eigenvalue = as_positive("min_eigenvalue", min_eigenvalue)
    values, vectors = torch.linalg.eigh(matrix)
    fixed = vectors @ torch.diag(values.clamp(min=min_eigenvalue)) @ vectors.T
    diag = torch.diag(fixed).clamp(min=1e-8)
    fixed = fixed / torch.sqrt(diag.unsqueeze(0) * diag.unsqueeze(1))
    fixed.fill_diagonal_(1.0)
    return fixed


def random_correlation_matrix(
    num_features: int,
    positive_ratio: float = 0.5,
    uncorrelated_ratio: float = 0.3,
    min_correlation_strength: float = 0.1,
    max_correlation_strength: float = 0.8,
    seed: int | None = None,
) -> torch.Tensor:
    """SAELens's ``generate_random_correlation_matrix`` (same generator draws): each pair is
    correlated with probability ``1 - uncorrelated_ratio``, positive with ``positive_ratio``, with a
    uniform strength; repaired to positive definite if needed. float32 ``[N, N]``."""
    import torch

    num_features = as_count("num_features", num_features)
    # The [N, N] float32 matrix and the pairs' three float32 draws: 10 bytes per entry at least.
    check_memory(
        "num_features", 10 * num_features**2, f"a [{num_features:,}, {num_features:,}] correlation matrix"
    )
    positive_ratio = as_fraction("positive_ratio", positive_ratio, allow_zero=True)
    uncorrelated_ratio = as_fraction("uncorrelated_ratio", uncorrelated_ratio, allow_zero=True)
    lo = as_fraction("min_correlation_strength", min_correlation_strength, allow_zero=True)
    hi = as_fraction("max_correlation_strength", max_correlation_strength, allow_zero=True)
    if lo > hi:
        raise ConfigError(f"min_correlation_strength must be <= max_correlation_strength ({hi}), got {lo}")
    seed = as_optional_seed(seed)
    if num_features <= 1:
        return torch.eye(num_features)
    generator = torch.Generator()
    if seed is not None:
        generator.manual_seed(seed)
    rows, cols = torch.triu_indices(num_features, num_features, offset=1)
    pairs = rows.shape[0]
    correlated = torch.rand(pairs, generator=generator) >= uncorrelated_ratio
    signs = torch.where(torch.rand(pairs, generator=generator) < positive_ratio, 1.0, -1.0)
    strengths = torch.rand(pairs, generator=generator) * (hi - lo) + lo
    values = correlated.float() * signs * strengths
    matrix = torch.eye(num_features)
    matrix[rows, cols] = values
    matrix[cols, rows] = values
    if bool((torch.linalg.eigvalsh(matrix) < -1e-6).any()):
        matrix = fix_correlation_matrix(matrix)
    return matrix


def low_rank_from_dense(correlation_matrix: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact factor form of a dense correlation matrix: ``C = F Fᵀ + δ I`` with ``δ = λ_min / 2``,
    ``F = V sqrt(Λ - δ)``; returns float32 ``(F [N, N], d [N])``. Cost per sampled row is N², so this
    is for small N. Raises ValueError unless C is symmetric, unit-diagonal and positive definite
    (see :func:`fix_correlation_matrix`)."""
    import torch

    c = _square("correlation_matrix", correlation_matrix).to(torch.float64)
    if not bool(torch.isfinite(c).all()) or not torch.allclose(c, c.T, atol=1e-6):
        raise ConfigError("correlation_matrix must be finite and symmetric")
    if not torch.allclose(torch.diag(c), torch.ones(c.shape[0], dtype=torch.float64), atol=1e-5):
        raise ConfigError("correlation_matrix must have a unit diagonal")
    values, vectors = torch.linalg.eigh((c + c.T) / 2)
    if float(values.min()) <= 0:
        raise ConfigError(
            "correlation_matrix must be positive definite; repair it with fix_correlation_matrix"
        )
    delta = float(values.min()) / 2
    factor = vectors * (values - delta).clamp(min=0).sqrt()
    return factor.float(), torch.full((c.shape[0],), delta, dtype=torch.float32)


def _square(name: str, matrix: Any) -> torch.Tensor:
    """``matrix`` (a torch tensor, numpy array or nested lists of reals) as a finite floating ``[N, N]``
    torch tensor, N >= 1; integers become float64."""
    import torch

    if isinstance(matrix, torch.Tensor):
        t = matrix.detach()
    else:
        try:
            t = torch.from_numpy(np.asarray(matrix))
        except (TypeError, ValueError) as e:
            raise ConfigTypeError(f"{name} must be a real matrix: {e}") from None
    if t.dtype == torch.bool or t.is_complex():
        raise ConfigTypeError(f"{name} must be a real matrix, got dtype {t.dtype}")
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if t.ndim != 2 or t.shape[0] != t.shape[1] or t.shape[0] == 0:
        raise ConfigError(f"{name} must be square [N, N] with N >= 1, got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ConfigError(f"{name} must be finite (no NaN or inf)")
    return t
