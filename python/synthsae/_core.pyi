"""Private Rust extension of synthsae; use the public API in ``synthsae``.

Checked against the built module by ``python -m mypy.stubtest synthsae._core``.
"""

import typing
from typing import Self

import numpy as np
import numpy.typing as npt
from typing_extensions import disjoint_base

__all__ = [
    "MEMORY_LIMIT",
    "RNG_ALGORITHM",
    "TARGET",
    "AbsorptionState",
    "EvalState",
    "IndependentSampler",
    "Sampler",
    "StreamedAssignment",
    "WorldSampler",
    "__version__",
    "constant_firing_probabilities",
    "dense_to_csr",
    "hidden_from_csr",
    "kernel",
    "kernels",
    "linear_firing_probabilities",
    "linear_sum_assignment",
    "pursuit_backward",
    "pursuit_picks",
    "set_kernel",
    "zipfian_firing_probabilities",
]

__version__: str
MEMORY_LIMIT: int  # bytes one request may allocate: physical memory on Linux, else isize::MAX
RNG_ALGORITHM: str
TARGET: str

def kernel() -> str: ...
def kernels() -> list[str]: ...
def set_kernel(name: str | None) -> None: ...
def zipfian_firing_probabilities(
    num_features: int, exponent: float, max_prob: float, min_prob: float
) -> npt.NDArray[np.float32]: ...
def linear_firing_probabilities(
    num_features: int, max_prob: float, min_prob: float
) -> npt.NDArray[np.float32]: ...
def constant_firing_probabilities(num_features: int, probability: float) -> npt.NDArray[np.float32]: ...

_Csr: typing.TypeAlias = tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.float32]]

def dense_to_csr(z: npt.NDArray[np.float32]) -> _Csr: ...
def pursuit_picks(
    scores: npt.NDArray[np.float32],
    residual: npt.NDArray[np.float32],
    atoms: npt.NDArray[np.float32],
    iterations: int,
    gram: npt.NDArray[np.float32] | tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint16]] | None = None,
    num_threads: int | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.float32], int]:
    """Matching pursuit: picks ``[rows, iterations]`` (-1: no positive score left), coefficients,
    final residuals ``[rows, d]`` and the number of exact scores computed; ``gram`` None, float32
    ``W Wᵀ`` or bfloat16 bits of ``A`` and ``C``."""

def pursuit_backward(
    atoms: npt.NDArray[np.float32],
    index: npt.NDArray[np.int64],
    coef: npt.NDArray[np.float32],
    residual: npt.NDArray[np.float32],
    grad_residual: npt.NDArray[np.float32],
    grad_coef: npt.NDArray[np.float32] | None = None,
    num_threads: int | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Gradients ``(∂L/∂r₀ [rows, d], ∂L/∂atoms [n, d])`` through a pursuit's outputs."""

@disjoint_base
class Sampler:
    """What both samplers share; built by :class:`IndependentSampler` or :class:`WorldSampler`."""

    @property
    def num_features(self) -> int: ...
    def sample(
        self, seed: int, start: int, n: int, num_threads: int | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.float32]]: ...

@typing.final
class IndependentSampler(Sampler):
    def __new__(
        cls,
        p: npt.NDArray[np.float64],
        mean: npt.NDArray[np.float32],
        std: npt.NDArray[np.float32],
    ) -> Self: ...

@typing.final
class WorldSampler(Sampler):
    def __new__(
        cls,
        p: npt.NDArray[np.float64],
        mean: npt.NDArray[np.float32],
        std: npt.NDArray[np.float32],
        factor: npt.NDArray[np.float32] | None,
        diag: npt.NDArray[np.float32] | None,
        thresholds: npt.NDArray[np.float32] | None,
        gate: npt.NDArray[np.int32],
        exclusive: npt.NDArray[np.bool_],
        rescale: npt.NDArray[np.bool_],
        ptr: npt.NDArray[np.int64],
        members: npt.NDArray[np.int32],
    ) -> Self: ...

