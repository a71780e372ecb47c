"""Dataset generation throughput: ``synthsae.generate`` in this process and on local Dask clusters.

    python benches/generate.py [--world 16k] [--rows 2000000] [--hidden-rows 400000] [--workers 1,2]

On the SynthSAEBench-16k world (orthogonalization off, which only changes the dictionary), writes
``--rows`` rows of features (CSR) and ``--hidden-rows`` rows with float16 hidden activations into a
temporary directory, once per setting: this process on all cores (``client=None``), then a
``LocalCluster`` of k single-threaded worker processes for each k in ``--workers``. A warm-up run per
cluster loads the world into the workers first. Prints wall-clock rows/s (the whole ``generate`` call:
manifest, world check, sampling, writing, sha256) and each cluster's speed-up over the first.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import synthsae


def run(world: synthsae.World, rows: int, out: Path, hidden: bool, shard_rows: int, client=None) -> float:
    """Rows/s of one generate call (the directory is removed afterwards)."""
    dtype = "float16" if hidden else "float32"
    t0 = time.perf_counter()
    report = synthsae.generate(
        world, rows, out, seed=0, shard_rows=shard_rows, hidden=hidden, dtype=dtype, client=client,
        show_progress=False,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    assert report.complete and report.rows_written == rows
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    shutil.rmtree(out)
    print(f"    {rows:>10,} rows  {seconds:7.2f} s  {rows / seconds:>10,.0f} rows/s  {size / 2**20:8.0f} MiB")
    return rows / seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--world", choices=["tiny", "16k"], default="16k")
    parser.add_argument("--rows", type=int, default=2_000_000, help="features-only rows")
    parser.add_argument("--hidden-rows", type=int, default=400_000, help="rows with hidden (0: skip)")
    parser.add_argument("--shard-rows", type=int, default=100_000)
    parser.add_argument("--workers", default="1,2", help="comma-separated local cluster sizes")
    parser.add_argument("--dir", default=None, help="where to write (a temporary directory)")
    args = parser.parse_args()
    from dask.distributed import Client, LocalCluster

    config = synthsae.preset("tiny" if args.world == "tiny" else "synthsaebench-16k")
    config.orthogonalization = None
    world = synthsae.World(config, show_progress=False)
    cpu = platform.processor() or platform.machine()
    print(f"synthsae {synthsae.__version__}; {cpu}, {os.cpu_count()} CPUs")
    print(f"world: {world!r}; shards of {args.shard_rows:,} rows; features-only {args.rows:,} rows,")
    print(f"hidden (float16) {args.hidden_rows:,} rows")
    cases = [("features", args.rows, False)] + (
        [("hidden", args.hidden_rows, True)] if args.hidden_rows else []
    )
    results: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="synthsae-generate-") as tmp:
        root = Path(tmp)
        print("this process, all cores (client=None):")
        for name, rows, hidden in cases:
            results[("local", name)] = run(world, rows, root / "local", hidden, args.shard_rows)
        for k in (int(v) for v in args.workers.split(",")):
            with (
                # silence_logs: workers log a heartbeat error when the cluster shuts down under them.
                LocalCluster(
                    n_workers=k,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",
                    silence_logs=logging.CRITICAL,
                ) as cluster,
                Client(cluster) as client,
            ):
                warm = root / "warm-up"
                synthsae.generate(
                    world, k * 1000, warm, seed=0, shard_rows=1000, client=client, show_progress=False
                )
                shutil.rmtree(warm)
                print(f"LocalCluster, {k} worker process(es) x 1 thread:")
                for name, rows, hidden in cases:
                    results[(f"{k}w", name)] = run(
                        world, rows, root / f"dask{k}", hidden, args.shard_rows, client
                    )
    sizes = [int(v) for v in args.workers.split(",")]
    for name, _, _ in cases:
        base = results[(f"{sizes[0]}w", name)]
        ratios = ", ".join(f"{k} workers {results[(f'{k}w', name)] / base:.2f}x" for k in sizes[1:])
        print(f"{name}: speed-up over {sizes[0]} worker(s): {ratios or '-'}")


if __name__ == "__main__":
    main()
