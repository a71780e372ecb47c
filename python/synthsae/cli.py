"""``synthsae`` command line: ``bench`` (the main job), ``world``, ``sample``, ``eval``, ``demo``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import synthsae
from synthsae._files import atomic_write


class UsageError(Exception):
    """A problem with the command line (exit code 2)."""


def _positive_int(text: str) -> int:
    value = int(text.replace("_", ""))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _nonnegative_int(text: str) -> int:
    value = int(text.replace("_", ""))
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _l0_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values or any(not v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"L0 values must be positive, got {text!r}")
    return values


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
    if path.exists() and not path.is_dir():
        raise UsageError(f"{path} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise UsageError(f"{path} exists and is not empty; pass --overwrite to replace its contents")


def _fresh_file(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise UsageError(f"{path} exists; pass --overwrite to replace it")


# ---------------------------------------------------------------------------------------------- commands


def _bench(args: argparse.Namespace) -> int:
    from synthsae.bench import default_protocol, load_world, run_bench, table

    out = Path(args.out or f"synthsae-bench-{Path(args.preset).name}")
    _fresh_dir(out, args.overwrite)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA device is available")
    t0 = time.perf_counter()
    world, preset_name = load_world(args.preset, orthogonalize=not args.no_orthogonalize, device=args.device)
    protocol = default_protocol(preset_name, world.num_features)
    for name in ("saes", "width", "samples", "eval_samples", "batch_size", "lr"):
        if getattr(args, name) is not None:
            setattr(protocol, name, getattr(args, name))
    if args.l0 is not None:
        protocol.l0s = args.l0
    if protocol.width < 1 or protocol.samples < protocol.batch_size:
        raise UsageError("--samples must be at least --batch-size")
    print(f"world: {world!r} ({args.preset}), built in {time.perf_counter() - t0:.1f} s")
    print(
        f"protocol: SAEs {','.join(protocol.saes)}; L0 {','.join(f'{v:g}' for v in protocol.l0s)}; "
        f"{protocol.width} latents; {protocol.samples:,} training rows; {protocol.eval_samples:,} eval rows"
    )
    report = run_bench(
        world,
        protocol,
        out,
        preset_name=preset_name,
        device=args.device,
        seed=args.seed,
        show_progress=not args.quiet,
    )
    print()
    print(table(report))
    print(f"\nreport: {out / 'report.json'}; plots: {', '.join(str(out / p) for p in report['plots'])}")
    print(f"total time {time.perf_counter() - t0:.0f} s")
    return 0


def _world_create(args: argparse.Namespace) -> int:
    from synthsae.bench import load_world

    out = Path(args.out)
    _fresh_dir(out, args.overwrite)
    world, _ = load_world(args.world, orthogonalize=not args.no_orthogonalize)
    world.save(out, overwrite=args.overwrite)
    print(f"saved {world!r} to {out}")
    return 0


def _world_info(args: argparse.Namespace) -> int:
    from synthsae.bench import load_world

    world, _ = load_world(args.world, orthogonalize=False)
    print(repr(world))
    print(json.dumps(world.config.to_dict(), indent=1))
    return 0


def _world_stats(args: argparse.Namespace) -> int:
    from synthsae.bench import load_world

    world, _ = load_world(args.world, orthogonalize=not args.no_orthogonalize)
    print(json.dumps(world.stats(num_samples=args.samples, seed=args.seed), indent=1))
    return 0


def _sample(args: argparse.Namespace) -> int:
    from safetensors.numpy import save_file

    from synthsae.bench import load_world

    out = Path(args.out)
    _fresh_file(out, args.overwrite)
    world, _ = load_world(args.world, orthogonalize=not args.no_orthogonalize)
    t0 = time.perf_counter()
    features = world.sample_features(args.rows, seed=args.seed, start=args.start)
    tensors = {
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


def _load_any_sae(path: Path, device: str | None) -> Any:
    """A synthsae SAE directory (cfg.json with a synthsae architecture) or a SAELens SAE directory."""
    from synthsae import saes

    cfg_file = path / "cfg.json"
    if not cfg_file.is_file():
        raise UsageError(f"--sae {path}: no cfg.json there")
    if json.loads(cfg_file.read_text()).get("architecture") in saes.ARCHITECTURES:
        return saes.load_sae(path, device=device)
    try:
        from sae_lens import SAE
    except ImportError:
        raise UsageError(
            f"--sae {path}: not a synthsae SAE, and sae-lens is not installed to read it"
        ) from None
    return SAE.load_from_disk(str(path), device=device or "cpu")


def _eval(args: argparse.Namespace) -> int:
    from synthsae._files import write_json
    from synthsae.bench import load_world

    world, _ = load_world(args.world, orthogonalize=not args.no_orthogonalize)
    sae = _load_any_sae(Path(args.sae), args.device)
    result = synthsae.evaluate(sae, world, num_samples=args.samples, seed=args.seed, device=args.device)
    for key, value in result.to_log_dict().items():
        print(f"{key:36s} {value:.6g}")
    if args.json:
        out = Path(args.json)
        _fresh_file(out, args.overwrite)
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


def _world_arg(p: argparse.ArgumentParser, flag: bool = True) -> None:
    names = ["--world"] if flag else ["world"]
    kwargs = {"required": True} if flag else {}
    p.add_argument(*names, **kwargs, help="preset (tiny, synthsaebench-16k), world directory or config JSON")
    p.add_argument("--no-orthogonalize", action="store_true", help="skip the dictionary orthogonalization")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synthsae", description=synthsae.__doc__)
    parser.add_argument("--version", action="version", version=f"synthsae {synthsae.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    bench = commands.add_parser(
        "bench",
        help="train SAEs on a world, score them against the ground truth, write report.json and plots",
        description="Builds the world, trains every SAE architecture at every L0, evaluates each, prints a "
        "table and writes report.json, the SAEs and PNG plots into --out. Defaults depend on the preset: "
        "tiny = 256 latents, L0 6,8,10, 1M rows (minutes on a laptop CPU); synthsaebench-16k = the paper "
        "(4096 latents, L0 15..45, 200M rows; use --device cuda).",
    )
    bench.add_argument("--preset", default="tiny", help="tiny (default), synthsaebench-16k, or a world path")
    bench.add_argument("--saes", type=_sae_list, default=None, help="comma-separated architectures")
    bench.add_argument("--l0", type=_l0_list, default=None, help="comma-separated target L0s")
    bench.add_argument("--width", type=_positive_int, default=None, help="SAE latents")
    bench.add_argument("--samples", type=_positive_int, default=None, help="training rows per SAE")
    bench.add_argument("--eval-samples", type=_nonnegative_int, default=None, help="evaluation rows per SAE")
    bench.add_argument("--batch-size", type=_positive_int, default=None, help="training batch size (1024)")
    bench.add_argument("--lr", type=float, default=None, help="Adam learning rate")
    bench.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="training device (cpu)")
    bench.add_argument("--seed", type=_nonnegative_int, default=0, help="seed (0)")
    bench.add_argument("--out", default=None, help="output directory (synthsae-bench-<preset>)")
    bench.add_argument("--overwrite", action="store_true", help="replace the contents of an existing --out")
    bench.add_argument(
        "--no-orthogonalize", action="store_true", help="skip the dictionary orthogonalization"
    )
    bench.add_argument("--quiet", action="store_true", help="no progress bars")
    bench.set_defaults(run=_bench)

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
    stats.add_argument("--seed", type=_nonnegative_int, default=0, help="seed (0)")
    stats.set_defaults(run=_world_stats)

    sample = commands.add_parser("sample", help="write N rows of a world to a safetensors file")
    _world_arg(sample)
    sample.add_argument("--rows", type=_positive_int, required=True, help="rows to write")
    sample.add_argument("--out", required=True, help="safetensors file to write")
    sample.add_argument("--seed", type=_nonnegative_int, default=0, help="stream seed (0)")
    sample.add_argument("--start", type=_nonnegative_int, default=0, help="first row (0)")
    sample.add_argument("--hidden", action="store_true", help="also write dense hidden activations")
    sample.add_argument("--overwrite", action="store_true", help="replace an existing file")
    sample.set_defaults(run=_sample)

    ev = commands.add_parser("eval", help="score a saved SAE (synthsae or SAELens directory) on a world")
    ev.add_argument("--sae", required=True, help="SAE directory (cfg.json + weights)")
    _world_arg(ev)
    ev.add_argument("--samples", type=_positive_int, default=500_000, help="evaluation rows (500,000)")
    ev.add_argument("--seed", type=_nonnegative_int, default=0, help="stream seed (0)")
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
    demo.add_argument("--seed", type=int, default=0, help="seed (0)")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (UsageError, ValueError, TypeError, FileNotFoundError, FileExistsError) as e:
        parser.exit(2, f"synthsae {args.command}: error: {e}\n")


if __name__ == "__main__":
    sys.exit(main())
