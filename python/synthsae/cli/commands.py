"""What each ``synthsae`` command does, given its parsed arguments; each returns the exit code."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from synthsae._core import __version__
from synthsae._files import atomic_write, check_fresh_dir
from synthsae.datasets.generation import generate
from synthsae.datasets.shards import verify
from synthsae.errors import UsageError
from synthsae.evaluation.scoring import evaluate
from synthsae.presets import resolve_world
from synthsae.world.firing import zipfian_firing_probabilities
from synthsae.world.sampling import sample_independent


def _fresh_dir(path: Path, overwrite: bool) -> None:
    check_fresh_dir(path, overwrite=overwrite, hint="pass --overwrite to replace its contents")


def _fresh_file(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise UsageError(f"{path} exists; pass --overwrite to replace it")


def _bench_dir(out: Path, overwrite: bool) -> None:
    """``out`` may be new, empty, or an earlier sweep (resumed); ``--overwrite`` deletes an earlier
    sweep's files first (:func:`synthsae.bench.records.clear_sweep`) and refuses any other non-empty
    directory."""
    from synthsae.bench.records import SWEEP_FILE, clear_sweep

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


def run_bench(args: argparse.Namespace) -> int:
    from synthsae.bench.protocol import default_protocol
    from synthsae.bench.report import table
    from synthsae.bench.sweep import run
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
    with contextlib.ExitStack() as stack:
        report = run(
            world,
            protocol,
            out,
            preset_name=preset_name,
            saes=custom,
            device=args.device,
            shard_index=shard_index,
            num_shards=num_shards,
            group_size=args.group_size,
            client=_dask_client(args, stack),
            ceiling=not args.no_ceiling,
            show_progress=not args.quiet,
        )
    print()
    print(table(report))
    print(f"\nreport: {out / 'report.json'}; plots: {', '.join(str(out / p) for p in report['plots'])}")
    print(f"total time {time.perf_counter() - t0:.0f} s")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from synthsae.bench.report import build_report, table, write_report

    out = Path(args.out or args.dirs[0])
    report = build_report(args.dirs)
    out.mkdir(parents=True, exist_ok=True)
    report["plots"] = write_report(out, report)
    print(table(report))
    print(f"\n{len(report['runs'])} runs from {len(args.dirs)} sweep(s); report: {out / 'report.json'}")
    return 0


def run_leaderboard(args: argparse.Namespace) -> int:
    from synthsae.bench.leaderboard import PAGE, write_leaderboard

    _fresh_file(Path(args.out) / PAGE, args.overwrite)
    page = write_leaderboard(args.inputs, args.out, overwrite=args.overwrite)
    print(f"leaderboard of {len(args.inputs)} input(s): {page}")
    return 0


def run_world_create(args: argparse.Namespace) -> int:
    out = Path(args.out)
    _fresh_dir(out, args.overwrite)
    world, _ = resolve_world(args.world, **_orthogonalization(args))
    world.save(out, overwrite=args.overwrite)
    print(f"saved {world!r} to {out}")
    return 0


def run_world_info(args: argparse.Namespace) -> int:
    world, _ = resolve_world(args.world, orthogonalize=False)
    print(repr(world))
    print(json.dumps(world.config.to_dict(), indent=1))
    return 0


def run_world_stats(args: argparse.Namespace) -> int:
    from synthsae.bench.protocol import default_protocol

    world, preset_name = resolve_world(args.world, **_orthogonalization(args))
    protocol = default_protocol(preset_name, world.num_features)
    width = min(protocol.width, world.num_features)
    stats = world.stats(num_samples=args.samples, seed=args.seed, first_features=[width])
    if args.json:
        print(json.dumps(stats, indent=1))
        return 0
    for line in _stats_lines(stats, width, protocol.l0s):
        print(line)
    return 0


def _stats_lines(stats: dict[str, Any], width: int, l0s: list[float]) -> list[str]:
    """``world stats``'s report: each of ``World.stats``'s quantities with what it measures."""
    rows = stats["num_samples"]
    targets = ", ".join(f"{v:g}" for v in l0s)
    lines = [
        f"from {rows:,} sampled rows:",
        f"  true L0 (active features per row, mean over rows): {stats['true_l0']:.2f} "
        f"± {stats['true_l0_stderr']:.2f} (standard error)",
        f"  L0 of the first {width:,} features (by index, the highest base firing probabilities; "
        f"active features per row among them): {stats['true_l0_first'][str(width)]:.2f}",
        f"  bench's target L0s compare with this, not with the true L0: its default protocol here trains "
        f"{width:,}-latent SAEs at L0 {targets},",
        f"  and {width:,} latents can represent about the first {width:,} features (the paper's target "
        "L0 25 is likewise the L0 of the 16k world's first 4,096 features; its true L0 is 34.4)",
        "firing by hierarchy depth (free: features in no tree; depth 0: tree roots; depth d: d levels "
        "below a root):",
        f"  {'group':8s} {'features':>8s} {'measured rate':>14s} {'firing probability':>19s}",
    ]
    conditional = False
    for group, rate in stats["firing_rates"].items():
        child = group.startswith("depth_") and group != "depth_0"
        conditional |= child
        lines.append(
            f"  {group.replace('_', ' '):8s} {rate['features']:8,d} {rate['mean_rate']:14.4g} "
            f"{rate['mean_probability']:18.4g}{'*' if child else ' '}"
        )
    lines.append(
        "  measured rate: mean over the group's features of the fraction of rows where the feature "
        "fires; firing probability: the group's mean firing-probability parameter"
    )
    if conditional:
        lines.append(
            "  * conditional: the probability that a feature fires given its parent fires (compensated "
            "for the parent's rate and for mutually exclusive siblings), so above its measured rate"
        )
    if "rms_correlation" in stats:
        lines.append(
            "RMS correlation between features' firing (off-diagonal RMS of the copula's correlation "
            f"matrix): {stats['rms_correlation']:.4f}"
        )
    lines.append(
        "mean max |cos| between feature directions (mean over features of the largest |cosine| with "
        f"another feature): {stats['mean_max_abs_cos']:.4f}"
    )
    return lines


def run_sample(args: argparse.Namespace) -> int:
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
    meta = {"seed": str(args.seed), "start": str(args.start), "synthsae": __version__}
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
    from synthsae.datasets.shards import MANIFEST_FILE, dataset_world, read_manifest

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


def _dask_client(args: argparse.Namespace, stack: contextlib.ExitStack[Any]) -> Any:
    """The Dask client ``--scheduler`` / ``--local-workers`` ask for (closed with ``stack``), or None."""
    if args.scheduler is None and args.local_workers is None:
        return None
    if args.scheduler is not None and args.local_workers is not None:
        raise UsageError("pass --scheduler or --local-workers, not both")
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise UsageError("--scheduler/--local-workers need Dask: pip install 'synthsae[dask]'") from None
    if args.scheduler is not None:
        client = stack.enter_context(Client(args.scheduler))
    else:
        cluster = LocalCluster(
            n_workers=args.local_workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        client = stack.enter_context(Client(stack.enter_context(cluster)))
    print(f"dask: {client}")
    return client


def run_generate(args: argparse.Namespace) -> int:
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
        kwargs["client"] = _dask_client(args, stack)
        report = generate(world, **kwargs, **settings)
    print(report)
    if from_slurm and split is not None and not report.complete:
        print(
            f"note: as SLURM array task {split[0]} of {split[1]} this wrote only its share of the dataset; "
            "pass --shard-index 0 --num-shards 1 to write all of it from one task",
            file=sys.stderr,
        )
    return 0


def run_verify(args: argparse.Namespace) -> int:
    report = verify(args.dir, num_threads=args.threads)
    print(report)
    return 0 if report.ok else 1


def _load_any_sae(path: Path, device: str | None) -> Any:
    """A synthsae or a SAELens SAE directory, told apart by its cfg.json's fields (not its architecture,
    which may be a name both use): :func:`synthsae.saes.saelens.load_any_sae`."""
    from synthsae.saes.saelens import load_any_sae

    try:
        return load_any_sae(path, device=device)
    except FileNotFoundError as e:  # names the directory at fault
        hint = ""
        if path.is_dir() and not (path / "cfg.json").exists():
            hint = "; a bench sweep's SAEs are in <sweep>/runs/<run>/sae (or pass the run directory)"
        raise UsageError(f"--sae {e}{hint}") from None
    except ValueError as e:  # names the file at fault
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


#: ``eval``'s stream seed and rows for an SAE that is not part of a bench sweep.
EVAL_SEED, EVAL_SAMPLES = 0, 500_000


class _BenchRun:
    """What ``eval`` reads of a bench run its ``--sae`` belongs to: the SAE directory, the run's record
    and the sweep's directory and header (None when the run directory is not inside a sweep)."""

    def __init__(
        self, sae_dir: Path, record: dict[str, Any], sweep: Path | None, header: dict[str, Any] | None
    ) -> None:
        self.sae_dir, self.record, self.sweep, self.header = sae_dir, record, sweep, header


