"""Training benchmarks.

    python benches/training.py [--part stream,tiny] [--steps 20] [--seconds 55]

* stream: on the SynthSAEBench-16k world (orthogonalization off), rows/s of the ActivationStream alone
  (features + hidden on the CPU, batch 1024) against the rows/s a 4096-latent BatchTopK (k = 25) training
  step consumes on the CPU (forward, backward, Adam, after_step, on pre-drawn batches), and the ratio.
* tiny: a BatchTopK SAE (256 latents, k = 8 ≈ the true L0 of the tiny world's 256 most frequent features,
  as the paper's k = 25 is that of the 16k world's first 4,096; the whole world's L0 is 15.4) trained by
  ``synthsae.train`` for a fixed number of rows chosen to take under a minute on 2 cores, then scored on
  100,000 held-out rows: MCC, F1, uniqueness, explained variance, against the same SAE at initialization.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

import synthsae
from synthsae import saes


def stream_part(args: argparse.Namespace) -> None:
    config = synthsae.preset("synthsaebench-16k")
    config.orthogonalization = None
    world = synthsae.World(config)
    batches = args.steps
    stream = synthsae.ActivationStream(world, 1024, seed=0, num_batches=batches + 2, prefetch=2)
    it = iter(stream)
    xs = [next(it), next(it)]  # warm-up
    t0 = time.perf_counter()
    xs += list(it)
    data_rate = batches * 1024 / (time.perf_counter() - t0)

    sae = saes.BatchTopKSAE(world.hidden_dim, 4096, 25, seed=0)
    opt = torch.optim.Adam(sae.parameters(), lr=3e-4)
    times = []
    for x in xs:
        t0 = time.perf_counter()
        out = sae.training_forward(x)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sae.after_step(out)
        times.append(time.perf_counter() - t0)
    step_rate = 1024 / statistics.median(times[2:])
    print(f"\n== stream vs step: 16k world, BatchTopK 4096 latents k=25, batch 1024, {batches} batches")
    print(f"ActivationStream (features + hidden, CPU): {data_rate:>10,.0f} rows/s")
    print(f"training step consumption (CPU):          {step_rate:>10,.0f} rows/s")
    print(f"data / step: {data_rate / step_rate:.1f}x")


def tiny_part(args: argparse.Namespace) -> None:
    world = synthsae.World(synthsae.preset("tiny"))
    sae = saes.BatchTopKSAE(world.hidden_dim, 256, 8, seed=0)
    before = synthsae.evaluate(sae, world, num_samples=100_000, seed=1, show_progress=False)
    history = synthsae.train(
        sae,
        world,
        total_samples=args.tiny_rows,
        batch_size=1024,
        lr=1e-3,
        seed=0,
        dead_window=100,
        show_progress=False,
    )
    after = synthsae.evaluate(sae, world, num_samples=100_000, seed=1, show_progress=False)
    print(
        f"\n== tiny: BatchTopK 256 latents k=8, {args.tiny_rows:,} rows, batch 1024, lr 1e-3, dead window 100"
    )
    print(f"train time: {history.seconds:.1f} s ({history.samples / history.seconds:,.0f} rows/s)")
    for name in ("mcc", "f1", "uniqueness", "explained_variance", "sae_l0", "dead_latents"):
        print(f"{name:20s} init {getattr(before, name):8.4f} -> trained {getattr(after, name):8.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", default="stream,tiny")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--tiny-rows", type=int, default=3_000_000)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} torch threads"
    )
    parts = args.part.split(",")
    if "stream" in parts:
        stream_part(args)
    if "tiny" in parts:
        tiny_part(args)


if __name__ == "__main__":
    main()