def hidden_from_csr(
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int32],
    values: npt.NDArray[np.float32],
    vectors: npt.NDArray[np.float32],
    bias: npt.NDArray[np.float32],
    num_threads: int | None = None,
) -> npt.NDArray[np.float32]: ...
def linear_sum_assignment(
    cost: npt.NDArray[np.float32] | npt.NDArray[np.float64], maximize: bool = False
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...

@typing.type_check_only
class EvalSummary(typing.TypedDict):
    """What :meth:`EvalState.summary` returns (a plain dict at runtime)."""

    rows: int
    true_l0: float
    sae_l0: float
    dead_latents: int
    shrinkage: float
    explained_variance: float
    explained_variance_per_sample: float
    explained_variance_per_dimension: float
    #: uint64 ``[d_sae]``: rows on which each latent fired.
    fires: npt.NDArray[np.uint64]
    #: uint64 ``[pairs]``: rows on which each pair's feature was active.
    feature_fires: npt.NDArray[np.uint64]
    #: uint64 ``[pairs]``: rows on which each pair's latent fired while its feature was active.
    true_positives: npt.NDArray[np.uint64]
    #: uint64 ``[union features]``: rows on which a union's feature was active and any of its latents fired.
    union_hits: npt.NDArray[np.uint64]

@typing.final
class EvalState:
    def __new__(
        cls,
        hidden_dim: int,
        num_features: int,
        d_sae: int,
        pair_latents: npt.NDArray[np.int64],
        pair_features: npt.NDArray[np.int64],
        union_pairs: npt.NDArray[np.int64],
        mean: npt.NDArray[np.float64] | None = None,
        mean_rows: int = 8192,
    ) -> Self: ...
    def add(
        self,
        hidden: npt.NDArray[np.float32],
        reconstruction: npt.NDArray[np.float32],
        latents: _Csr,
        features: _Csr,
    ) -> None: ...
    def summary(self) -> EvalSummary: ...

@typing.type_check_only
class AbsorptionCounts(typing.TypedDict):
    """What :meth:`AbsorptionState.counts` returns (a plain dict at runtime): per parent ``alone``,
    ``alone_fires``, ``with_child``, ``with_child_fires`` and ``fraction``; per child slot ``both``,
    ``both_fires``, ``absorbed`` and ``absorbed_near``."""

    alone: npt.NDArray[np.uint64]
    alone_fires: npt.NDArray[np.uint64]
    with_child: npt.NDArray[np.uint64]
    with_child_fires: npt.NDArray[np.uint64]
    fraction: npt.NDArray[np.float64]
    both: npt.NDArray[np.uint64]
    both_fires: npt.NDArray[np.uint64]
    absorbed: npt.NDArray[np.uint64]
    absorbed_near: npt.NDArray[np.uint64]

@typing.final
class AbsorptionState:
    def __new__(
        cls,
        num_features: int,
        d_sae: int,
        parent_features: npt.NDArray[np.int64],
        parent_latents: npt.NDArray[np.int64],
        parent_coefs: npt.NDArray[np.float64],
        child_ptr: npt.NDArray[np.int64],
        child_features: npt.NDArray[np.int64],
        child_latents: npt.NDArray[np.int64],
        other_ptr: npt.NDArray[np.int64],
        other_latents: npt.NDArray[np.int64],
        other_coefs: npt.NDArray[np.float64],
        other_near: npt.NDArray[np.bool_],
    ) -> Self: ...
    def add(
        self,
        latents: _Csr,
        features: _Csr,
    ) -> None: ...
    def counts(self) -> AbsorptionCounts: ...

@typing.final
class StreamedAssignment:
    def __new__(cls, rows: int, cols: int, maximize: bool = False) -> StreamedAssignment: ...
    def add_rows(self, block: npt.NDArray[np.float32]) -> None: ...
    def next_rows(self) -> npt.NDArray[np.int64]: ...
    def supply(self, block: npt.NDArray[np.float32]) -> None: ...
    def assignment(
        self,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]: ...
