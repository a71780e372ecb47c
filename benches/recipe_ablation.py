"""The LISTA-Matryoshka recipe and its ingredients on the CPU protocol: an ablation.

    python benches/recipe_ablation.py --out DIR [--samples 5000000] [--seeds 0,1] [--configs NAMES]
                                      [--term-tilt T]

Runs, through ``synthsae.bench.run`` on the ``synthsaebench-cpu`` world with its default protocol
(1,024 latents, L0 6, lr 2e-3, 5M rows, seeds 0 and 1; all configurations of a seed train together
on one stream): plain Matryoshka BatchTopK, the recipe (``lista-matryoshka``: every ingredient), each
ingredient alone on top of Matryoshka, and the recipe without each ingredient. Prints the report's
table (95 % intervals over seeds, the paired differences) and a markdown table of MCC, F1,
recovery@0.5, absorption, explained variance and training seconds per run; resumable like any sweep.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import synthsae
from synthsae import bench, saes
from synthsae.bench.report import table
from synthsae.saes.lista_matryoshka import K_ANNEAL_FRACTION, K_START_FACTOR, TILT


def ingredients(steps: int, k: float, tilt: float = TILT) -> dict[str, dict[str, Any]]:
    """Each ingredient's options for a run of ``steps`` steps at target ``k`` (TERM at ``tilt``)."""
    return {
        "ista": {"ista_steps": 1, "learn_step_size": True},
        "kschedule": {
            "k_start": K_START_FACTOR * k,
            "k_anneal_steps": max(int(steps * K_ANNEAL_FRACTION), 1),
        },
        "detach": {"detach_inner": True},
        "sort": {"sort_by_frequency": True},
        "term": {"term_tilt": tilt},
    }


def configurations(steps: int, k: float, tilt: float = TILT) -> dict[str, dict[str, Any]]:
    """Name → Matryoshka options: the base, the recipe, each ingredient alone, the recipe minus each."""
    parts = ingredients(steps, k, tilt)
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
    args = parser.parse_args()
    world = synthsae.World(synthsae.preset("synthsaebench-cpu"), show_progress=False)
    protocol = bench.default_protocol("synthsaebench-cpu", world.num_features)
    if args.samples:
        protocol.samples = args.samples
    if args.seeds:
        protocol.seeds = [int(s) for s in args.seeds.split(",")]
    protocol.saes = []
    steps = protocol.samples // protocol.batch_size
    configs = configurations(steps, protocol.l0s[0], args.term_tilt)
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
