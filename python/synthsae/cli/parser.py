"""The ``synthsae`` argument parser: every command, its flags and their help."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from synthsae.cli import commands
from synthsae.cli.values import (
    checking_saes,
    l0_list,
    nonnegative_float,
    nonnegative_int,
    ortho_power,
    positive_float,
    positive_int,
    sae_list,
    sae_module,
    seed,
    seed_list,
)
from synthsae.kernels import build_info
from synthsae.presets import preset_names

DESCRIPTION = (
    "Synthetic data with a known ground truth for evaluating sparse autoencoders: build worlds, sample "
    "and generate datasets, train and score SAEs against the true features (bench)."
)


def _orthogonalization_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-orthogonalize", action="store_true", help="skip the dictionary orthogonalization")
    p.add_argument(
        "--orthogonalization",
        choices=("gram", "chunked"),
        default="gram",
        help="gram (fast, default) or chunked (SAELens's computation, for exact replication)",
    )


class _VersionAction(argparse.Action):
    """``--version``: prints the version line as it is (argparse's own action re-wraps it to the
    terminal's width) and exits."""

    def __init__(self, option_strings: Sequence[str], version: str, dest: str = argparse.SUPPRESS) -> None:
        super().__init__(
            option_strings,
            dest=dest,
            default=argparse.SUPPRESS,
            nargs=0,
            help="print the version and build (target, kernel, random number generator) and exit",
        )
        self.version = version

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> NoReturn:
        sys.stdout.write(self.version + "\n")
        parser.exit()


def _world_arg(
    p: argparse.ArgumentParser, flag: bool = True, *, required: bool = True, text: str = ""
) -> None:
    text = text or f"preset ({preset_names()}), world directory or config JSON"
    if flag:
        p.add_argument("--world", required=required, default=None, help=text)
    else:
        p.add_argument("world", help=text)
    _orthogonalization_args(p)


class _BenchHelp(argparse.HelpFormatter):
    """Fills in the presets' default protocols only when ``bench --help`` is shown: describing them
    imports the SAE architectures (and torch), which other commands do not need."""

    def add_text(self, text: str | None) -> None:
        if text is not None and "{protocols}" in text:
            from synthsae.bench.protocol import describe_protocols

            text = text.replace("{protocols}", describe_protocols())
        super().add_text(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synthsae", description=DESCRIPTION)
    build = build_info()
    version = f"synthsae {build['version']} ({build['target']}, kernel {build['kernel']}, rng {build['rng']})"
    parser.add_argument("--version", action=_VersionAction, version=version)
    subcommands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to do (each command has its own --help)"
    )

    bench = subcommands.add_parser(
        "bench",
        help="train SAEs on a world, score them against the ground truth, write report.json and plots",
        description="Builds the world, trains every SAE architecture at every L0, evaluates each, prints a "
        "table and writes report.json, the SAEs and PNG plots into --out. Defaults depend on the preset: "
        "{protocols}.",
        formatter_class=_BenchHelp,
    )
    bench.add_argument(
        "--preset", default="tiny", help=f"preset ({preset_names()}; default tiny) or world path"
    )
    bench.add_argument("--saes", type=sae_list, default=None, help="comma-separated architectures")
    bench.add_argument(
        "--sae-module",
        type=sae_module,
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE (a name or a .py path) first: the SAE architectures it defines join --saes "
        "(repeatable; see docs/adding-an-architecture.md)",
    )
    bench.add_argument("--l0", type=l0_list, default=None, help="comma-separated target L0s")
    bench.add_argument("--width", type=positive_int, default=None, help="SAE latents")
    bench.add_argument("--samples", type=positive_int, default=None, help="training rows per SAE")
    bench.add_argument("--eval-samples", type=nonnegative_int, default=None, help="evaluation rows per SAE")
    bench.add_argument("--batch-size", type=positive_int, default=None, help="training batch size (1024)")
    bench.add_argument("--lr", type=positive_float, default=None, help="Adam learning rate")
    bench.add_argument(
        "--ortho-coef",
        type=nonnegative_float,
        default=None,
        help="decoder-orthogonality penalty C (0: off; docs: Training, 'Decoder-orthogonality penalty')",
    )
    bench.add_argument(
        "--ortho-power", type=ortho_power, default=None, help="its power P on |cos| (2, at least 1)"
    )
    bench.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="training device (cpu)")
    bench.add_argument(
        "--seeds", type=seed_list, default=None, help="comma-separated seeds; each run once per seed (0)"
    )
    bench.add_argument(
        "--sae",
        action="append",
        default=[],
        metavar="[NAME=]MODULE:CALLABLE",
        help=(
            "your own SAE: a factory (d_in, d_sae, l0, seed) -> module (repeatable; docs: The benchmark, "
            "'Your own SAE')"
        ),
    )
    bench.add_argument(
        "--saelens",
        action="append",
        default=[],
        metavar="CLASS",
        help="a SAELens training SAE with k = L0, e.g. BatchTopKTrainingSAE (repeatable; needs sae-lens)",
    )
    bench.add_argument(
        "--shard-index",
        type=nonnegative_int,
        default=None,
        help="run only the runs whose index (in the sweep's order) mod --num-shards equals this; "
        "merge the shares with report",
    )
    bench.add_argument(
        "--num-shards",
        type=positive_int,
        default=None,
        help="number of shares the sweep's runs are split into (with --shard-index)",
    )
    bench.add_argument(
        "--group-size",
        type=positive_int,
        default=None,
        help="train at most this many SAEs together on one stream (default: every run of a seed; each "
        "holds its parameters and optimizer state in memory)",
    )
    bench.add_argument(
        "--no-ceiling",
        action="store_true",
        help="skip the supervised probe ceiling (a linear probe trained on the true labels; computed once "
        "per sweep directory)",
    )
    bench.add_argument(
        "--scheduler",
        default=None,
        help="train the groups as tasks on this Dask scheduler (tcp://host:8786); workers must see --out",
    )
    bench.add_argument(
        "--local-workers", type=positive_int, default=None, help="train the groups on a local Dask cluster"
    )
    bench.add_argument("--out", default=None, help="output directory (synthsae-bench-<preset>)")
    bench.add_argument(
        "--overwrite", action="store_true", help="start afresh in an existing --out (default: resume a sweep)"
    )
    _orthogonalization_args(bench)
    bench.add_argument("--quiet", action="store_true", help="no progress bars")
    bench.set_defaults(run=checking_saes(commands.run_bench))

    report = subcommands.add_parser(
        "report",
        help="table, report.json and plots from the finished runs of one or more bench sweeps",
        description="Merges the finished runs of bench sweep directories (refusing different worlds or "
        "training settings) and writes report.json and the plots into --out.",
    )
    report.add_argument("dirs", nargs="+", help="bench --out directories")
    report.add_argument("--out", default=None, help="where to write (default: the first directory)")
    report.set_defaults(run=commands.run_report)

    board = subcommands.add_parser(
        "leaderboard",
        help="a static HTML leaderboard page from sweeps and report.json files",
        description="Writes one self-contained HTML page (no server, no network; opens from disk or on "
        "GitHub Pages) into --out: per world and L0 a sortable table of every input's architectures with "
        "95 %% confidence intervals, paired-test marks, the probe ceiling and results reported elsewhere, "
        "the plots, and each input's provenance.",
    )
    board.add_argument("inputs", nargs="+", help="bench sweep directories or report.json files")
    board.add_argument("--out", required=True, help="folder for index.html")
    board.add_argument("--overwrite", action="store_true", help="replace an existing index.html")
    board.set_defaults(run=commands.run_leaderboard)

    world = subcommands.add_parser("world", help="create, describe or measure a world")
    world_commands = world.add_subparsers(
        dest="world_command", required=True, metavar="SUBCOMMAND", help="create, info or stats"
    )
    create = world_commands.add_parser("create", help="build a world and save it (SAELens layout)")
    _world_arg(create)
    create.add_argument("--out", required=True, help="directory to write")
    create.add_argument("--overwrite", action="store_true", help="replace an existing non-empty directory")
    create.set_defaults(run=commands.run_world_create)
    info = world_commands.add_parser("info", help="print a world's config")
    _world_arg(info, flag=False)
    info.set_defaults(run=commands.run_world_info)
    stats = world_commands.add_parser(
        "stats",
        help="sample a world and print its statistics",
        description="Samples rows of a world and prints, each labelled: the true L0 (active features "
        "per row), the L0 of the features a bench SAE of the default width can hold, firing rates by "
        "hierarchy depth, the copula's RMS correlation and the features' mean max |cos|.",
    )
    _world_arg(stats, flag=False)
    stats.add_argument("--samples", type=positive_int, default=20_000, help="rows to sample (20,000)")
    stats.add_argument("--seed", type=seed, default=0, help="stream seed of the sampled rows (0)")
    stats.add_argument(
        "--json", action="store_true", help="print the statistics as one JSON object instead (unlabelled)"
    )
    stats.set_defaults(run=commands.run_world_stats)

    sample = subcommands.add_parser("sample", help="write N rows of a world to a safetensors file")
    _world_arg(sample)
    sample.add_argument("--rows", type=positive_int, required=True, help="rows to write")
    sample.add_argument("--out", required=True, help="safetensors file to write")
    sample.add_argument(
        "--seed", type=seed, default=0, help="stream seed: the same seed gives the same rows (0)"
    )
    sample.add_argument(
        "--start",
        type=nonnegative_int,
        default=0,
        help="index of the first row to write: rows start..start+rows of the seed's stream (0)",
    )
    sample.add_argument("--hidden", action="store_true", help="also write dense hidden activations")
    sample.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    sample.set_defaults(run=commands.run_sample)

    gen = subcommands.add_parser(
        "generate",
        help="write a sharded dataset of a world's samples (locally, on Dask, or as SLURM array tasks)",
        description="Writes rows 0..N of a world into DIR as safetensors shards (CSR features, optionally "
        "hidden activations) with manifest.json and world/. Shards are the same bits however the work is "
        "split. Rerunning into DIR keeps intact shards and rewrites missing or corrupt ones; with no "
        "--world/--rows it resumes DIR's dataset.",
    )
    gen.add_argument(
        "--world", metavar="W", default=None, help="preset, world directory or config JSON (resume: DIR's)"
    )
    _orthogonalization_args(gen)
    gen.add_argument("--rows", metavar="N", type=positive_int, default=None, help="rows in the dataset")
    gen.add_argument("--out", metavar="DIR", required=True, help="dataset directory")
    gen.add_argument("--shard-rows", type=positive_int, default=None, help="rows per shard (1,000,000)")
    gen.add_argument("--hidden", action="store_true", help="also store hidden activations [rows, D]")
    gen.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default=None, help="hidden dtype")
    gen.add_argument("--seed", type=seed, default=None, help="stream seed (0)")
    where = gen.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, help="Dask scheduler address (tcp://host:8786)")
    where.add_argument("--local-workers", type=positive_int, default=None, help="start a local Dask cluster")
    gen.add_argument(
        "--shard-index",
        type=nonnegative_int,
        default=None,
        help="write only shards i with i mod --num-shards = this (default: $SLURM_ARRAY_TASK_ID)",
    )
    gen.add_argument(
        "--num-shards",
        type=positive_int,
        default=None,
        help="number of tasks the dataset is split over (default: $SLURM_ARRAY_TASK_COUNT)",
    )
    gen.add_argument("--threads", type=positive_int, default=None, help="threads per shard")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.set_defaults(run=commands.run_generate)

    ver = subcommands.add_parser("verify", help="re-hash every shard of a dataset against its manifest")
    ver.add_argument("dir", help="dataset directory")
    ver.add_argument("--threads", type=positive_int, default=None, help="hashing threads (all cores)")
    ver.set_defaults(run=commands.run_verify)

    ev = subcommands.add_parser(
        "eval",
        help="score a saved SAE (synthsae or SAELens directory) on a world",
        description="Scores a saved SAE against a world's ground truth and prints every metric. For an "
        "SAE of a bench sweep (--sae <sweep>/runs/<run>/sae, or the run directory) the defaults are the "
        "ones bench scored it with: the run's seed + 1 as stream seed, the sweep's evaluation rows and "
        "its world, so the scores match the sweep's table; flags given explicitly win.",
    )
    ev.add_argument(
        "--sae", required=True, help="SAE directory (cfg.json + weights), or a bench run directory"
    )
    _world_arg(
        ev,
        required=False,
        text=f"preset ({preset_names()}), world directory or config JSON; required unless --sae is an "
        "SAE of a bench sweep (default: the sweep's world)",
    )
    ev.add_argument(
        "--samples",
        type=positive_int,
        default=None,
        help="evaluation rows (500,000; for an SAE of a bench sweep, the sweep's evaluation rows)",
    )
    ev.add_argument(
        "--seed",
        type=seed,
        default=None,
        help="stream seed of the evaluation rows (0; for an SAE of a bench sweep, its run's seed + 1: "
        "the stream bench scored it on, not the one it trained on)",
    )
    ev.add_argument("--device", default=None, help="device (the SAE's)")
    ev.add_argument("--json", default=None, help="also write every EvalResult field to this JSON file")
    ev.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    ev.set_defaults(run=commands.run_eval)

    demo = subcommands.add_parser("demo", help="sample rows of a 16,384-feature Zipf world and print rows/s")
    demo.add_argument("--rows", type=positive_int, default=1_000_000, help="rows to sample (1,000,000)")
    demo.add_argument("--features", type=positive_int, default=16_384, help="number of features (16,384)")
    demo.add_argument("--exponent", type=float, default=0.5, help="Zipf exponent (0.5)")
    demo.add_argument("--max-prob", type=float, default=0.4, help="largest firing probability (0.4)")
    demo.add_argument("--min-prob", type=float, default=5e-4, help="smallest firing probability (5e-4)")
    demo.add_argument("--threads", type=positive_int, default=None, help="threads (all cores)")
    demo.add_argument("--seed", type=seed, default=0, help="seed (0)")
    demo.set_defaults(run=commands.run_demo)
    return parser
