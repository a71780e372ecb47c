"""synthsae vs SAELens ActivationGenerator: independent features, same p, std 0, same threads.

    python benches/compare_saelens.py [--rows 1000000] [--threads 2] [--features 16384]

Both run in this process, one after the other, and the script prints rows/s of each and the ratio.
SAELens is timed in both of its output modes (dense tensor, sparse COO) and the ratio is taken
against the faster one. Without sae-lens installed, synthsae is timed alone and SAELens skipped.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

import synthsae


def rows_per_second(fn, rows: int, repeats: int) -> float:
    """Median rows/s of ``repeats`` timed calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return rows / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="synthsae rows per timed call")
    parser.add_argument("--saelens-batch", type=int, default=8192, help="SAELens batch size")
    parser.add_argument("--saelens-batches", type=int, default=5, help="timed SAELens batches")
    parser.add_argument("--features", type=int, default=16384)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    p = synthsae.zipfian_firing_probabilities(args.features, 0.5, 0.4, 5e-4)
    print(
        f"machine: {platform.processor() or platform.machine()}, {args.threads} threads; "
        f"synthsae {synthsae.__version__}, torch {torch.__version__}"
    )
    print(f"workload: N = {args.features:,}, zipfian(0.5, 0.4, 5e-4), L0 = {p.sum():.2f}, std 0")

    ours = rows_per_second(
        lambda: synthsae.sample_independent(p, args.rows, seed=0, num_threads=args.threads),
        args.rows,
        args.repeats,
    )
    print(f"synthsae sample_independent: {ours:>14,.0f} rows/s")

    try:
        from sae_lens.synthetic import ActivationGenerator
    except ImportError:
        print("SKIP SAELens: sae-lens is not installed here (pip install sae-lens)")
        return
    import sae_lens

    best = 0.0
    for sparse in (False, True):
        gen = ActivationGenerator(args.features, torch.from_numpy(p), use_sparse_tensors=sparse)
        rate = rows_per_second(
            lambda gen=gen: gen.sample(args.saelens_batch),
            args.saelens_batch,
            args.saelens_batches,
        )
        mode = "sparse COO" if sparse else "dense"
        print(f"SAELens {sae_lens.__version__} ActivationGenerator ({mode:>10}): {rate:>10,.0f} rows/s")
        best = max(best, rate)
    print(f"ratio synthsae / SAELens (faster mode): {ours / best:.1f}x")


if __name__ == "__main__":
    main()
