"""World configuration: dataclasses with the fields and JSON of SAELens's ``SyntheticModelConfig``.

``WorldConfig.to_dict()`` produces exactly the dict SAELens writes to ``synthetic_model_config.json``
and ``WorldConfig.from_dict()`` reads it back. Nested generator configs carry ``generator_name``.
Invalid values raise ``ValueError`` and wrong types ``TypeError``, naming the field.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt

from synthsae import firing

if TYPE_CHECKING:
    import torch

DTYPES = ("float32", "float64", "float16", "bfloat16")


def _check_int(owner: str, name: str, value: Any, minimum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}.{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{owner}.{name} must be >= {minimum}, got {value}")


def _check_real(owner: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise TypeError(f"{owner}.{name} must be a finite real number, got {value!r}")


def _fields_from(cls: type, d: dict[str, Any], owner: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise TypeError(f"{owner} must be a dict, got {type(d).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"{owner}: unknown field(s) {unknown}; expected some of {sorted(known)}")
    return dict(d)


class _Generated:
    """Base of configs selected by ``generator_name`` (firing probabilities, magnitudes)."""

    generator_name: ClassVar[str]
    registry: ClassVar[dict[str, type]]
    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "generator_name": self.generator_name}  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Any:
        if not isinstance(d, dict):
            raise TypeError(f"{cls.kind} config must be a dict, got {type(d).__name__}")
        name = d.get("generator_name")
        if name not in cls.registry:
            raise ValueError(f"{cls.kind}.generator_name must be one of {sorted(cls.registry)}, got {name!r}")
        sub = cls.registry[name]
        rest = {k: v for k, v in d.items() if k != "generator_name"}
        return sub(**_fields_from(sub, rest, f"{cls.kind} ({name})"))


# ---------------------------------------------------------------- firing probabilities


class FiringProbabilityConfig(_Generated):
    """Base of the firing-probability generators."""

    registry: ClassVar[dict[str, type]] = {}
    kind: ClassVar[str] = "firing_probability"

    def generate(self, num_features: int, seed: int | None = None) -> npt.NDArray[np.float32]:
        """Firing probabilities, float32 ``[num_features]``."""
        raise NotImplementedError


def _probability_range(owner: str, max_prob: Any, min_prob: Any, strict: bool) -> None:
    _check_real(owner, "max_prob", max_prob)
    _check_real(owner, "min_prob", min_prob)
    if not 0 < max_prob <= 1:
        raise ValueError(f"{owner}.max_prob must be in (0, 1], got {max_prob}")
    ok = 0 < min_prob < max_prob if strict else 0 < min_prob <= max_prob
    if not ok:
        op = "<" if strict else "<="
        raise ValueError(f"{owner}.min_prob must satisfy 0 < min_prob {op} max_prob, got {min_prob}")


@dataclass
class ZipfianFiringProbabilityConfig(FiringProbabilityConfig):
    """``p_k ∝ k^-exponent`` rescaled to ``[min_prob, max_prob]``."""

    generator_name: ClassVar[str] = "zipfian"
    exponent: float = 1.0
    max_prob: float = 0.3
    min_prob: float = 0.01

    def __post_init__(self) -> None:
        _check_real("zipfian", "exponent", self.exponent)
        if self.exponent <= 0:
            raise ValueError(f"zipfian.exponent must be > 0, got {self.exponent}")
        _probability_range("zipfian", self.max_prob, self.min_prob, strict=True)

    def generate(self, num_features: int, seed: int | None = None) -> npt.NDArray[np.float32]:
        return firing.zipfian_firing_probabilities(num_features, self.exponent, self.max_prob, self.min_prob)


@dataclass
class LinearFiringProbabilityConfig(FiringProbabilityConfig):
    """Evenly spaced from ``max_prob`` to ``min_prob``."""

    generator_name: ClassVar[str] = "linear"
    max_prob: float = 0.3
    min_prob: float = 0.01

    def __post_init__(self) -> None:
        _probability_range("linear", self.max_prob, self.min_prob, strict=False)

    def generate(self, num_features: int, seed: int | None = None) -> npt.NDArray[np.float32]:
        return firing.linear_firing_probabilities(num_features, self.max_prob, self.min_prob)


@dataclass
class RandomFiringProbabilityConfig(FiringProbabilityConfig):
    """Uniform in ``[min_prob, max_prob]`` from torch's CPU generator seeded with the world seed."""

    generator_name: ClassVar[str] = "random"
    max_prob: float = 0.5
    min_prob: float = 0.01

    def __post_init__(self) -> None:
        _probability_range("random", self.max_prob, self.min_prob, strict=True)

    def generate(self, num_features: int, seed: int | None = None) -> npt.NDArray[np.float32]:
        return firing.random_firing_probabilities(num_features, self.max_prob, self.min_prob, seed)


