"""``synthsae`` command line: ``bench`` (the main job), ``world``, ``sample``, ``generate``, ``verify``,
``eval``, ``demo``."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import synthsae
from synthsae._files import atomic_write, check_fresh_dir
from synthsae._validate import U64_MAX, as_float, as_int, as_nonnegative, as_positive
from synthsae.presets import preset_names, resolve_world


class UsageError(Exception):
    """A problem with the command line (exit code 2)."""


def _number_arg(
    parse: Callable[[str], Any], check: Callable[..., Any], **bounds: Any
) -> Callable[[str], Any]:
    """An argparse type: ``parse`` the text (``_`` allowed as a digit separator), then ``check`` it with
    a :mod:`synthsae._validate` check and ``bounds``; a bad value exits 2 with the check's message."""

    def convert(text: str) -> Any:
        try:
            value = parse(text.replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        try:
            return check("value", value, **bounds)
        except (TypeError, ValueError) as e:
            raise argparse.ArgumentTypeError(str(e).removeprefix("value ")) from None

    return convert


_positive_int = _number_arg(int, as_int, minimum=1)
_nonnegative_int = _number_arg(int, as_int, minimum=0)
_seed = _number_arg(int, as_int, minimum=0, maximum=U64_MAX)
_positive_float = _number_arg(float, as_positive)
_nonnegative_float = _number_arg(float, as_nonnegative)
_ortho_power = _number_arg(float, as_float, minimum=1.0)


def _l0_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"L0 values must be positive, got {text!r}")
    try:
        return [as_positive("L0", v) for v in values]
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _seed_list(text: str) -> list[int]:
    seeds = [_seed(v.strip()) for v in text.split(",") if v.strip()]
    if not seeds:
        raise argparse.ArgumentTypeError(f"expected comma-separated seeds, got {text!r}")
    return seeds


def _sae_list(text: str) -> list[str]:
    from synthsae.saes import ARCHITECTURES

    names = [v.strip() for v in text.split(",") if v.strip()]
    bad = [n for n in names if n not in ARCHITECTURES]
    if not names or bad:
        raise argparse.ArgumentTypeError(
            f"unknown SAE(s) {bad or text!r}; choose from {','.join(ARCHITECTURES)}"
        )
    return names


def _fresh_dir(path: Path, overwrite: bool) -> None:
    check_fresh_dir(path, overwrite=overwrite, hint="pass --overwrite to replace its contents")


