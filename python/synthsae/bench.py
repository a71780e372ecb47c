"""The main job: build a world, train SAEs over architectures × L0, score each, write a report and plots."""

from __future__ import annotations

import datetime
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import synthsae
from synthsae._files import write_json
from synthsae._validate import U64_MAX, as_int
from synthsae.evaluation import EvalResult, evaluate
from synthsae.training import train
from synthsae.world import World

#: The paper's five architectures (SynthSAEBench's sweep), in its order.
PAPER_SAES = ("batchtopk", "matryoshka", "jumprelu", "relu", "mp")
#: Architectures whose L0 is fixed by k rather than reached by a coefficient controller.
DIRECT_L0_SAES = ("batchtopk", "matryoshka", "topk", "mp")


@dataclass
class Protocol:
    """Training and evaluation settings of a bench run."""

    saes: list[str] = field(default_factory=lambda: list(PAPER_SAES))
    l0s: list[float] = field(default_factory=lambda: [15.0, 25.0, 35.0])
    width: int = 4096
    samples: int = 10_000_000
    eval_samples: int = 500_000
    batch_size: int = 1024
    lr: float = 3e-4


class PresetProtocol(NamedTuple):
    """A preset's default bench protocol and a note on what running it takes."""

    make: Callable[[], Protocol]
    note: str


#: Default protocols of the presets (names from ``synthsae.presets.PRESETS``). ``tiny``: the four
#: architectures whose L0 is set directly (ReLU and JumpReLU reach a target L0 through a slow coefficient
#: controller that needs far more than 1M rows), 256 latents, L0 6/8/10 (the L0 of its first 256 features
#: is 8, as the paper's 25 is that of the 16k world's first 4,096), 1M rows, lr 1e-3 — about 2 minutes on
#: 2 CPU cores. ``synthsaebench-16k``: the paper's protocol (4,096 latents, L0 15…45, 200M rows, 1M
#: evaluation rows, lr 3e-4).
PRESET_PROTOCOLS: dict[str, PresetProtocol] = {
    "tiny": PresetProtocol(
        lambda: Protocol(
            saes=list(DIRECT_L0_SAES),
            l0s=[6.0, 8.0, 10.0],
            width=256,
            samples=1_000_000,
            eval_samples=100_000,
            lr=1e-3,
        ),
        "minutes on a laptop CPU",
    ),
    "synthsaebench-16k": PresetProtocol(
        lambda: Protocol(
            l0s=[15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0],
            width=4096,
            samples=200_000_000,
            eval_samples=1_000_000,
        ),
        "the paper's protocol; use --device cuda",
    ),
}


