"""Named worlds, and the one place a world spec — preset name, world directory or config JSON — is resolved.

``PRESETS`` maps each preset name to a :class:`Preset`: the function building its ``WorldConfig`` and,
beside it, the bench's default protocol on that world. Help texts and error messages list the names from
it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthsae._validate import as_bool
from synthsae.errors import ConfigError, ConfigTypeError
from synthsae.world.config import (
    FoldedNormalMagnitudeConfig,
    HierarchyConfig,
    LinearMagnitudeConfig,
    LowRankCorrelationConfig,
    OrthogonalizationConfig,
    WorldConfig,
    ZipfianFiringProbabilityConfig,
)

if TYPE_CHECKING:
    from synthsae.world.model import World


def _synthsaebench(
    num_features: int,
    hidden_dim: int,
    *,
    min_prob: float,
    max_prob: float = 0.4,
    trees: tuple[int, int, int],
    rank: int,
    seed: int,
    orthogonalization: tuple[int, float] | None = None,
) -> WorldConfig:
    """SynthSAEBench's recipe at a given size: Zipf 0.5 on ``[min_prob, max_prob]``; ``trees = (roots,
    branching, depth)`` all mutually exclusive, compensated, children scaled by parents; a rank-``rank``
    copula of scale 0.1; magnitudes linear 5→4 with folded-normal(0.5, 0.5) std; bias 0.5;
    ``orthogonalization = (num_steps, lr)`` or none."""
    return WorldConfig(
        num_features=num_features,
        hidden_dim=hidden_dim,
        firing_probability=ZipfianFiringProbabilityConfig(exponent=0.5, max_prob=max_prob, min_prob=min_prob),
        hierarchy=HierarchyConfig(*trees, 1.0, 0, None, True, True),
        orthogonalization=None if orthogonalization is None else OrthogonalizationConfig(*orthogonalization),
        correlation=LowRankCorrelationConfig(rank=rank, correlation_scale=0.1),
        std_firing_magnitudes=FoldedNormalMagnitudeConfig(mean=0.5, std=0.5),
        mean_firing_magnitudes=LinearMagnitudeConfig(start=5.0, end=4.0),
        bias=0.5,
        seed=seed,
    )


@dataclass(frozen=True)
class Preset:
    """A named world and the bench's default protocol on it.

    ``build`` returns a fresh ``WorldConfig`` (:meth:`world`; calling the preset does the same).
    ``settings``, when given, returns the default bench protocol's settings: keyword arguments of
    :class:`synthsae.bench.protocol.Protocol`, every other field keeping the class's default
    (:meth:`protocol`); without it the bench uses its rule for other worlds
    (:func:`synthsae.bench.protocol.default_protocol`). ``note`` says what running that protocol takes.
    """

    build: Callable[[], WorldConfig]
    settings: Callable[[], dict[str, Any]] | None = None
    note: str = ""

    def world(self) -> WorldConfig:
        """A fresh copy of the preset's world configuration."""
        return self.build()

    def __call__(self) -> WorldConfig:
        return self.build()

    def protocol(self) -> dict[str, Any] | None:
        """The default bench protocol's settings (fresh lists each call), or None when the preset has
        none of its own."""
        return None if self.settings is None else self.settings()


#: Preset name → :class:`Preset` (see :func:`preset` for the worlds).
PRESETS: dict[str, Preset] = {
    # Protocol: the paper's architectures whose L0 is set directly, and TopK (ReLU and JumpReLU reach a
    # target L0 through a slow coefficient controller that needs far more than 1M rows), 256 latents,
    # L0 6/8/10 (the L0 of its first 256 features is 8, as the paper's 25 is that of the 16k world's
    # first 4,096), 1M rows, lr 1e-3: about 2 minutes on 2 CPU cores.
    "tiny": Preset(
        partial(_synthsaebench, 1024, 64, min_prob=5e-3, trees=(16, 3, 2), rank=8, seed=0),
        lambda: {
            "saes": ["batchtopk", "matryoshka", "topk", "mp"],
            "l0s": [6.0, 8.0, 10.0],
            "width": 256,
            "samples": 1_000_000,
            "eval_samples": 100_000,
            "lr": 1e-3,
        },
        "minutes on a laptop CPU",
    ),
    # Protocol: the paper's (4,096 latents, L0 15…45, 200M rows, 1M evaluation rows, lr 3e-4).
    "synthsaebench-16k": Preset(
        partial(
            _synthsaebench,
            16384,
            768,
            min_prob=5e-4,
            trees=(128, 4, 3),
            rank=25,
            seed=42,
            orthogonalization=(100, 3e-4),
        ),
        lambda: {
            "l0s": [15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0],
            "width": 4096,
            "samples": 200_000_000,
            "eval_samples": 1_000_000,
        },
        "the paper's protocol; use --device cuda",
    ),
    # The 16k world at a quarter of its width (see preset()'s docstring for the scaling rules).
    "synthsaebench-cpu": Preset(
        partial(
            _synthsaebench,
            4096,
            192,
            min_prob=5e-4,
            max_prob=0.2,
            trees=(32, 4, 3),
            rank=6,
            seed=42,
            orthogonalization=(100, 3e-4),
        ),
        lambda: {
            "l0s": [6.0],
            "width": 1024,
            "samples": 5_000_000,
            "eval_samples": 200_000,
            # Measured on seed 0 (docs, Results): lr 2e-3 lifts every SAE over 1e-3 at this length,
            # Matryoshka most (MCC 0.685 -> 0.739 at 4M rows).
            "lr": 2e-3,
            "seeds": [0, 1],
            # At ~4k steps the scaled default (0.015) leaves ReLU at L0 7.3, JumpReLU at 5.0 and Gated
            # at 14.6; these reach 6 ± 10 %.
            "autotune_gains": {"relu": 0.045, "jumprelu": 0.005, "gated": 0.045},
        },
        "the paper's five SAEs at the scaled L0 25, two seeds; about 20 minutes on 2 CPU cores",
    ),
}