def _bench_run(path: Path) -> _BenchRun | None:
    """The bench run ``--sae`` names (``<sweep>/runs/<run>/sae`` or ``<sweep>/runs/<run>``), or None for
    an SAE directory outside a sweep. A run directory without a saved SAE, or a sweep directory, is a
    UsageError saying what to pass instead."""
    from synthsae.bench.records import RUN_FILE, SWEEP_FILE, read_header, read_run
    from synthsae.training.loop import CHECKPOINT_FILE

    if (path / SWEEP_FILE).is_file():
        names = sorted(p.parent.name for p in (path / "runs").glob(f"*/{RUN_FILE}"))
        example = f" (e.g. {path / 'runs' / names[0] / 'sae'})" if names else ""
        raise UsageError(f"--sae {path} is a bench sweep, not an SAE: pass one of its runs{example}")
    if (path / CHECKPOINT_FILE).is_file() and not (path / RUN_FILE).is_file():
        raise UsageError(
            f"--sae {path} is a bench run that has not finished (a checkpoint, no {RUN_FILE} yet): "
            "rerun its bench sweep to finish it, then pass its sae/ directory"
        )
    if (path / RUN_FILE).is_file():
        run_dir = path
    elif path.name == "sae" and (path.parent / RUN_FILE).is_file():
        run_dir = path.parent
    else:
        return None
    try:
        record = read_run(run_dir / RUN_FILE)
    except ValueError as e:
        raise UsageError(f"--sae {e}") from None
    if "failed" in record:
        raise UsageError(
            f"--sae {path}: bench run {record['name']} failed ({record['failed']}); no SAE was saved"
        )
    sae_dir = run_dir / "sae"
    if not (sae_dir / "cfg.json").is_file():
        raise UsageError(
            f"--sae {path}: bench run {record['name']} saved no cfg.json in {sae_dir} (an SAE of your "
            "own is saved as its state_dict: load it with your factory and synthsae.evaluate)"
        )
    sweep = run_dir.parent.parent if run_dir.parent.name == "runs" else None
    if sweep is None or not (sweep / SWEEP_FILE).is_file():
        return _BenchRun(sae_dir, record, None, None)
    try:
        header = read_header(sweep / SWEEP_FILE)
    except ValueError as e:
        raise UsageError(f"--sae {path}: its sweep's {e}") from None
    return _BenchRun(sae_dir, record, sweep, header)