@dataclass
class ConstantFiringProbabilityConfig(FiringProbabilityConfig):
    """The same probability for every feature."""

    generator_name: ClassVar[str] = "constant"
    probability: float = 0.1

    def __post_init__(self) -> None:
        _check_real("constant", "probability", self.probability)
        if not 0 <= self.probability <= 1:
            raise ValueError(f"constant.probability must be in [0, 1], got {self.probability}")

    def generate(self, num_features: int, seed: int | None = None) -> npt.NDArray[np.float32]:
        return firing.constant_firing_probabilities(num_features, self.probability)


for _cls in (
    ZipfianFiringProbabilityConfig,
    LinearFiringProbabilityConfig,
    RandomFiringProbabilityConfig,
    ConstantFiringProbabilityConfig,
):
    FiringProbabilityConfig.registry[_cls.generator_name] = _cls


# ---------------------------------------------------------------- magnitudes


class MagnitudeConfig(_Generated):
    """Base of the per-feature magnitude generators (used for both mean and std)."""

    registry: ClassVar[dict[str, type]] = {}
    kind: ClassVar[str] = "magnitude"

    def generate(self, num_features: int, seed: int | None = None) -> npt.NDArray[np.float32]:
        """Per-feature values, float32 ``[num_features]``."""
        raise NotImplementedError


@dataclass
class ConstantMagnitudeConfig(MagnitudeConfig):
    """``value`` for every feature."""

    generator_name: ClassVar[str] = "constant"
    value: float = 1.0

    def __post_init__(self) -> None:
        _check_real("constant", "value", self.value)

    def generate(self, num_features: int, seed: int | None = None) -> npt.NDArray[np.float32]:
        return np.full(num_features, self.value, dtype=np.float32)


@dataclass
class _RampMagnitudeConfig(MagnitudeConfig):
    """From ``start`` (feature 0) to ``end`` (feature N-1), both > 0; a single feature gets ``start``."""

    start: float
    end: float

    def __post_init__(self) -> None:
        _check_real(self.generator_name, "start", self.start)
        _check_real(self.generator_name, "end", self.end)
        if self.start <= 0 or self.end <= 0:
            raise ValueError(
                f"{self.generator_name}.start and .end must be > 0, got start={self.start}, end={self.end}"
            )

    def generate(self, num_features: int, seed: int | None = None) -> npt.NDArray[np.float32]:
        if num_features == 1:
            return np.array([self.start], dtype=np.float32)
        return self._ramp(num_features).numpy()

    def _ramp(self, num_features: int) -> torch.Tensor:
        raise NotImplementedError


@dataclass
class LinearMagnitudeConfig(_RampMagnitudeConfig):
    """``torch.linspace(start, end, N)``."""

    generator_name: ClassVar[str] = "linear"

    def _ramp(self, num_features: int) -> torch.Tensor:
        import torch

        return torch.linspace(self.start, self.end, num_features)


@dataclass
class ExponentialMagnitudeConfig(_RampMagnitudeConfig):
    """``start * (end / start) ** linspace(0, 1, N)``."""

    generator_name: ClassVar[str] = "exponential"

    def _ramp(self, num_features: int) -> torch.Tensor:
        import torch

        return self.start * (self.end / self.start) ** torch.linspace(0, 1, num_features)


@dataclass
class FoldedNormalMagnitudeConfig(MagnitudeConfig):
    """``|mean + std * N(0, 1)|`` per feature (torch CPU generator), optionally clamped."""

    generator_name: ClassVar[str] = "folded_normal"
    mean: float = 0.0
    std: float = 0.1
    min_value: float | None = None
    max_value: float | None = None

    def __post_init__(self) -> None:
        _check_real("folded_normal", "mean", self.mean)
        _check_real("folded_normal", "std", self.std)
        if self.std <= 0:
            raise ValueError(f"folded_normal.std must be > 0, got {self.std}")
        for name in ("min_value", "max_value"):
            if getattr(self, name) is not None:
                _check_real("folded_normal", name, getattr(self, name))
        if self.min_value is not None and self.min_value < 0:
            raise ValueError(f"folded_normal.min_value must be >= 0, got {self.min_value}")
        if self.max_value is not None and self.max_value <= 0:
            raise ValueError(f"folded_normal.max_value must be > 0, got {self.max_value}")
        if self.min_value is not None and self.max_value is not None and self.min_value > self.max_value:
            raise ValueError("folded_normal.min_value must be <= max_value")

    def generate(self, num_features: int, seed: int | None = None) -> npt.NDArray[np.float32]:
        import torch

        # SAELens: a seeded CPU generator, else torch's global RNG.
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        samples = (self.mean + torch.randn(num_features, generator=generator) * self.std).abs()
        if self.min_value is not None or self.max_value is not None:
            samples = samples.clamp(min=self.min_value, max=self.max_value)
        return samples.numpy()


