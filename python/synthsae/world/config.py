"""World configuration: dataclasses with the fields and JSON of SAELens's ``SyntheticModelConfig``.

``WorldConfig.to_dict()`` produces exactly the dict SAELens writes to ``synthetic_model_config.json``
and ``WorldConfig.from_dict()`` reads it back. Nested generator configs carry ``generator_name``.
Invalid values (NaN and ±inf included) raise ``ValueError`` and wrong types ``TypeError``; messages start
with the qualified field name (``WorldConfig.num_features``, ``zipfian.max_prob``), as in
``synthsae._validate``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt

from synthsae._validate import U64_MAX, as_bool, as_float, as_int, as_optional_seed
from synthsae.errors import ConfigError, ConfigTypeError
from synthsae.world import firing

if TYPE_CHECKING:
    import torch

DTYPES = ("float32", "float64", "float16", "bfloat16")


def _int(owner: str, name: str, value: Any, minimum: int | None = 0) -> int:
    """``owner.name`` as an integer >= ``minimum`` (numpy integers become Python ints)."""
    return as_int(f"{owner}.{name}", value, minimum=minimum)


def _real(owner: str, name: str, value: Any, **bounds: Any) -> None:
    """Checks ``owner.name`` is a finite real number within ``bounds`` (see ``as_float``); the value
    is kept as given, so ``to_dict`` writes back what was read."""
    as_float(f"{owner}.{name}", value, **bounds)


def _fields_from(cls: type, d: dict[str, Any], owner: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise ConfigTypeError(f"{owner} must be a dict, got {type(d).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"{owner}: unknown field(s) {unknown}; expected some of {sorted(known)}")
    return dict(d)


class _Generated:
    """Base of configs selected by ``generator_name`` (firing probabilities, magnitudes)."""

    generator_name: ClassVar[str]
    registry: ClassVar[dict[str, type]]
    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        fields = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {**fields, "generator_name": self.generator_name}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Any:
        if not isinstance(d, dict):
            raise ConfigTypeError(f"{cls.kind} config must be a dict, got {type(d).__name__}")
        name = d.get("generator_name")
        if name not in cls.registry:
            raise ConfigError(
                f"{cls.kind}.generator_name must be one of {sorted(cls.registry)}, got {name!r}"
            )
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


class _ProbabilityRange:
    """Configs with ``max_prob`` in (0, 1] and ``0 < min_prob < max_prob`` (``<=`` unless ``strict``)."""

    generator_name: ClassVar[str]
    strict: ClassVar[bool] = True
    max_prob: float
    min_prob: float

    def __post_init__(self) -> None:
        firing.check_probability_range(
            self.max_prob, self.min_prob, strict=self.strict, owner=self.generator_name
        )


@dataclass
class ZipfianFiringProbabilityConfig(_ProbabilityRange, FiringProbabilityConfig):
    """``p_k ∝ k^-exponent`` rescaled to ``[min_prob, max_prob]``."""

    generator_name: ClassVar[str] = "zipfian"
    exponent: float = 1.0
    max_prob: float = 0.3
    min_prob: float = 0.01

    def __post_init__(self) -> None:
        _real("zipfian", "exponent", self.exponent, minimum=0.0, exclusive_minimum=True)
        super().__post_init__()

    def generate(self, num_features: int, seed: int | None = None) -> npt.NDArray[np.float32]:
        return firing.zipfian_firing_probabilities(num_features, self.exponent, self.max_prob, self.min_prob)


@dataclass
class LinearFiringProbabilityConfig(_ProbabilityRange, FiringProbabilityConfig):
    """Evenly spaced from ``max_prob`` to ``min_prob`` (which may be equal)."""

    generator_name: ClassVar[str] = "linear"
    strict: ClassVar[bool] = False
    max_prob: float = 0.3
    min_prob: float = 0.01

    def generate(self, num_features: int, seed: int | None = None) -> npt.NDArray[np.float32]:
        return firing.linear_firing_probabilities(num_features, self.max_prob, self.min_prob)


@dataclass
class RandomFiringProbabilityConfig(_ProbabilityRange, FiringProbabilityConfig):
    """Uniform in ``[min_prob, max_prob]`` from torch's CPU generator seeded with the world seed."""

    generator_name: ClassVar[str] = "random"
    max_prob: float = 0.5
    min_prob: float = 0.01

    def generate(self, num_features: int, seed: int | None = None) -> npt.NDArray[np.float32]:
        return firing.random_firing_probabilities(num_features, self.max_prob, self.min_prob, seed)


@dataclass
class ConstantFiringProbabilityConfig(FiringProbabilityConfig):
    """The same probability for every feature."""

    generator_name: ClassVar[str] = "constant"
    probability: float = 0.1

    def __post_init__(self) -> None:
        _real("constant", "probability", self.probability, minimum=0.0, maximum=1.0)

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
        _real("constant", "value", self.value)

    def generate(self, num_features: int, seed: int | None = None) -> npt.NDArray[np.float32]:
        return np.full(num_features, self.value, dtype=np.float32)