def _fresh_file(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise UsageError(f"{path} exists; pass --overwrite to replace it")


# ---------------------------------------------------------------------------------------------- commands


def _bench_dir(out: Path, overwrite: bool) -> None:
    """``out`` may be new, empty, or an earlier sweep (resumed); ``--overwrite`` deletes an earlier
    sweep's files first (:func:`synthsae.bench.clear_sweep`) and refuses any other non-empty directory."""
    from synthsae.bench import SWEEP_FILE, clear_sweep

    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if overwrite:
        clear_sweep(out)
    elif not (out / SWEEP_FILE).is_file():
        raise UsageError(
            f"--out {out} is not empty and is not a bench sweep (no {SWEEP_FILE}): choose another directory"
        )


def _bench(args: argparse.Namespace) -> int:
    from synthsae.bench import default_protocol, run, table
    from synthsae.saes.external import load_factory, saelens_factory

    out = Path(args.out or f"synthsae-bench-{Path(args.preset).name}")
    _bench_dir(out, args.overwrite)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA device is available")
    if (args.shard_index is None) != (args.num_shards is None):
        raise UsageError("--shard-index and --num-shards go together")
    shard_index, num_shards = (args.shard_index or 0), (args.num_shards or 1)
    if shard_index >= num_shards:
        raise UsageError(f"--shard-index must be below --num-shards ({num_shards}), got {shard_index}")
    try:
        custom = dict(load_factory(spec) for spec in args.sae)
    except ValueError as e:
        raise UsageError(f"--sae: {e}") from None
    for class_name in args.saelens:
        custom[f"saelens-{class_name}"] = saelens_factory(class_name)
    t0 = time.perf_counter()
    world, preset_name = resolve_world(
        args.preset, **_orthogonalization(args), device=args.device, show_progress=not args.quiet
    )
    protocol = default_protocol(preset_name, world.num_features)
    for name in (
        "saes",
        "width",
        "samples",
        "eval_samples",
        "batch_size",
        "lr",
        "seeds",
        "ortho_coef",
        "ortho_power",
    ):
        if getattr(args, name) is not None:
            setattr(protocol, name, getattr(args, name))
    if args.l0 is not None:
        protocol.l0s = args.l0
    if (args.sae or args.saelens) and args.saes is None:
        protocol.saes = []  # only the user's SAEs unless --saes names built-ins too
    if protocol.width < 1 or protocol.samples < protocol.batch_size:
        raise UsageError("--samples must be at least --batch-size")
    print(f"world: {world!r} ({args.preset}), built in {time.perf_counter() - t0:.1f} s")
    print(
        f"protocol: SAEs {','.join([*protocol.saes, *custom])}; "
        f"L0 {','.join(f'{v:g}' for v in protocol.l0s)}; "
        f"seeds {','.join(map(str, protocol.seeds))}; {protocol.width} latents; "
        f"{protocol.samples:,} training rows; {protocol.eval_samples:,} eval rows"
        + (
            f"; ortho penalty C={protocol.ortho_coef:g}, P={protocol.ortho_power:g}"
            if protocol.ortho_coef > 0
            else ""
        )
    )
    report = run(
        world,
        protocol,
        out,
        preset_name=preset_name,
        saes=custom,
        device=args.device,
        shard_index=shard_index,
        num_shards=num_shards,
        show_progress=not args.quiet,
    )
    print()
    print(table(report))
    print(f"\nreport: {out / 'report.json'}; plots: {', '.join(str(out / p) for p in report['plots'])}")
    print(f"total time {time.perf_counter() - t0:.0f} s")
    return 0


def _report(args: argparse.Namespace) -> int:
    from synthsae.bench import build_report, table, write_report

    out = Path(args.out or args.dirs[0])
    report = build_report(args.dirs)
    out.mkdir(parents=True, exist_ok=True)
    report["plots"] = write_report(out, report)
    print(table(report))
    print(f"\n{len(report['runs'])} runs from {len(args.dirs)} sweep(s); report: {out / 'report.json'}")
    return 0


def _world_create(args: argparse.Namespace) -> int:
    out = Path(args.out)
    _fresh_dir(out, args.overwrite)
    world, _ = resolve_world(args.world, **_orthogonalization(args))
    world.save(out, overwrite=args.overwrite)
    print(f"saved {world!r} to {out}")
    return 0


def _world_info(args: argparse.Namespace) -> int:
    world, _ = resolve_world(args.world, orthogonalize=False)
    print(repr(world))
    print(json.dumps(world.config.to_dict(), indent=1))
    return 0


def _world_stats(args: argparse.Namespace) -> int:
    world, _ = resolve_world(args.world, **_orthogonalization(args))
    print(json.dumps(world.stats(num_samples=args.samples, seed=args.seed), indent=1))
    return 0


def _sample(args: argparse.Namespace) -> int:
    from safetensors.numpy import save_file

    out = Path(args.out)
    _fresh_file(out, args.overwrite)
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: directory {out.parent} does not exist")
    world, _ = resolve_world(args.world, **_orthogonalization(args))
    t0 = time.perf_counter()
    features = world.sample_features(args.rows, seed=args.seed, start=args.start)
    tensors: dict[str, Any] = {
        "indptr": features.indptr,
        "indices": features.indices,
        "values": features.values,
        "shape": np.array(features.shape, dtype=np.int64),
    }
    if args.hidden:
        tensors["hidden"] = world.hidden_from_features(features).numpy()
    meta = {"seed": str(args.seed), "start": str(args.start), "synthsae": synthsae.__version__}
    atomic_write(out, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
    print(
        f"wrote rows {args.start:,}..{args.start + args.rows:,} ({features.nnz:,} active) to {out} in ",
        end="",
    )
    print(f"{time.perf_counter() - t0:.2f} s")
    return 0


def _slurm_split() -> tuple[int, int] | None:
    """This SLURM array task's ``(index, count)`` (from ``SLURM_ARRAY_TASK_*``), or None outside one."""
    env = os.environ
    if "SLURM_ARRAY_TASK_ID" not in env or "SLURM_ARRAY_TASK_COUNT" not in env:
        return None
    try:
        task, count = int(env["SLURM_ARRAY_TASK_ID"]), int(env["SLURM_ARRAY_TASK_COUNT"])
        first, step = int(env.get("SLURM_ARRAY_TASK_MIN", "0")), int(env.get("SLURM_ARRAY_TASK_STEP", "1"))
    except ValueError:
        raise UsageError("SLURM_ARRAY_TASK_* variables are not integers") from None
    index = (task - first) // max(step, 1)
    if not 0 <= index < count:
        raise UsageError(f"SLURM array task {task} is not in the array's range; pass --shard-index")
    return index, count


def _generate_settings(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The world and generate() keywords: flags, filled from --out's manifest when resuming."""
    from synthsae.shards import MANIFEST_FILE, dataset_world, read_manifest

    out = Path(args.out)
    old = read_manifest(out) if (out / MANIFEST_FILE).is_file() else None
    if old is None and (args.world is None or args.rows is None):
        raise UsageError(
            f"{out} holds no dataset yet (a run stopped before it wrote manifest.json leaves none): "
            "--world and --rows are required"
        )
    if args.dtype is not None and not (args.hidden or (old and old.hidden)):
        raise UsageError("--dtype sets the hidden activations' type: pass --hidden with it")
    settings = {
        "rows": args.rows if args.rows is not None or old is None else old.rows,
        "seed": args.seed if args.seed is not None else (old.seed if old else 0),
        "shard_rows": args.shard_rows or (old.shard_rows if old else 1_000_000),
        "hidden": args.hidden or bool(old and old.hidden),
        "dtype": args.dtype or (old.dtype if old and old.dtype else "float32"),
    }
    if args.world is None:
        assert old is not None
        world = dataset_world(out, old)
    else:
        world, _ = resolve_world(args.world, **_orthogonalization(args))
    return world, settings


def _generate(args: argparse.Namespace) -> int:
    from_slurm = args.shard_index is None and args.num_shards is None
    if not from_slurm and (args.shard_index is None or args.num_shards is None):
        raise UsageError("--shard-index and --num-shards go together")
    split = _slurm_split() if from_slurm else (args.shard_index, args.num_shards)
    if split is not None and split[0] >= split[1]:
        raise UsageError(f"--shard-index must be below --num-shards ({split[1]}), got {split[0]}")
    world, settings = _generate_settings(args)
    if split is not None:
        print(f"this task writes shards i with i mod {split[1]} = {split[0]}")
    kwargs = {"out": args.out, "num_threads": args.threads, "split": split, "show_progress": not args.quiet}
    with contextlib.ExitStack() as stack:
        if args.scheduler is not None or args.local_workers is not None:
            try:
                from dask.distributed import Client, LocalCluster
            except ImportError:
                raise UsageError(
                    "--scheduler/--local-workers need Dask: pip install 'synthsae[dask]'"
                ) from None
            if args.scheduler is not None:
                client = stack.enter_context(Client(args.scheduler))
            else:
                cluster = LocalCluster(
                    n_workers=args.local_workers, threads_per_worker=1, processes=True, dashboard_address=":0"
                )
                client = stack.enter_context(Client(stack.enter_context(cluster)))
            print(f"dask: {client}")
            kwargs["client"] = client
        report = synthsae.generate(world, **kwargs, **settings)
    print(report)
    if from_slurm and split is not None and not report.complete:
        print(
            f"note: as SLURM array task {split[0]} of {split[1]} this wrote only its share of the dataset; "
            "pass --shard-index 0 --num-shards 1 to write all of it from one task",
            file=sys.stderr,
        )
    return 0


def _verify(args: argparse.Namespace) -> int:
    report = synthsae.verify(args.dir, num_threads=args.threads)
    print(report)
    return 0 if report.ok else 1


def _load_any_sae(path: Path, device: str | None) -> Any:
    """A synthsae or a SAELens SAE directory, told apart by its cfg.json's fields (not its architecture,
    which may be a name both use): :func:`synthsae.saes.saelens.load_any_sae`."""
    from synthsae.saes.saelens import load_any_sae

    try:
        return load_any_sae(path, device=device)
    except (FileNotFoundError, ValueError) as e:  # each names the file at fault
        raise UsageError(f"--sae {e}") from None


def _eval_json(args: argparse.Namespace) -> Path | None:
    """The --json file, checked before any work: a new file (or --overwrite) in an existing directory."""
    if args.json is None:
        return None
    out = Path(args.json)
    if out.is_dir():
        raise UsageError(f"--json {out}: is a directory")
    _fresh_file(out, args.overwrite)
    if not out.parent.is_dir():
        raise UsageError(f"--json {out}: directory {out.parent} does not exist")
    return out


def _eval(args: argparse.Namespace) -> int:
    from synthsae._files import write_json

    out = _eval_json(args)
    sae = _load_any_sae(Path(args.sae), args.device)
    world, _ = resolve_world(args.world, **_orthogonalization(args))
    result = synthsae.evaluate(sae, world, num_samples=args.samples, seed=args.seed, device=args.device)
    for key, value in result.to_log_dict().items():
        print(f"{key:36s} {value:.6g}")
    if out is not None:
        write_json(out, result.to_dict())
        print(f"wrote {out}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    """Samples rows of a SynthSAEBench-16k-marginal Zipf world and reports throughput."""
    p = synthsae.zipfian_firing_probabilities(args.features, args.exponent, args.max_prob, args.min_prob)
    threads = args.threads or os.cpu_count()
    print(
        f"world: {args.features:,} independent features, zipfian(exponent={args.exponent}, "
        f"max={args.max_prob}, min={args.min_prob}); expected L0 = {p.astype('float64').sum():.2f}"
    )
    synthsae.sample_independent(p, min(args.rows, 10_000), seed=args.seed, num_threads=threads)  # warm-up
    t0 = time.perf_counter()
    batch = synthsae.sample_independent(p, args.rows, seed=args.seed, num_threads=threads)
    seconds = time.perf_counter() - t0
    print(f"sampled {batch.shape[0]:,} rows on {threads} thread(s): nnz = {batch.nnz:,}, ", end="")
    print(f"mean L0 = {batch.nnz / max(batch.shape[0], 1):.2f}")
    print(f"{seconds:.3f} s -> {batch.shape[0] / seconds:,.0f} rows/s")
    return 0


# ---------------------------------------------------------------------------------------------- parser


def _orthogonalization_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-orthogonalize", action="store_true", help="skip the dictionary orthogonalization")
    p.add_argument(
        "--orthogonalization",
        choices=("gram", "chunked"),
        default="gram",
        help="gram (fast, default) or chunked (SAELens's computation, for exact replication)",
    )


def _orthogonalization(args: argparse.Namespace) -> dict[str, Any]:
    """``resolve_world``'s orthogonalization options from the command line."""
    return {"orthogonalize": not args.no_orthogonalize, "orthogonalization": args.orthogonalization}


def _world_arg(p: argparse.ArgumentParser, flag: bool = True) -> None:
    text = f"preset ({preset_names()}), world directory or config JSON"
    if flag:
        p.add_argument("--world", required=True, help=text)
    else:
        p.add_argument("world", help=text)
    _orthogonalization_args(p)


def build_parser() -> argparse.ArgumentParser:
    from synthsae.bench import describe_protocols

    parser = argparse.ArgumentParser(prog="synthsae", description=synthsae.__doc__)
    build = synthsae.build_info()
    version = f"synthsae {build['version']} ({build['target']}, kernel {build['kernel']}, rng {build['rng']})"
    parser.add_argument("--version", action="version", version=version)
    commands = parser.add_subparsers(dest="command", required=True)

    bench = commands.add_parser(
        "bench",
        help="train SAEs on a world, score them against the ground truth, write report.json and plots",
        description="Builds the world, trains every SAE architecture at every L0, evaluates each, prints a "
        "table and writes report.json, the SAEs and PNG plots into --out. Defaults depend on the preset: "
        f"{describe_protocols()}.",
    )
    bench.add_argument(
        "--preset", default="tiny", help=f"preset ({preset_names()}; default tiny) or world path"
    )
    bench.add_argument("--saes", type=_sae_list, default=None, help="comma-separated architectures")
    bench.add_argument("--l0", type=_l0_list, default=None, help="comma-separated target L0s")
    bench.add_argument("--width", type=_positive_int, default=None, help="SAE latents")
    bench.add_argument("--samples", type=_positive_int, default=None, help="training rows per SAE")
    bench.add_argument("--eval-samples", type=_nonnegative_int, default=None, help="evaluation rows per SAE")
    bench.add_argument("--batch-size", type=_positive_int, default=None, help="training batch size (1024)")
    bench.add_argument("--lr", type=_positive_float, default=None, help="Adam learning rate")
    bench.add_argument(
        "--ortho-coef",
        type=_nonnegative_float,
        default=None,
        help="decoder-orthogonality penalty C (0: off; README, 'Decoder orthogonality')",
    )
    bench.add_argument(
        "--ortho-power", type=_ortho_power, default=None, help="its power P on |cos| (2, at least 1)"
    )
    bench.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="training device (cpu)")
    bench.add_argument(
        "--seeds", type=_seed_list, default=None, help="comma-separated seeds; each run once per seed (0)"
    )
    bench.add_argument(
        "--sae",
        action="append",
        default=[],
        metavar="[NAME=]MODULE:CALLABLE",
        help="your own SAE: a factory (d_in, d_sae, l0, seed) -> module (repeatable; see the README)",
    )
    bench.add_argument(
        "--saelens",
        action="append",
        default=[],
        metavar="CLASS",
        help="a SAELens training SAE with k = L0, e.g. BatchTopKTrainingSAE (repeatable; needs sae-lens)",
    )
    bench.add_argument("--shard-index", type=_nonnegative_int, default=None, help="run only runs i ≡ this")
    bench.add_argument("--num-shards", type=_positive_int, default=None, help="... mod this")
    bench.add_argument("--out", default=None, help="output directory (synthsae-bench-<preset>)")
    bench.add_argument(
        "--overwrite", action="store_true", help="start afresh in an existing --out (default: resume a sweep)"
    )
    _orthogonalization_args(bench)
    bench.add_argument("--quiet", action="store_true", help="no progress bars")
    bench.set_defaults(run=_bench)

    report = commands.add_parser(
        "report",
        help="table, report.json and plots from the finished runs of one or more bench sweeps",
        description="Merges the finished runs of bench sweep directories (refusing different worlds or "
        "training settings) and writes report.json and the plots into --out.",
    )
    report.add_argument("dirs", nargs="+", help="bench --out directories")
    report.add_argument("--out", default=None, help="where to write (default: the first directory)")
    report.set_defaults(run=_report)

    world = commands.add_parser("world", help="create, describe or measure a world")
    world_commands = world.add_subparsers(dest="world_command", required=True)
    create = world_commands.add_parser("create", help="build a world and save it (SAELens layout)")
    _world_arg(create)
    create.add_argument("--out", required=True, help="directory to write")
    create.add_argument("--overwrite", action="store_true", help="replace an existing non-empty directory")
    create.set_defaults(run=_world_create)
    info = world_commands.add_parser("info", help="print a world's config")
    _world_arg(info, flag=False)
    info.set_defaults(run=_world_info)
    stats = world_commands.add_parser("stats", help="sample a world and print its statistics")
    _world_arg(stats, flag=False)
    stats.add_argument("--samples", type=_positive_int, default=20_000, help="rows to sample (20,000)")
    stats.add_argument("--seed", type=_seed, default=0, help="seed (0)")
    stats.set_defaults(run=_world_stats)

    sample = commands.add_parser("sample", help="write N rows of a world to a safetensors file")
    _world_arg(sample)
    sample.add_argument("--rows", type=_positive_int, required=True, help="rows to write")
    sample.add_argument("--out", required=True, help="safetensors file to write")
    sample.add_argument("--seed", type=_seed, default=0, help="stream seed (0)")
    sample.add_argument("--start", type=_nonnegative_int, default=0, help="first row (0)")
    sample.add_argument("--hidden", action="store_true", help="also write dense hidden activations")
    sample.add_argument("--overwrite", action="store_true", help="replace an existing file")
    sample.set_defaults(run=_sample)

    gen = commands.add_parser(
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
    gen.add_argument("--rows", metavar="N", type=_positive_int, default=None, help="rows in the dataset")
    gen.add_argument("--out", metavar="DIR", required=True, help="dataset directory")
    gen.add_argument("--shard-rows", type=_positive_int, default=None, help="rows per shard (1,000,000)")
    gen.add_argument("--hidden", action="store_true", help="also store hidden activations [rows, D]")
    gen.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default=None, help="hidden dtype")
    gen.add_argument("--seed", type=_seed, default=None, help="stream seed (0)")
    where = gen.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, help="Dask scheduler address (tcp://host:8786)")
    where.add_argument("--local-workers", type=_positive_int, default=None, help="start a local Dask cluster")
    gen.add_argument(
        "--shard-index",
        type=_nonnegative_int,
        default=None,
        help="write only shards i with i mod --num-shards = this (default: $SLURM_ARRAY_TASK_ID)",
    )
    gen.add_argument(
        "--num-shards",
        type=_positive_int,
        default=None,
        help="number of tasks the dataset is split over (default: $SLURM_ARRAY_TASK_COUNT)",
    )
    gen.add_argument("--threads", type=_positive_int, default=None, help="threads per shard")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.set_defaults(run=_generate)

    ver = commands.add_parser("verify", help="re-hash every shard of a dataset against its manifest")
    ver.add_argument("dir", help="dataset directory")
    ver.add_argument("--threads", type=_positive_int, default=None, help="hashing threads (all cores)")
    ver.set_defaults(run=_verify)

    ev = commands.add_parser("eval", help="score a saved SAE (synthsae or SAELens directory) on a world")
    ev.add_argument("--sae", required=True, help="SAE directory (cfg.json + weights)")
    _world_arg(ev)
    ev.add_argument("--samples", type=_positive_int, default=500_000, help="evaluation rows (500,000)")
    ev.add_argument("--seed", type=_seed, default=0, help="stream seed (0)")
    ev.add_argument("--device", default=None, help="device (the SAE's)")
    ev.add_argument("--json", default=None, help="also write every EvalResult field to this JSON file")
    ev.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    ev.set_defaults(run=_eval)

    demo = commands.add_parser("demo", help="sample rows of a 16,384-feature Zipf world and print rows/s")
    demo.add_argument("--rows", type=_positive_int, default=1_000_000, help="rows to sample (1,000,000)")
    demo.add_argument("--features", type=_positive_int, default=16_384, help="number of features (16,384)")
    demo.add_argument("--exponent", type=float, default=0.5, help="Zipf exponent (0.5)")
    demo.add_argument("--max-prob", type=float, default=0.4, help="largest firing probability (0.4)")
    demo.add_argument("--min-prob", type=float, default=5e-4, help="smallest firing probability (5e-4)")
    demo.add_argument("--threads", type=_positive_int, default=None, help="threads (all cores)")
    demo.add_argument("--seed", type=_seed, default=0, help="seed (0)")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (UsageError, ValueError, TypeError, FileNotFoundError, FileExistsError) as e:
        parser.exit(2, f"synthsae {args.command}: error: {e}\n")
    except (OSError, RuntimeError) as e:  # the run itself failed: disk full, permissions, lost workers
        parser.exit(1, f"synthsae {args.command}: failed: {e}\n")


if __name__ == "__main__":
    sys.exit(main())