def _scaled(num_features: int) -> WorldConfig:
    """The 16k world scaled to ``num_features`` = 16,384 · 4^k (rules in :func:`preset`)."""
    ratio = num_features / 16384
    return _synthsaebench(
        num_features,
        768 + 64 * round(math.log2(ratio)),
        min_prob=5e-4 / ratio,
        max_prob=0.4 / ratio**0.5,
        trees=(round(128 * ratio), 4, 3),
        rank=25,
        seed=42,
    )


# Scale worlds (:func:`preset`): 65,536, 262,144 and 1,048,576 features.
PRESETS.update(
    {
        "synthsaebench-65k": Preset(partial(_scaled, 65536)),
        "synthsaebench-262k": Preset(partial(_scaled, 262144)),
        "synthsaebench-1m": Preset(partial(_scaled, 1048576)),
    }
)


def preset_names() -> str:
    """The preset names, comma-separated (for help texts and messages)."""
    return ", ".join(PRESETS)


def preset(name: str) -> WorldConfig:
    """A named world configuration (a fresh copy each call), one of :data:`PRESETS`.

    ``"synthsaebench-16k"``: the SynthSAEBench-16k world (16,384 features, 768 dims, Zipf 0.5 on
    [5e-4, 0.4], 128 trees of branching 4 and depth 3, all exclusive, compensated, children scaled by
    parents; rank-25 copula; magnitudes linear 5→4 with folded-normal std; bias 0.5; 100
    orthogonalization steps at lr 3e-4; seed 42).
    ``"synthsaebench-cpu"``: the 16k world at a quarter of its width, for CPU benchmarks (4,096 features,
    192 dims, Zipf 0.5 on [5e-4, 0.2] so that the true L0 per dimension stays the 16k world's 0.045, 32
    trees of branching 4 and depth 3, rank-6 copula, the rest as the 16k world; docs, "The CPU
    benchmark", gives the rules).
    ``"synthsaebench-65k"``, ``"synthsaebench-262k"``, ``"synthsaebench-1m"``: the 16k world scaled up
    by r = N / 16,384 = 4, 16, 64 (docs, "Worlds of a million features"): hidden dim 768 + 128 ·
    log₄ r (896, 1,024, 1,152), Zipf 0.5 on [5e-4 / r, 0.4 / √r] (so the expected number of
    active features Σp stays the 16k world's 59.1), 128 · r trees of branching 4 and depth 3 (the same
    share of features in trees), rank-25 copula, no orthogonalization (its N² · D Gram steps would
    take hours on a CPU), the rest as the 16k world.
    ``"tiny"``: 1,024 features in 64 dims with hierarchy (16 trees of branching 3, depth 2), rank-8
    correlation and magnitudes on, no orthogonalization, seed 0; for demos and tests.
    """
    if not isinstance(name, str):
        raise ConfigTypeError(f"name must be a str, got {type(name).__name__}")
    if name not in PRESETS:
        raise ConfigError(f"name must be one of {list(PRESETS)}, got {name!r}")
    return PRESETS[name].world()


def resolve_world(
    world: str | os.PathLike[str],
    *,
    orthogonalize: bool = True,
    orthogonalization: str = "gram",
    device: Any = "cpu",
    show_progress: bool = True,
) -> tuple[World, str | None]:
    """The world a spec names: ``world`` is a preset name, a world directory (synthsae or SAELens
    layout), a ``synthetic_model_config.json``-style config file, or a Hugging Face Hub source
    (``owner/name[:path]``, :meth:`World.from_pretrained`; an existing local path wins). Returns it with
    the preset name (None for paths; the source for the Hub).

    Presets and config files are built on ``device`` (without the dictionary orthogonalization unless
    ``orthogonalize``; ``orthogonalization`` and ``show_progress`` are :class:`~synthsae.World`'s); a
    world directory is loaded as saved.
    """
    from synthsae.world.model import World

    if not isinstance(world, str | os.PathLike):
        raise ConfigTypeError(f"world must be a preset name or a path, got {type(world).__name__}")
    orthogonalize = as_bool("orthogonalize", orthogonalize)
    if isinstance(world, str) and world in PRESETS:
        config, name = preset(world), world
    else:
        path, name = Path(world), None
        if path.is_dir():
            return World.load(path), None
        if not path.is_file():
            from synthsae.world.hub import is_hub_source

            if isinstance(world, str) and is_hub_source(world):
                return World.from_pretrained(world), world
            raise ConfigError(
                f"world {str(world)!r} is neither a preset ({preset_names()}), an existing path, nor a "
                "Hugging Face Hub source ('owner/name[:path]')"
            )
        try:
            config = WorldConfig.from_dict(json.loads(path.read_text()))
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not a JSON world config ({e})") from None
    if not orthogonalize:
        config.orthogonalization = None
    built = World(config, device=device, orthogonalization=orthogonalization, show_progress=show_progress)
    return built, name
