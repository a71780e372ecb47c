"""The LISTA-Matryoshka recipe and its ingredients on the CPU protocol: an ablation.

    python benches/recipe_ablation.py --out DIR [--samples 5000000] [--seeds 0,1] [--configs NAMES]
                                      [--term-tilt T] [--term-relative] [--k-start-factor F]
                                      [--k-anneal-fraction A] [--ista-step-size ETA] [--[no-]learn-step]
                                      [--ista-form ista|lista]

Runs, through ``synthsae.bench.run`` on the ``synthsaebench-cpu`` world with its default protocol
(1,024 latents, L0 6, lr 2e-3, 5M rows, seeds 0 and 1; all configurations of a seed train together
on one stream): plain Matryoshka BatchTopK, the recipe (``lista-matryoshka``: every ingredient), each
ingredient alone on top of Matryoshka, and the recipe without each ingredient. Prints the report's
table (95 % intervals over seeds, the paired differences) and a markdown table of MCC, F1,
recovery@0.5, absorption, explained variance and training seconds per run; resumable like any sweep.
The flags change how the ingredients are set (TERM's tilt and whether it is relative to the batch's
mean error, K's start as a multiple of the target and the share of training it decreases over, the
ISTA step size, whether it is learned and the refinement's form); their defaults are the recipe's.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Any

import synthsae
from synthsae import bench, saes
from synthsae.bench.report import table
from synthsae.saes.lista_matryoshka import (
    ISTA_FORM,
    ISTA_STEP_SIZE,
    K_ANNEAL_FRACTION,
    K_START_FACTOR,
    LEARN_STEP_SIZE,
    TERM_RELATIVE,
    TILT,
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """How each ingredient is set (defaults: the recipe's)."""

    term_tilt: float = TILT
    term_relative: bool = TERM_RELATIVE
    k_start_factor: float = K_START_FACTOR
    k_anneal_fraction: float = K_ANNEAL_FRACTION
    ista_step_size: float = ISTA_STEP_SIZE
    learn_step_size: bool = LEARN_STEP_SIZE
    ista_form: str = ISTA_FORM


def ingredients(steps: int, k: float, settings: Settings = Settings()) -> dict[str, dict[str, Any]]:
    """Each ingredient's options for a run of ``steps`` steps at target ``k``."""
    return {
        "ista": {
            "ista_steps": 1,
            "ista_step_size": settings.ista_step_size,
            "learn_step_size": settings.learn_step_size,
            "ista_form": settings.ista_form,
        },
        "kschedule": {
            "k_start": settings.k_start_factor * k,
            "k_anneal_steps": max(int(steps * settings.k_anneal_fraction), 1),
        },
        "detach": {"detach_inner": True},
        "sort": {"sort_by_frequency": True},
        "term": {"term_tilt": settings.term_tilt, "term_relative": settings.term_relative},
    }


def configurations(steps: int, k: float, settings: Settings = Settings()) -> dict[str, dict[str, Any]]:
    """Name → Matryoshka options: the base, the recipe, each ingredient alone, the recipe minus each."""
    parts = ingredients(steps, k, settings)
    everything = {key: value for options in parts.values() for key, value in options.items()}
    out: dict[str, dict[str, Any]] = {"base-matryoshka": {}, "recipe": everything}
    for name, options in parts.items():
        out[f"plus-{name}"] = options
    for name in parts:
        out[f"recipe-no-{name}"] = {
            key: value for other, options in parts.items() if other != name for key, value in options.items()
        }
    return out


def factory(options: dict[str, Any]) -> Any:
    def make(d_in: int, d_sae: int, l0: float, seed: int) -> saes.SAE:
        return saes.create_sae("matryoshka", d_in, d_sae, l0=l0, seed=seed, **options)

    return make


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", required=True)
    parser.add_argument("--samples", type=int, default=None, help="training rows (default: the protocol's)")
    parser.add_argument("--seeds", default=None, help="comma-separated (default: the protocol's)")
    parser.add_argument("--configs", default=None, help="comma-separated names (default: all)")
    parser.add_argument("--term-tilt", type=float, default=TILT, help=f"TERM's tilt (default {TILT})")
    parser.add_argument(
        "--term-relative",
        action=argparse.BooleanOptionalAction,
        default=TERM_RELATIVE,
        help=f"tilt the errors relative to the batch mean (default {TERM_RELATIVE})",
    )
    parser.add_argument("--k-start-factor", type=float, default=K_START_FACTOR)
    parser.add_argument("--k-anneal-fraction", type=float, default=K_ANNEAL_FRACTION)
    parser.add_argument("--ista-step-size", type=float, default=ISTA_STEP_SIZE)
    parser.add_argument(
        "--learn-step",
        action=argparse.BooleanOptionalAction,
        default=LEARN_STEP_SIZE,
        help=f"learn the step size (default {LEARN_STEP_SIZE})",
    )
    parser.add_argument("--ista-form", choices=("ista", "lista"), default=ISTA_FORM)
    args = parser.parse_args()
    world = synthsae.World(synthsae.preset("synthsaebench-cpu"), show_progress=False)
    protocol = bench.default_protocol("synthsaebench-cpu", world.num_features)
    if args.samples:
        protocol.samples = args.samples
    if args.seeds:
        protocol.seeds = [int(s) for s in args.seeds.split(",")]
    protocol.saes = []
    steps = protocol.samples // protocol.batch_size
    settings = Settings(
        term_tilt=args.term_tilt,
        term_relative=args.term_relative,
        k_start_factor=args.k_start_factor,
        k_anneal_fraction=args.k_anneal_fraction,
        ista_step_size=args.ista_step_size,
        learn_step_size=args.learn_step,
        ista_form=args.ista_form,
    )
    configs = configurations(steps, protocol.l0s[0], settings)
    if args.configs:
        configs = {name: configs[name] for name in args.configs.split(",")}
    t0 = time.perf_counter()
    report = bench.run(
        world,
        protocol,
        args.out,
        preset_name="synthsaebench-cpu",
        saes={name: factory(options) for name, options in configs.items()},
        ceiling=False,
        show_progress=False,
    )
    print(table(report))
    print(f"\nwall time {time.perf_counter() - t0:.0f} s")
    print("\n| configuration | MCC | F1 | rec@.5 | absorption | expl. var. | train s/run |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    seconds: dict[str, list[float]] = {}
    for run in report["runs"]:
        seconds.setdefault(run["architecture"], []).append(run["train_seconds"])
    for name in configs:
        row = next((g for g in report["summary"] if g["architecture"] == name), None)
        if row is None:
            continue
        m = row["metrics"]
        cells = [f"{m[c]['mean']:.4f}" for c in ("MCC", "F1", "rec@.5", "absorb", "expl.var")]
        mean_seconds = sum(seconds[name]) / len(seconds[name])
        print(f"| {name} | {' | '.join(cells)} | {mean_seconds:.0f} |")


if __name__ == "__main__":
    main()