@dataclass
class _RampMagnitudeConfig(MagnitudeConfig):
    """From ``start`` (feature 0) to ``end`` (feature N-1), both > 0; a single feature gets ``start``."""

    start: float
    end: float

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            _real(self.generator_name, name, getattr(self, name), minimum=0.0, exclusive_minimum=True)

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
        _real("folded_normal", "mean", self.mean)
        _real("folded_normal", "std", self.std, minimum=0.0, exclusive_minimum=True)
        if self.min_value is not None:
            _real("folded_normal", "min_value", self.min_value, minimum=0.0)
        if self.max_value is not None:
            _real("folded_normal", "max_value", self.max_value, minimum=0.0, exclusive_minimum=True)
        if self.min_value is not None and self.max_value is not None and self.min_value > self.max_value:
            raise ConfigError("folded_normal.min_value must be <= max_value")

    def generate(self, num_features: int, seed: int | None = None) -> npt.NDArray[np.float32]:
        import torch

        # SAELens: a seeded CPU generator, else torch's global RNG.
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        samples = (self.mean + torch.randn(num_features, generator=generator) * self.std).abs()
        if self.min_value is not None or self.max_value is not None:
            samples = samples.clamp(min=self.min_value, max=self.max_value)
        return samples.numpy()


for _magnitude_cls in (
    ConstantMagnitudeConfig,
    LinearMagnitudeConfig,
    ExponentialMagnitudeConfig,
    FoldedNormalMagnitudeConfig,
):
    MagnitudeConfig.registry[_magnitude_cls.generator_name] = _magnitude_cls


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
        self.total_root_nodes = _int(owner, "total_root_nodes", self.total_root_nodes, 1)
        if isinstance(self.branching_factor, list | tuple):
            if len(self.branching_factor) != 2:
                raise ConfigError(f"{owner}.branching_factor must be an int or (min, max)")
            lo, hi = (_int(owner, "branching_factor", b, 2) for b in self.branching_factor)
            if lo > hi:
                raise ConfigError(f"{owner}.branching_factor must have min <= max, got {(lo, hi)}")
            self.branching_factor = (lo, hi)
        else:
            self.branching_factor = _int(owner, "branching_factor", self.branching_factor, 2)
        self.max_depth = _int(owner, "max_depth", self.max_depth, 1)
        portion = self.mutually_exclusive_portion
        _real(owner, "mutually_exclusive_portion", portion, minimum=0.0, maximum=1.0)
        min_depth = _int(owner, "mutually_exclusive_min_depth", self.mutually_exclusive_min_depth)
        self.mutually_exclusive_min_depth = min_depth
        if self.mutually_exclusive_max_depth is not None:
            name = "mutually_exclusive_max_depth"
            self.mutually_exclusive_max_depth = _int(owner, name, self.mutually_exclusive_max_depth)
            if self.mutually_exclusive_max_depth < min_depth:
                raise ConfigError(f"{owner}.{name} must be >= mutually_exclusive_min_depth ({min_depth})")
        for name in ("compensate_probabilities", "scale_children_by_parent"):
            setattr(self, name, as_bool(f"{owner}.{name}", getattr(self, name)))

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
        self.num_steps = _int("orthogonalization", "num_steps", self.num_steps)
        _real("orthogonalization", "lr", self.lr, minimum=0.0, exclusive_minimum=True)
        self.chunk_size = _int("orthogonalization", "chunk_size", self.chunk_size, 1)

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
        self.rank = _int("correlation", "rank", self.rank, 1)
        _real("correlation", "correlation_scale", self.correlation_scale, minimum=0.0)
        self.seed = as_optional_seed(self.seed, "correlation.seed")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LowRankCorrelationConfig:
        return cls(**_fields_from(cls, d, "correlation"))


# ---------------------------------------------------------------- world


def _magnitude_from(value: Any, name: str) -> float | MagnitudeConfig:
    if isinstance(value, dict):
        return MagnitudeConfig.from_dict(value)
    _real("WorldConfig", name, value)
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
        self.num_features = _int("WorldConfig", "num_features", self.num_features, 1)
        self.hidden_dim = _int("WorldConfig", "hidden_dim", self.hidden_dim, 1)
        for name, kind in (
            ("firing_probability", FiringProbabilityConfig),
            ("hierarchy", HierarchyConfig),
            ("orthogonalization", OrthogonalizationConfig),
            ("correlation", LowRankCorrelationConfig),
        ):
            value = getattr(self, name)
            if not (isinstance(value, kind) or (value is None and name != "firing_probability")):
                raise ConfigTypeError(f"WorldConfig.{name} must be a {kind.__name__}, got {value!r}")
        if not isinstance(self.std_firing_magnitudes, MagnitudeConfig):
            _real("WorldConfig", "std_firing_magnitudes", self.std_firing_magnitudes, minimum=0.0)
        if not isinstance(self.mean_firing_magnitudes, MagnitudeConfig):
            _real("WorldConfig", "mean_firing_magnitudes", self.mean_firing_magnitudes)
        if not isinstance(self.bias, bool):
            _real("WorldConfig", "bias", self.bias)
            if self.bias < 0:
                raise ConfigError(f"WorldConfig.bias must be a bool or a norm >= 0, got {self.bias}")
        if not isinstance(self.dtype, str):
            raise ConfigTypeError(f"WorldConfig.dtype must be a str, got {type(self.dtype).__name__}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"WorldConfig.dtype must be one of {DTYPES}, got {self.dtype!r}")
        # The world draws its parts from seed .. seed + 4 (SAELens's sub-seeds): all must be seeds.
        if self.seed is not None:
            self.seed = as_int("WorldConfig.seed", self.seed, minimum=0, maximum=U64_MAX - 4)

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
            raise ConfigError("WorldConfig: missing required field 'firing_probability'")
        nested: dict[str, type[HierarchyConfig | OrthogonalizationConfig | LowRankCorrelationConfig]] = {
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
                raise ConfigError(f"WorldConfig: missing required field {required!r}")
        return cls(**d)
