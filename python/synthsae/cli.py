"""``synthsae`` command line."""

from __future__ import annotations

import argparse
import os
import sys
import time

import synthsae


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synthsae", description=synthsae.__doc__)
    parser.add_argument("--version", action="version", version=f"synthsae {synthsae.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
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
    except (ValueError, TypeError) as e:
        parser.exit(2, f"synthsae {args.command}: error: {e}\n")


if __name__ == "__main__":
    sys.exit(main())
