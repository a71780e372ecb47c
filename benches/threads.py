"""Training speed on a quiet and on a busy machine: synthsae's thread defaults against the old ones.

    python benches/threads.py [--parts step,train,cpu,bench] [--busy 1] [--repeats 3] [--rows 400000]
                              [--json FILE]

Two settings, each measured in a fresh process (OpenMP reads its environment when torch loads):

* ``old``: what synthsae did before it managed threads: torch imported first with OpenMP's default
  (spin-)waiting, torch on every core and the prefetching sampler on every core at once.
* ``new``: the defaults (:mod:`synthsae.threads`): ``OMP_WAIT_POLICY=PASSIVE`` set at import, torch and
  the sampler sharing the cores during training.

Each under two loads: ``quiet`` and ``busy`` (``--busy`` CPU-bound processes, each pinned to one core,
started and stopped by this script, each exiting by itself after 20 minutes at most). Parts:

* step: median time of one training step (forward, backward, Adam, after_step) of BatchTopK (k 8) and
  matching pursuit (k 8), 256 latents, batch 1,024, on pre-drawn rows of the ``tiny`` world.
* train: ``synthsae.train`` of the same SAEs for ``--rows`` rows (prefetcher on).
* cpu: ``synthsae.train`` of 1,024-latent BatchTopK, ReLU and MP SAEs (L0 6) on the
  ``synthsaebench-cpu`` world, ``--rows`` rows each.
* bench: ``synthsae bench`` as README command 1 runs it (the ``tiny`` preset's default protocol), quiet
  and busy, new settings only unless ``--bench-old`` (old and busy can take many times longer).

Settings and loads alternate within each repeat; the median over ``--repeats`` is printed with the
ratios old/new and busy/quiet.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_SECONDS = 1200


def old_defaults() -> None:
    """This process as synthsae ran before it managed threads: torch loaded first (OpenMP's default
    waiting), torch's own thread count and the sampler on every core while training."""
    import warnings

    import torch  # noqa: F401  (before synthsae)

    warnings.simplefilter("ignore")  # the warning that says exactly this
    import synthsae.training.loop

    synthsae.training.loop.training_split = lambda num_threads, torch_threads, **_: (
        torch_threads,
        num_threads,
    )


def child(part: str, setting: str, rows: int) -> dict[str, float]:
    """Runs one part in this process under ``setting``; returns seconds per measurement."""
    if setting == "old":
        old_defaults()
    import synthsae  # in the "new" setting before torch, so that it sets OpenMP's waiting

    split = synthsae.threads.training_split
    import torch

    from synthsae import saes

    world = synthsae.World(
        synthsae.preset("synthsaebench-cpu" if part == "cpu" else "tiny"), show_progress=False
    )
    out: dict[str, float] = {}
    if part == "step":
        if setting == "new":
            torch.set_num_threads(split(sae_entries=256 * world.hidden_dim)[0] or torch.get_num_threads())
        xs = [world.sample(1024, seed=i) for i in range(4)]
        for arch in ("batchtopk", "mp"):
            sae = saes.create_sae(arch, world.hidden_dim, 256, l0=8, seed=0)
            opt = torch.optim.Adam(sae.parameters(), lr=1e-3)
            times = []
            for i in range(60):
                t0 = time.perf_counter()
                o = sae.training_forward(xs[i % 4])
                o.loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                sae.after_step(o)
                times.append(time.perf_counter() - t0)
            out[f"{arch} step (ms)"] = statistics.median(times[10:]) * 1e3
    elif part == "train":
        warm_up = saes.create_sae("batchtopk", world.hidden_dim, 256, l0=8, seed=0)
        synthsae.train(warm_up, world, total_samples=20 * 1024, show_progress=False)
        for arch in ("batchtopk", "mp"):
            sae = saes.create_sae(arch, world.hidden_dim, 256, l0=8, seed=0)
            t0 = time.perf_counter()
            synthsae.train(sae, world, total_samples=rows, lr=1e-3, show_progress=False)
            out[f"train() {arch}, {rows:,} rows (s)"] = time.perf_counter() - t0
    elif part == "cpu":
        for arch in ("batchtopk", "relu", "mp"):
            sae = saes.create_sae(arch, world.hidden_dim, 1024, l0=6, seed=0)
            t0 = time.perf_counter()
            synthsae.train(sae, world, total_samples=rows, lr=2e-3, show_progress=False)
            out[f"train() CPU preset {arch}, {rows:,} rows (s)"] = time.perf_counter() - t0
    return out


