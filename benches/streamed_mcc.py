"""Exact MCC without the |cos| matrix: the streamed matching at scale (issue 26).

    python benches/streamed_mcc.py [--world synthsaebench-262k] [--latents 65536]
                                   [--check-latents 8192] [--check-features 65536]

Builds the world's features (orthogonalization off) and a planted decoder of ``--latents`` rows
(seed 0): 40 % noisy copies of distinct features (|cos| ≈ 0.9), 20 % second, noisier copies of some
of those (split features), 20 % mixtures of two features, 20 % random directions; saves both as
``.npy`` and, in a fresh process that only loads them, times ``synthsae.mcc(streaming=True)`` and
reports its peak RSS (``VmHWM``) beside the RSS of the inputs alone. First, on the first
``--check-latents`` × ``--check-features`` rows (where the stored matrix fits), the streamed and the
stored MCC and matchings are compared, each timed.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def planted_decoder(features: np.ndarray, latents: int, seed: int = 0) -> np.ndarray:
    """float32 ``[latents, D]`` as described in the module docstring."""
    rng = np.random.default_rng(seed)
    n, dim = features.shape
    out = np.empty((latents, dim), dtype=np.float32)
    k1, k2, k3 = int(0.4 * latents), int(0.2 * latents), int(0.2 * latents)
    chosen = rng.choice(n, size=k1, replace=False)

    def noise(rows: int, scale: float) -> np.ndarray:
        return (rng.standard_normal((rows, dim), dtype=np.float32) * np.float32(scale / dim**0.5)).astype(
            np.float32
        )

    out[:k1] = features[chosen] + noise(k1, 0.5)
    again = rng.choice(chosen, size=k2, replace=False)
    out[k1 : k1 + k2] = features[again] + noise(k2, 0.8)
    a, b = rng.integers(0, n, size=k3), rng.integers(0, n, size=k3)
    out[k1 + k2 : k1 + k2 + k3] = (features[a] + features[b]) / np.float32(2**0.5) + noise(k3, 0.3)
    out[k1 + k2 + k3 :] = noise(latents - k1 - k2 - k3, 1.0)
    return out[rng.permutation(latents)]


def _peak_gib() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss, not inherited from the parent across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20  # kB -> GiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def child(decoder_path: str, features_path: str) -> None:
    import synthsae

    decoder, features = np.load(decoder_path), np.load(features_path)
    inputs = _peak_gib()
    t0 = time.perf_counter()
    value, matching = synthsae.mcc(
        decoder, features, streaming=True, return_matching=True, show_progress=True
    )
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "mcc": value,
                "seconds": seconds,
                "inputs_gib": inputs,
                "peak_rss_gib": _peak_gib(),
                "matched_above_0.5": float((matching.abs_cos >= 0.5).mean()),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--world", default="synthsaebench-262k")
    parser.add_argument("--latents", type=int, default=65536)
    parser.add_argument("--check-latents", type=int, default=8192)
    parser.add_argument("--check-features", type=int, default=65536)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    import torch

    import synthsae

    flags = sorted({f for f in Path("/proc/cpuinfo").read_text().split() if f in ("avx2", "avx512f")})
    print(
        f"machine: {platform.machine()}, CPU flags {','.join(flags)}, {torch.get_num_threads()} torch threads"
    )
    config = synthsae.preset(args.world)
    config.orthogonalization = None
    t0 = time.perf_counter()
    features = synthsae.World(config, show_progress=False).feature_vectors.numpy()
    print(
        f"{args.world}: {features.shape[0]:,} features x {features.shape[1]} dims, built in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    decoder = planted_decoder(features, args.latents)

    d, g = decoder[: args.check_latents], features[: args.check_features]
    t0 = time.perf_counter()
    stored, m1 = synthsae.mcc(d, g, streaming=False, return_matching=True)
    t1 = time.perf_counter()
    streamed, m2 = synthsae.mcc(d, g, streaming=True, return_matching=True)
    t2 = time.perf_counter()
    same = all(np.array_equal(a, b) for a, b in zip(m1, m2, strict=True))
    print(
        f"check {len(d):,} x {len(g):,}: stored MCC {stored:.6f} in {t1 - t0:.1f} s, streamed {streamed:.6f} "
        f"in {t2 - t1:.1f} s; identical value {stored == streamed}, identical matching {same}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "decoder.npy", decoder)
        np.save(Path(tmp) / "features.npy", features)
        del features, decoder, d, g
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(Path(tmp) / "decoder.npy"),
                str(Path(tmp) / "features.npy"),
            ],
            stdout=subprocess.PIPE,
            text=True,
            check=True,
        )
    r = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"streamed MCC, {args.latents:,} latents x the {args.world} features: {r['mcc']:.6f} "
        f"({r['matched_above_0.5'] * 100:.1f} % of pairs at |cos| >= 0.5) in {r['seconds']:.0f} s; "
        f"peak RSS {r['peak_rss_gib']:.2f} GiB (inputs alone {r['inputs_gib']:.2f} GiB)"
    )


if __name__ == "__main__":
    main()