def _eval_stream(args: argparse.Namespace, bench: _BenchRun | None) -> tuple[int, int, str]:
    """The stream seed and rows ``eval`` scores on, and one line saying which and why: explicit flags,
    else for a bench SAE what bench scored it on (its run's seed + 1, the sweep's evaluation rows),
    else the defaults."""
    if bench is None:
        seed_why, rows_why = "default", "default"
        seed, rows = EVAL_SEED, EVAL_SAMPLES
    else:
        name = bench.record["name"]
        seed = bench.record["seed"] + 1
        seed_why = f"bench run {name}'s seed {bench.record['seed']} + 1, the stream bench scored it on"
        if bench.header is not None and isinstance(bench.header["protocol"].get("eval_samples"), int):
            rows, rows_why = bench.header["protocol"]["eval_samples"], "the sweep's evaluation rows"
        else:
            rows, rows_why = int(bench.record["result"]["num_samples"]), f"the rows bench scored {name} on"
    if args.seed is not None:
        seed, seed_why = args.seed, "--seed"
    if args.samples is not None:
        rows, rows_why = args.samples, "--samples"
    line = f"evaluating on stream seed {seed} ({seed_why}) and {rows:,} rows ({rows_why})"
    if bench is not None and args.seed is None and args.samples is None:
        line += "; pass --seed/--samples to choose others"
    return seed, rows, line