for _cls in (
    ConstantMagnitudeConfig,
    LinearMagnitudeConfig,
    ExponentialMagnitudeConfig,
    FoldedNormalMagnitudeConfig,
):
    MagnitudeConfig.registry[_cls.generator_name] = _cls


def generate_magnitudes(
    num_features: int, config: float | MagnitudeConfig, seed: int | None = None
) -> npt.NDArray[np.float32]:
    """A float (constant) or a MagnitudeConfig, as float32 ``[num_features]``."""
    if isinstance(config, MagnitudeConfig):
        return config.generate(num_features, seed)
    return np.full(num_features, config, dtype=np.float32)


# ---------------------------------------------------------------- hierarchy, correlation, orthogonalization


@dataclass
class HierarchyConfig:
    """Generated forest: roots, branching (int or inclusive ``(min, max)``), depth, mutual exclusion."""

    total_root_nodes: int = 100
    branching_factor: int | tuple[int, int] = 100
    max_depth: int = 2
    mutually_exclusive_portion: float = 0.0
    mutually_exclusive_min_depth: int = 0
    mutually_exclusive_max_depth: int | None = None
    compensate_probabilities: bool = False
    scale_children_by_parent: bool = False

    def __post_init__(self) -> None:
        owner = "hierarchy"
        _check_int(owner, "total_root_nodes", self.total_root_nodes, 1)
        if isinstance(self.branching_factor, list | tuple):
            if len(self.branching_factor) != 2:
                raise ValueError(f"{owner}.branching_factor must be an int or (min, max)")
            self.branching_factor = (self.branching_factor[0], self.branching_factor[1])
            lo, hi = self.branching_factor
            _check_int(owner, "branching_factor", lo, 2)
            _check_int(owner, "branching_factor", hi, 2)
            if lo > hi:
                raise ValueError(
                    f"{owner}.branching_factor must have min <= max, got {self.branching_factor}"
                )
        else:
            _check_int(owner, "branching_factor", self.branching_factor, 2)
        _check_int(owner, "max_depth", self.max_depth, 1)
        _check_real(owner, "mutually_exclusive_portion", self.mutually_exclusive_portion)
        if not 0 <= self.mutually_exclusive_portion <= 1:
            raise ValueError(f"{owner}.mutually_exclusive_portion must be in [0, 1]")
        _check_int(owner, "mutually_exclusive_min_depth", self.mutually_exclusive_min_depth, 0)
        if self.mutually_exclusive_max_depth is not None:
            _check_int(owner, "mutually_exclusive_max_depth", self.mutually_exclusive_max_depth)
            if self.mutually_exclusive_max_depth < self.mutually_exclusive_min_depth:
                raise ValueError(
                    f"{owner}.mutually_exclusive_max_depth must be >= mutually_exclusive_min_depth"
                )
        for name in ("compensate_probabilities", "scale_children_by_parent"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{owner}.{name} must be a bool")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if isinstance(self.branching_factor, tuple):
            d["branching_factor"] = list(self.branching_factor)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HierarchyConfig:
        return cls(**_fields_from(cls, d, "hierarchy"))


@dataclass
class OrthogonalizationConfig:
    """Adam steps pushing dictionary rows apart (SAELens's objective)."""

    num_steps: int = 200
    lr: float = 0.01
    chunk_size: int = 1024

    def __post_init__(self) -> None:
        _check_int("orthogonalization", "num_steps", self.num_steps, 0)
        _check_real("orthogonalization", "lr", self.lr)
        if self.lr <= 0:
            raise ValueError(f"orthogonalization.lr must be > 0, got {self.lr}")
        _check_int("orthogonalization", "chunk_size", self.chunk_size, 1)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OrthogonalizationConfig:
        return cls(**_fields_from(cls, d, "orthogonalization"))


@dataclass
class LowRankCorrelationConfig:
    """Gaussian-copula correlation ``F Fᵀ + diag(d)`` with ``F`` of rank ``rank``.

    ``seed`` is kept for SAELens JSON compatibility; like SAELens, the world uses ``seed + 4``.
    """

    rank: int = 32
    correlation_scale: float = 0.1
    seed: int | None = None

    def __post_init__(self) -> None:
        _check_int("correlation", "rank", self.rank, 1)
        _check_real("correlation", "correlation_scale", self.correlation_scale)
        if self.correlation_scale < 0:
            raise ValueError(f"correlation.correlation_scale must be >= 0, got {self.correlation_scale}")
        if self.seed is not None:
            _check_int("correlation", "seed", self.seed)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LowRankCorrelationConfig:
        return cls(**_fields_from(cls, d, "correlation"))


# ---------------------------------------------------------------- world


def _magnitude_from(value: Any, name: str) -> float | MagnitudeConfig:
    if isinstance(value, dict):
        return MagnitudeConfig.from_dict(value)
    _check_real("WorldConfig", name, value)
    return float(value)


@dataclass
class WorldConfig:
    """Everything that defines a world; SAELens's ``SyntheticModelConfig`` fields and JSON.

    Attributes:
        num_features: N ground-truth features.
        hidden_dim: D, dimension of the hidden activations.
        firing_probability: per-feature base firing probabilities.
        hierarchy: generated feature forest, or None.
        orthogonalization: dictionary orthogonalization, or None.
        correlation: low-rank Gaussian-copula correlation, or None (independent features).
        std_firing_magnitudes, mean_firing_magnitudes: float or MagnitudeConfig.
        bias: False (no bias), True (norm 1) or the bias norm.
        dtype: dtype of the dictionary tensors.
        seed: base seed (dictionary seed, std +1, mean +2, hierarchy +3, correlation +4).
    """

    num_features: int
    hidden_dim: int
    firing_probability: FiringProbabilityConfig = field(default_factory=ZipfianFiringProbabilityConfig)
    hierarchy: HierarchyConfig | None = None
    orthogonalization: OrthogonalizationConfig | None = None
    correlation: LowRankCorrelationConfig | None = None
    std_firing_magnitudes: float | MagnitudeConfig = 0.0
    mean_firing_magnitudes: float | MagnitudeConfig = 1.0
    bias: bool | float = 1.0
    dtype: str = "float32"
    seed: int | None = None

    def __post_init__(self) -> None:
        _check_int("WorldConfig", "num_features", self.num_features, 1)
        _check_int("WorldConfig", "hidden_dim", self.hidden_dim, 1)
        for name, kind in (
            ("firing_probability", FiringProbabilityConfig),
            ("hierarchy", HierarchyConfig),
            ("orthogonalization", OrthogonalizationConfig),
            ("correlation", LowRankCorrelationConfig),
        ):
            value = getattr(self, name)
            if not (isinstance(value, kind) or (value is None and name != "firing_probability")):
                raise TypeError(f"WorldConfig.{name} must be a {kind.__name__}, got {value!r}")
        for name in ("std_firing_magnitudes", "mean_firing_magnitudes"):
            value = getattr(self, name)
            if not isinstance(value, MagnitudeConfig):
                _check_real("WorldConfig", name, value)
        if isinstance(self.std_firing_magnitudes, numbers.Real) and self.std_firing_magnitudes < 0:
            raise ValueError("WorldConfig.std_firing_magnitudes must be >= 0")
        if not isinstance(self.bias, bool):
            _check_real("WorldConfig", "bias", self.bias)
            if self.bias < 0:
                raise ValueError(f"WorldConfig.bias must be a bool or a norm >= 0, got {self.bias}")
        if self.dtype not in DTYPES:
            raise ValueError(f"WorldConfig.dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.seed is not None:
            _check_int("WorldConfig", "seed", self.seed, 0)

    def to_dict(self) -> dict[str, Any]:
        """The dict SAELens writes to ``synthetic_model_config.json`` (same keys and order)."""
        d: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            d[f.name] = value.to_dict() if hasattr(value, "to_dict") else value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorldConfig:
        """Reads a SAELens ``synthetic_model_config.json`` dict (missing magnitudes → 0.0 / 1.0)."""
        d = _fields_from(cls, d, "WorldConfig")
        if "firing_probability" not in d:
            raise ValueError("WorldConfig: missing required field 'firing_probability'")
        nested = {
            "hierarchy": HierarchyConfig,
            "orthogonalization": OrthogonalizationConfig,
            "correlation": LowRankCorrelationConfig,
        }
        for name, kind in nested.items():
            if d.get(name) is not None:
                d[name] = kind.from_dict(d[name])
        d["firing_probability"] = FiringProbabilityConfig.from_dict(d["firing_probability"])
        d["std_firing_magnitudes"] = _magnitude_from(
            d.get("std_firing_magnitudes", 0.0), "std_firing_magnitudes"
        )
        d["mean_firing_magnitudes"] = _magnitude_from(
            d.get("mean_firing_magnitudes", 1.0), "mean_firing_magnitudes"
        )
        for required in ("num_features", "hidden_dim"):
            if required not in d:
                raise ValueError(f"WorldConfig: missing required field {required!r}")
        return cls(**d)
