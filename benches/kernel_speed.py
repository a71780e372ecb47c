"""The sampler's vector kernels side by side: µs per row of world features, 1 thread, each kernel
this CPU runs (``synthsae.set_kernel``), with the ratio to AVX2 and a check that all give the same bits.

    python benches/kernel_speed.py [--world synthsaebench-16k] [--rows 20000] [--repeats 5]

The world is built without orthogonalization: feature sampling never reads the dictionary.
"""

from __future__ import annotations

import argparse
import hashlib
import time

import synthsae


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--world", default="synthsaebench-16k")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    config = synthsae.preset(args.world)
    config.orthogonalization = None
    world = synthsae.World(config, show_progress=False)
    info = synthsae.build_info()
    print(f"synthsae {info['version']} {info['target']}; kernels here: {', '.join(info['kernels'])}")
    times: dict[str, float] = {}
    digests = set()
    for name in info["kernels"]:
        synthsae.set_kernel(name)
        world.sample_features(1000, seed=1, num_threads=1)  # warm-up
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            batch = world.sample_features(args.rows, seed=0, num_threads=1)
            best = min(best, time.perf_counter() - t0)
        digests.add(hashlib.sha256(batch.indices.tobytes() + batch.values.tobytes()).hexdigest())
        times[name] = best / args.rows * 1e6
    synthsae.set_kernel(None)
    for name, us in times.items():
        ratio = f", {us / times['avx2']:.2f}x avx2" if "avx2" in times else ""
        print(f"{name:12s} {us:6.2f} us/row (best of {args.repeats}, {args.rows:,} rows){ratio}")
    print("same bits on every kernel:", len(digests) == 1)
    if len(digests) != 1:
        raise SystemExit("kernels disagree")


if __name__ == "__main__":
    main()
