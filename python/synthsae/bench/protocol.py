"""Bench protocols: which SAEs a sweep trains, on how many rows, at which L0s and seeds; each preset's
default protocol (kept beside its world in :data:`synthsae.presets.PRESETS`); and the architectures'
options for a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _paper_saes() -> list[str]:
    """The paper's architectures in its sweep's order (:func:`synthsae.saes.registry.paper_saes`)."""
    from synthsae.saes.registry import paper_saes

    return paper_saes()


@dataclass
class Protocol:
    """Training and evaluation settings of a bench run. ``saes`` defaults to the paper's five
    architectures (BatchTopK, Matryoshka, JumpReLU, ReLU, MP)."""

    saes: list[str] = field(default_factory=_paper_saes)
    l0s: list[float] = field(default_factory=lambda: [15.0, 25.0, 35.0])
    width: int = 4096
    samples: int = 10_000_000
    eval_samples: int = 500_000
    batch_size: int = 1024
    lr: float = 3e-4
    seeds: list[int] = field(default_factory=lambda: [0])
    #: Per architecture, an L0 autotuner gain in place of :func:`sae_options`'s scaled default.
    autotune_gains: dict[str, float] = field(default_factory=dict)
    #: Decoder-orthogonality penalty of :func:`~synthsae.training.loop.train` (0: off) and its power.
    ortho_coef: float = 0.0
    ortho_power: float = 2.0


def preset_protocols() -> dict[str, tuple[Protocol, str]]:
    """The presets that have a default protocol of their own, cheapest (fewest training rows) first:
    name → (that protocol, a note on what running it takes)."""
    from synthsae.presets import PRESETS

    found = []
    for name, preset in PRESETS.items():
        settings = preset.protocol()
        if settings is not None:
            found.append((name, Protocol(**settings), preset.note))
    found.sort(key=lambda f: f[1].samples)
    return {name: (protocol, note) for name, protocol, note in found}


def default_protocol(preset_name: str | None, num_features: int) -> Protocol:
    """The preset's protocol (its :class:`~synthsae.presets.Preset`'s settings; a Hub world of
    :data:`~synthsae.world.hub.HUB_PRESETS` gets its preset's); for other worlds N/4 latents, L0
    15/25/35, 10M rows."""
    from synthsae.presets import PRESETS
    from synthsae.world.hub import HUB_PRESETS

    preset_name = HUB_PRESETS.get(preset_name or "", preset_name)
    settings = PRESETS[preset_name].protocol() if preset_name in PRESETS else None
    if settings is not None:
        return Protocol(**settings)
    return Protocol(width=max(num_features // 4, 1))


def describe_protocols() -> str:
    """Each preset's default protocol, and the rule for other worlds (for ``synthsae bench --help``)."""

    def summary(p: Protocol, width: str) -> str:
        l0s = ",".join(f"{v:g}" for v in p.l0s)
        seeds = ",".join(map(str, p.seeds))
        return f"SAEs {','.join(p.saes)}, {width} latents, L0 {l0s}, seeds {seeds}, {p.samples:,} rows"

    lines = [
        f"{name} = {summary(protocol, str(protocol.width))} ({note})"
        for name, (protocol, note) in preset_protocols().items()
    ]
    lines.append(f"other worlds = {summary(Protocol(), 'N/4')}")
    return "; ".join(lines)


def sae_options(architecture: str, steps: int, gain: float | None = None) -> dict[str, Any]:
    """Constructor options of a registered architecture for a run of ``steps`` steps: its class's
    ``bench_options(steps, gain)`` (ReLU: L1 warm-up and autotuner start at a third of training, as in
    the sweep; JumpReLU: the autotuner's gain; none for the others). The L0 autotuner's ``gain``
    defaults to the sweep's 3e-4 scaled to the sweep's 195,312 steps (capped at 0.05)."""
    from synthsae.saes.registry import architecture_class

    if gain is None:
        gain = min(0.05, 3e-4 * 195_312 / max(steps, 1))
    return architecture_class(architecture).bench_options(steps, gain)


def dead_window(steps: int) -> int:
    """AuxK's dead-latent window: SAELens's 1,000 steps, or a tenth of a shorter run (at least 10)."""
    return max(10, min(1000, steps // 10))