def run_child(part: str, setting: str, rows: int) -> dict[str, float]:
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if part == "bench":
        with tempfile.TemporaryDirectory() as tmp:
            cli = f"from synthsae.cli import main; main(['bench', '--quiet', '--out', {tmp + '/b'!r}])"
            code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            code += ("from threads import old_defaults; old_defaults(); " if setting == "old" else "") + cli
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, check=True, stdout=subprocess.DEVNULL)
            return {"synthsae bench (tiny, README command 1) (s)": time.perf_counter() - t0}
    cmd = [sys.executable, __file__, "--child", part, setting, str(rows)]
    done = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def load(busy: int) -> Iterator[None]:
    """``busy`` CPU-bound processes, process i pinned to core i (mod the cores), for the block."""
    cores = sorted(os.sched_getaffinity(0))
    code = (
        "import os, time\nos.sched_setaffinity(0, {int(os.environ['CORE'])})\n"
        f"t = time.time() + {BUSY_SECONDS}\nwhile time.time() < t: pass\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "CORE": str(cores[i % len(cores)])})
        for i in range(busy)
    ]
    try:
        time.sleep(0.5)
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", default="step,train,cpu,bench")
    parser.add_argument("--busy", type=int, default=1, help="busy processes in the busy load")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=400_000, help="rows per train() (train, cpu)")
    parser.add_argument("--bench-old", action="store_true", help="bench part: the old settings too")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        part, setting, rows = args.child
        print(json.dumps(child(part, setting, int(rows))))
        return

    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    print(
        f"# {platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
        f"python {platform.python_version()}, {time.strftime('%Y-%m-%d')}; busy load = {args.busy} "
        f"pinned process(es); median of {args.repeats}"
    )
    results: dict[str, dict[str, list[float]]] = {}
    for part in parts:
        settings = ["new"] if part == "bench" and not args.bench_old else ["old", "new"]
        for _ in range(args.repeats):
            for busy in (0, args.busy):
                for setting in settings:
                    with load(busy):
                        measured = run_child(part, setting, args.rows)
                    for what, value in measured.items():
                        key = f"{setting} {'busy' if busy else 'quiet'}"
                        results.setdefault(what, {}).setdefault(key, []).append(value)
    table: dict[str, dict[str, float]] = {}
    head = f"{'what':<48} {'old quiet':>10} {'old busy':>10} {'new quiet':>10} {'new busy':>10} "
    head += f"{'old/new q':>10} {'old/new b':>10} {'new b/q':>9}"
    print(head)
    print("-" * len(head))
    for what, by in results.items():
        med = {k: statistics.median(v) for k, v in by.items()}
        table[what] = med

        def cell(key: str, med: dict[str, float] = med) -> str:
            return f"{med[key]:>10.2f}" if key in med else f"{'':>10}"

        def ratio(a: str, b: str, width: int = 10, med: dict[str, float] = med) -> str:
            return f"{med[a] / med[b]:>{width}.2f}" if a in med and b in med else f"{'':>{width}}"

        print(
            f"{what:<48} {cell('old quiet')} {cell('old busy')} {cell('new quiet')} {cell('new busy')} "
            f"{ratio('old quiet', 'new quiet')} {ratio('old busy', 'new busy')} "
            f"{ratio('new busy', 'new quiet', 9)}"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"busy": args.busy, "medians": table, "raw": results}, indent=2)
        )


if __name__ == "__main__":
    main()
