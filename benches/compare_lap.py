"""Times synthsae.linear_sum_assignment against scipy (and lapx's `lapjvh`, if installed) on MCC-shaped
matrices.

    python benches/compare_lap.py [--cases 4096x4096:mixed,16384x16384:mixed,...] [--no-scipy] [--no-lapx]

Matrices as in the assignment reference: G = n random unit vectors in R^768; decoder rows are noisy
copies of G under a random permutation, D_i = normalize(G_p(i) + s·e_i) with s ~ U(0, 4), 20 % of them
replaced by unrelated random rows ("mixed"); extra rows of tall shapes are random; "random" = D
independent of G. Cost = 1 - |D Gᵀ| as float32 (SAELens's input to scipy). Each solver runs in a fresh
process; the time covers the solve only, peak RSS is the child's whole process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

DIM = 768


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def cost_matrix(rows: int, cols: int, structure: str, seed: int = 0) -> np.ndarray:
    """``1 - |D Gᵀ|`` ``[rows, cols]`` float32, built by blocks straight into the output."""
    rng = np.random.default_rng(seed)
    g = unit(rng.standard_normal((cols, DIM), dtype=np.float32))
    d = unit(rng.standard_normal((rows, DIM), dtype=np.float32))
    if structure == "mixed":
        k = min(rows, cols)
        perm = rng.permutation(cols)[:k]
        s = rng.uniform(0, 4, size=(k, 1)).astype(np.float32)
        planted = unit(g[perm] + s * rng.standard_normal((k, DIM), dtype=np.float32) / np.sqrt(DIM))
        keep = rng.random(k) >= 0.2
        d[:k][keep] = planted[keep]
    out = np.empty((rows, cols), dtype=np.float32)
    for lo in range(0, rows, 4096):
        block = d[lo : lo + 4096] @ g.T
        np.abs(block, out=block)
        np.subtract(1.0, block, out=out[lo : lo + 4096])
    return out


def child(solver: str, rows: int, cols: int, structure: str) -> None:
    import resource

    # Imported before timing: the time covers the solve only, not loading either package.
    if solver == "synthsae":
        from synthsae import linear_sum_assignment
    elif solver == "lapx":
        from lap import lapjvh

        def linear_sum_assignment(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return lapjvh(c, extend_cost=True, return_cost=False)
    else:
        from scipy.optimize import linear_sum_assignment
    c = cost_matrix(rows, cols, structure)
    # OpenBLAS's threads spin for a while after the GEMMs above; let them park before timing.
    time.sleep(0.5)
    t = time.perf_counter()
    r, k = linear_sum_assignment(c)
    dt = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    total = float(c[r, k].astype(np.float64).sum())
    print(json.dumps({"seconds": dt, "rss_mib": rss, "total": total, "matrix_mib": c.nbytes / 2**20}))


def run(solver: str, rows: int, cols: int, structure: str) -> dict | None:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", f"{solver}:{rows}:{cols}:{structure}"],
        capture_output=True,
        text=True,
        env=os.environ,
    )
    if proc.returncode != 0:
        print(f"  {solver}: failed: {proc.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default="4096x4096:mixed,16384x16384:mixed,32768x16384:mixed")
    parser.add_argument("--no-scipy", action="store_true", help="do not time scipy")
    parser.add_argument("--no-lapx", action="store_true", help="do not time lapx (timed if installed)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        solver, rows, cols, structure = args.child.split(":")
        child(solver, int(rows), int(cols), structure)
        return
    print(f"machine: {os.cpu_count()} CPUs; solve time only, each solver in a fresh process")
    others = [] if args.no_scipy else ["scipy"]
    if not args.no_lapx:
        try:
            from lap import lapjvh  # noqa: F401  (lapx's module)
        except ImportError:
            print("lapx not installed (pip install lapx): timing scipy only")
        else:
            others.append("lapx")
    failed = False
    for case in args.cases.split(","):
        shape, structure = case.split(":")
        rows, cols = (int(x) for x in shape.split("x"))
        ours = run("synthsae", rows, cols, structure)
        if ours is None:
            failed = True
            continue
        line = f"{rows}x{cols} {structure}: synthsae {ours['seconds']:.3f} s, peak {ours['rss_mib']:,.0f} MiB"
        line += f" (matrix {ours['matrix_mib']:,.0f} MiB)"
        for other in others:
            theirs = run(other, rows, cols, structure)
            if theirs is not None:
                same = abs(theirs["total"] - ours["total"]) <= 1e-9 * max(1.0, abs(theirs["total"]))
                failed |= not same and other == "scipy"  # scipy is the reference
                line += f"; {other} {theirs['seconds']:.3f} s, peak {theirs['rss_mib']:,.0f} MiB"
                line += f"; ratio {theirs['seconds'] / ours['seconds']:.1f}x; same optimum: {same}"
        print(line, flush=True)
    if failed:
        raise SystemExit("a solver failed or the optima differ")


if __name__ == "__main__":
    main()