def default_protocol(preset_name: str | None, num_features: int) -> Protocol:
    """The preset's protocol (:data:`PRESET_PROTOCOLS`); for other worlds N/4 latents, L0 15/25/35,
    10M rows."""
    if preset_name in PRESET_PROTOCOLS:
        return PRESET_PROTOCOLS[preset_name].make()
    return Protocol(width=max(num_features // 4, 1))


def describe_protocols() -> str:
    """Each preset's default protocol, and the rule for other worlds (for ``synthsae bench --help``)."""

    def summary(p: Protocol, width: str) -> str:
        l0s = ",".join(f"{v:g}" for v in p.l0s)
        return f"SAEs {','.join(p.saes)}, {width} latents, L0 {l0s}, {p.samples:,} rows"

    lines = []
    for name, default in PRESET_PROTOCOLS.items():
        protocol = default.make()
        lines.append(f"{name} = {summary(protocol, str(protocol.width))} ({default.note})")
    lines.append(f"other worlds = {summary(Protocol(), 'N/4')}")
    return "; ".join(lines)


def sae_options(architecture: str, steps: int) -> dict[str, Any]:
    """Constructor options for a run of ``steps`` steps. The L0 autotuner's gain is the sweep's 3e-4 scaled
    to the sweep's 195,312 steps (capped at 0.05); ReLU's L1 warm-up and autotuner start at a third of
    training, as in the sweep."""
    gain = min(0.05, 3e-4 * 195_312 / max(steps, 1))
    if architecture == "relu":
        return {"l1_warm_up_steps": steps // 3, "autotune_start_step": steps // 3, "autotune_gain": gain}
    if architecture == "jumprelu":
        return {"autotune_gain": gain}
    return {}


def dead_window(steps: int) -> int:
    """AuxK's dead-latent window: SAELens's 1,000 steps, or a tenth of a shorter run (at least 10)."""
    return max(10, min(1000, steps // 10))


def _versions() -> dict[str, str]:
    import torch

    return {
        "synthsae": synthsae.__version__,
        "rng_algorithm": synthsae.RNG_ALGORITHM,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def run_bench(
    world: World,
    protocol: Protocol,
    out: Path,
    *,
    preset_name: str | None,
    device: Any = None,
    seed: int = 0,
    show_progress: bool = True,
    log: Any = print,
) -> dict[str, Any]:
    """Trains and scores every architecture × L0 of ``protocol``; writes ``out/report.json``, the SAEs
    (``out/saes/<arch>-l0-<L0>/``) and the plots; returns the report."""
    from synthsae import saes
    from synthsae.plots import write_plots

    seed = as_int("seed", seed, minimum=0, maximum=U64_MAX - 1)  # evaluation reads stream seed + 1
    out.mkdir(parents=True, exist_ok=True)
    steps = protocol.samples // protocol.batch_size
    report: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
        "preset": preset_name,
        "world_config": world.config.to_dict(),
        "protocol": protocol.__dict__,
        "device": str(device or "cpu"),
        "seed": seed,
        "runs": [],
    }
    results: list[tuple[str, float, EvalResult]] = []
    for architecture in protocol.saes:
        for l0 in protocol.l0s:
            sae = saes.create_sae(
                architecture,
                world.hidden_dim,
                protocol.width,
                l0=l0,
                seed=seed,
                **sae_options(architecture, steps),
            )
            log(f"training {architecture} L0={l0:g} ({protocol.width} latents, {protocol.samples:,} rows)")
            history = train(
                sae,
                world,
                total_samples=protocol.samples,
                batch_size=protocol.batch_size,
                lr=protocol.lr,
                seed=seed,
                device=device,
                log_every=max(steps // 20, 1),
                dead_window=dead_window(steps),
                show_progress=show_progress,
            )
            t0 = time.perf_counter()
            result = evaluate(
                sae,
                world,
                num_samples=protocol.eval_samples,
                seed=seed + 1,
                device=device,
                show_progress=show_progress,
            )
            eval_seconds = time.perf_counter() - t0
            sae.save(out / "saes" / f"{architecture}-l0-{l0:g}", overwrite=True)
            results.append((architecture, l0, result))
            report["runs"].append(
                {
                    "architecture": architecture,
                    "l0": l0,
                    "width": protocol.width,
                    "train_seconds": history.seconds,
                    "train_rows_per_second": history.samples / max(history.seconds, 1e-9),
                    "eval_seconds": eval_seconds,
                    "training_log": history.records,
                    "result": result.to_dict(),
                }
            )
            write_json(out / "report.json", report)  # progress is kept if a later run fails
    report["plots"] = write_plots(out, results, world.firing_probabilities.numpy())
    write_json(out / "report.json", report)
    return report


#: Columns of the summary table: (header, EvalResult key, width, format).
def _field(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda result: result[key]


def _recovery(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda result: result.get("recovery", {}).get(key, float("nan"))


#: Table columns: header, value of a result dict, width, format.
_COLUMNS: tuple[tuple[str, Callable[[dict[str, Any]], Any], int, str], ...] = (
    ("MCC", _field("mcc"), 7, ".4f"),
    ("F1", _field("f1"), 7, ".4f"),
    ("mF1", _field("matched_f1"), 7, ".4f"),
    ("rec@.5", _recovery("recovery/matched@0.5"), 7, ".4f"),
    ("rec@.9", _recovery("recovery/matched@0.9"), 7, ".4f"),
    ("absorb", _recovery("absorption/full_rate"), 7, ".4f"),
    ("a.frac", _recovery("absorption/fraction"), 7, ".4f"),
    ("unique", _field("uniqueness"), 7, ".4f"),
    ("expl.var", _field("explained_variance"), 8, ".4f"),
    ("SAE L0", _field("sae_l0"), 7, ".2f"),
    ("dead", _field("dead_latents"), 6, "d"),
)


def table(report: dict[str, Any]) -> str:
    """The summary table of a report (one line per architecture × L0): SAELens's MCC and F1, the F1
    through the MCC matching (mF1), the shares of features whose matched latent has |cos| >= 0.5 / 0.9 and
    the full absorption rate and the absorption fraction."""
    head = " ".join([f"{'architecture':<12}", f"{'L0':>5}", *(f"{h:>{w}}" for h, _, w, _ in _COLUMNS)])
    lines = [head, "-" * len(head)]
    for run in report["runs"]:
        cells = [f"{run['architecture']:<12}", f"{run['l0']:>5g}"]
        cells += [f"{get(run['result']):>{w}{spec}}" for _, get, w, spec in _COLUMNS]
        lines.append(" ".join(cells))
    return "\n".join(lines)
