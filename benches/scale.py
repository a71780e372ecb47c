"""Sampling cost against the number of features N, synthsae beside SAELens (issue 26).

    python benches/scale.py [--sizes 16384,65536,262144,1048576] [--saelens-python PATH]
                            [--saelens-max 262144] [--rows 16384] [--json scale.json] [--plot scale.png]
                            [--no-copula]

For each N, the SynthSAEBench-16k world scaled to N (``synthsae.preset``'s scale rules; at 16k the
16k preset itself; orthogonalization off everywhere, it only changes the dictionary) is built in a
fresh process, once by synthsae and once by SAELens (``SyntheticModel`` from the same config, with the
``--saelens-python`` interpreter, for N up to ``--saelens-max``: above it SAELens's dense ``[1024, N]``
float32 batches, several at once, no longer fit this machine's memory). Each process reports its
world build time, its peak RSS, and sampler rows/s: feature activations and hidden activations on the
CPU, synthsae over ``--rows`` rows (median of 3 after a warm-up), SAELens at its training batch 1,024
(median of 3 batches after a warm-up). Prints per N the true L0, both rates, the ratio, and the
growth of each one's cost per row from the smallest N; writes the numbers as JSON and a log-log PNG.
``--no-copula`` also times synthsae on each world without its correlation (the copula's exact rates
need every top-level feature's ``F_i · ε``, O(N · rank) per row; this shows what the rest costs).
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
from typing import Any

from bench_timing import rows_per_second

SAELENS_BATCH = 1024
#: Timed calls per rate (after a warm-up call).
REPEATS = 3


def _config(n: int) -> dict[str, Any]:
    import synthsae

    config = synthsae.preset("synthsaebench-16k" if n == 16384 else _name(n))
    config.orthogonalization = None
    return config.to_dict()


def _name(n: int) -> str:
    return {65536: "synthsaebench-65k", 262144: "synthsaebench-262k", 1048576: "synthsaebench-1m"}[n]


def _peak_rss() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss, not inherited from the parent across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20  # kB -> GiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def child_ours(config: dict[str, Any], rows: int) -> dict[str, Any]:
    import synthsae

    t0 = time.perf_counter()
    world = synthsae.World(synthsae.WorldConfig.from_dict(config), show_progress=False)
    build = time.perf_counter() - t0
    build_rss = _peak_rss()
    l0 = float(len(world.sample_features(rows, seed=0).indices)) / rows
    return {
        "build_s": build,
        "build_peak_rss_gib": build_rss,
        "l0": l0,
        "features_rows_per_s": rows_per_second(lambda: world.sample_features(rows, seed=1), rows, REPEATS),
        "hidden_rows_per_s": rows_per_second(lambda: world.sample(rows, seed=2), rows, REPEATS),
        "peak_rss_gib": _peak_rss(),
    }


def child_saelens(config: dict[str, Any], rows: int) -> dict[str, Any]:
    from sae_lens.synthetic import SyntheticModel, SyntheticModelConfig

    t0 = time.perf_counter()
    model = SyntheticModel(SyntheticModelConfig.from_dict(config))
    build = time.perf_counter() - t0
    build_rss = _peak_rss()
    return {
        "build_s": build,
        "build_peak_rss_gib": build_rss,
        "features_rows_per_s": rows_per_second(
            lambda: model.activation_generator.sample(SAELENS_BATCH), SAELENS_BATCH, REPEATS
        ),
        "hidden_rows_per_s": rows_per_second(lambda: model.sample(SAELENS_BATCH), SAELENS_BATCH, REPEATS),
        "peak_rss_gib": _peak_rss(),
    }


def _run_child(python: str, kind: str, config: dict[str, Any], rows: int) -> dict[str, Any] | str:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
    done = subprocess.run(
        [python, __file__, "--child", kind, "--config", f.name, "--rows", str(rows)],
        capture_output=True,
        text=True,
    )
    Path(f.name).unlink()
    if done.returncode != 0:
        return f"failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def _plot(results: list[dict[str, Any]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for who, style in (("synthsae", "-o"), ("synthsae_no_copula", ":^"), ("saelens", "--s")):
        for what, label in (("features_rows_per_s", "features"), ("hidden_rows_per_s", "hidden")):
            pts = [(r["n"], 1e6 / r[who][what]) for r in results if isinstance(r.get(who), dict)]
            if pts:
                name = {"saelens": "SAELens", "synthsae_no_copula": "synthsae without the copula"}.get(
                    who, who
                )
                ax.plot(*zip(*pts, strict=True), style, label=f"{name} {label}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("features N")
    ax.set_ylabel("µs per row (wall, 2 CPU threads)")
    ax.set_title("Sampling cost per row vs N (SynthSAEBench-16k scaled, L0 ≈ 35)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="16384,65536,262144,1048576")
    parser.add_argument("--saelens-python", default=None, help="interpreter with sae-lens (default: skip)")
    parser.add_argument("--saelens-max", type=int, default=262144)
    parser.add_argument("--rows", type=int, default=16384)
    parser.add_argument("--json", default=None)
    parser.add_argument("--plot", default=None)
    parser.add_argument("--no-copula", action="store_true", help="also time synthsae without the copula")
    parser.add_argument("--child", choices=["ours", "saelens"], help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        config = json.loads(Path(args.config).read_text())
        child = child_ours if args.child == "ours" else child_saelens
        print(json.dumps(child(config, args.rows)))
        return
    flags = sorted({f for f in Path("/proc/cpuinfo").read_text().split() if f in ("avx2", "avx512f")})
    print(f"machine: {platform.machine()}, CPU flags {','.join(flags)}, python {platform.python_version()}")
    results = []
    for n in (int(v) for v in args.sizes.split(",")):
        config = _config(n)
        row: dict[str, Any] = {"n": n, "hidden_dim": config["hidden_dim"]}
        row["synthsae"] = _run_child(sys.executable, "ours", config, args.rows)
        if args.no_copula:
            row["synthsae_no_copula"] = _run_child(
                sys.executable, "ours", {**config, "correlation": None}, args.rows
            )
        if args.saelens_python and n <= args.saelens_max:
            row["saelens"] = _run_child(args.saelens_python, "saelens", config, args.rows)
        else:
            row["saelens"] = "skipped" if args.saelens_python else "no --saelens-python"
        results.append(row)
        print(json.dumps(row), flush=True)
    base = results[0]
    print(
        f"\n{'N':>9} {'D':>5} {'L0':>6} | {'synthsae feat/s':>15} {'hidden/s':>10} {'build s':>8} "
        f"{'RSS GiB':>8} | {'SAELens feat/s':>14} {'hidden/s':>9} | {'ratio feat':>10} {'hidden':>7} | "
        f"{'growth ours f/h':>15} {'SAELens f/h':>12}"
    )
    for r in results:
        ours, theirs = r["synthsae"], r["saelens"]
        if not isinstance(ours, dict):
            print(f"{r['n']:>9,} synthsae {ours}")
            continue
        grow = f"{base['synthsae']['features_rows_per_s'] / ours['features_rows_per_s']:.2f}/" + (
            f"{base['synthsae']['hidden_rows_per_s'] / ours['hidden_rows_per_s']:.2f}"
        )
        line = (
            f"{r['n']:>9,} {r['hidden_dim']:>5} {ours['l0']:>6.1f} | {ours['features_rows_per_s']:>15,.0f} "
            f"{ours['hidden_rows_per_s']:>10,.0f} {ours['build_s']:>8.1f} {ours['peak_rss_gib']:>8.2f} | "
        )
        if isinstance(theirs, dict):
            line += (
                f"{theirs['features_rows_per_s']:>14,.0f} {theirs['hidden_rows_per_s']:>9,.0f} | "
                f"{ours['features_rows_per_s'] / theirs['features_rows_per_s']:>9.1f}x "
                f"{ours['hidden_rows_per_s'] / theirs['hidden_rows_per_s']:>6.1f}x | {grow:>15} "
            )
            if isinstance(base["saelens"], dict):
                line += (
                    f"{base['saelens']['features_rows_per_s'] / theirs['features_rows_per_s']:.1f}/"
                    f"{base['saelens']['hidden_rows_per_s'] / theirs['hidden_rows_per_s']:.1f}"
                )
        else:
            line += f"{'SAELens ' + theirs:>37} | {grow:>15}"
        print(line)
    for r in results:
        if isinstance(r.get("synthsae_no_copula"), dict):
            q, b = r["synthsae_no_copula"], base["synthsae_no_copula"]
            print(
                f"synthsae without the copula, N={r['n']:,}: L0 {q['l0']:.1f}, features "
                f"{q['features_rows_per_s']:,.0f} rows/s, hidden {q['hidden_rows_per_s']:,.0f} rows/s "
                f"(growth {b['features_rows_per_s'] / q['features_rows_per_s']:.2f}/"
                f"{b['hidden_rows_per_s'] / q['hidden_rows_per_s']:.2f})"
            )
    for r in results:
        if isinstance(r["saelens"], dict):
            s = r["saelens"]
            print(f"SAELens N={r['n']:,}: build {s['build_s']:.1f} s, peak RSS {s['peak_rss_gib']:.2f} GiB")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.plot:
        _plot(results, args.plot)


if __name__ == "__main__":
    main()