def _eval_world(args: argparse.Namespace, bench: _BenchRun | None) -> tuple[Any, str | None]:
    """The world ``eval`` scores on, and a line saying where it came from when that is not --world
    itself (the sweep's world), or a note when --world is not the world of the SAE's sweep."""
    from synthsae.bench.records import SWEEP_FILE
    from synthsae.world.config import WorldConfig
    from synthsae.world.model import World

    header = None if bench is None else bench.header
    if args.world is not None:
        world, _ = resolve_world(args.world, **_orthogonalization(args))
        if header is not None and world.fingerprint() != header["world_fingerprint"]:
            return world, (
                f"note: --world {args.world} is not the world of {bench and bench.record['name']}'s sweep, "
                "so the scores will differ from the sweep's table"
            )
        return world, None
    if bench is None or header is None:
        where = (
            "" if bench is None else f" ({bench.record['name']}'s sweep has no {SWEEP_FILE} to read it from)"
        )
        raise UsageError(f"--world is required{where}")
    assert bench.sweep is not None
    try:
        config = WorldConfig.from_dict(header["world_config"])
    except (TypeError, ValueError) as e:
        raise UsageError(f"{bench.sweep / SWEEP_FILE}: its world config: {e}; pass --world") from None
    if args.no_orthogonalize:
        config.orthogonalization = None
    world = World(config, orthogonalization=args.orthogonalization)
    if world.fingerprint() != header["world_fingerprint"]:
        raise UsageError(
            f"the world rebuilt from {bench.sweep / SWEEP_FILE}'s config is not the sweep's world "
            "(their fingerprints differ; it was built on another device, loaded from a directory or "
            "orthogonalized another way): pass --world with the world the sweep used"
        )
    label = header.get("preset") or "its config"
    return (
        world,
        f"world: the sweep's ({label}, rebuilt from {bench.sweep / SWEEP_FILE}; pass --world for another)",
    )


def run_eval(args: argparse.Namespace) -> int:
    from synthsae._files import write_json

    out = _eval_json(args)
    bench = _bench_run(Path(args.sae))
    if bench is None and args.world is None:
        raise UsageError("--world is required (it may be left out for an SAE of a bench sweep)")
    sae_path = Path(args.sae) if bench is None else bench.sae_dir
    if bench is None and not (sae_path / "cfg.json").exists() and (sae_path / "sae" / "cfg.json").is_file():
        sae_path = sae_path / "sae"  # a run directory outside a sweep, without its run.json
    if sae_path != Path(args.sae):
        print(f"--sae {args.sae} is a bench run's directory: loading its SAE from {sae_path}")
    sae = _load_any_sae(sae_path, args.device)
    seed, rows, stream = _eval_stream(args, bench)
    world, where = _eval_world(args, bench)
    if where is not None:
        print(where)
    print(stream)
    result = evaluate(sae, world, num_samples=rows, seed=seed, device=args.device)
    for key, value in result.to_log_dict().items():
        print(f"{key:36s} {value:.6g}")
    if out is not None:
        write_json(out, result.to_dict())
        print(f"wrote {out}")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """Samples rows of a SynthSAEBench-16k-marginal Zipf world and reports throughput."""
    p = zipfian_firing_probabilities(args.features, args.exponent, args.max_prob, args.min_prob)
    threads = args.threads or os.cpu_count()
    print(
        f"world: {args.features:,} independent features, zipfian(exponent={args.exponent}, "
        f"max={args.max_prob}, min={args.min_prob}); expected L0 = {p.astype('float64').sum():.2f}"
    )
    sample_independent(p, min(args.rows, 10_000), seed=args.seed, num_threads=threads)  # warm-up
    t0 = time.perf_counter()
    batch = sample_independent(p, args.rows, seed=args.seed, num_threads=threads)
    seconds = time.perf_counter() - t0
    print(f"sampled {batch.shape[0]:,} rows on {threads} thread(s): nnz = {batch.nnz:,}, ", end="")
    print(f"mean L0 = {batch.nnz / max(batch.shape[0], 1):.2f}")
    print(f"{seconds:.3f} s -> {batch.shape[0] / seconds:,.0f} rows/s")
    return 0


def _orthogonalization(args: argparse.Namespace) -> dict[str, Any]:
    """``resolve_world``'s orthogonalization options from the command line."""
    return {"orthogonalize": not args.no_orthogonalize, "orthogonalization": args.orthogonalization}
