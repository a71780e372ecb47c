"""synthsae vs SAELens, side by side in one process, same threads; prints rows/s and ratios.

    python benches/compare_saelens.py [--workload independent,tiny,16k] [--threads 2]

* independent: N = 16,384 independent Zipf features (exponent 0.5, [5e-4, 0.4]), std 0 — SAELens's
  ActivationGenerator in both output modes (dense, sparse COO); the ratio uses the faster one.
* tiny / 16k: the `tiny` preset and the full-fidelity SynthSAEBench-16k world (hierarchy,
  correlation, magnitudes; orthogonalization off, which only affects the dictionary). SAELens builds
  the model and saves it; synthsae loads that directory, so both sample the same world. Timed:
  feature activations, and hidden activations on CPU; SAELens at each of --saelens-world-batch
  (its dense [batch, N] sampling is fastest near 256 rows here): a ratio per batch (1,024 is the
  batch SAELens trains with by default), and the ratio against its fastest.
Without sae-lens installed, synthsae is timed alone and SAELens is skipped with a message.
"""

from __future__ import annotations

import argparse
import platform

import torch
from bench_timing import rows_per_second

import synthsae

# `batch_size` default of SAELens's `train_toy_sae` and `SyntheticSAERunnerConfig`, and the batch of the
# benchmark's recommended training setup.
SAELENS_TRAINING_BATCH = 1024


def independent(args: argparse.Namespace) -> None:
    p = synthsae.zipfian_firing_probabilities(args.features, 0.5, 0.4, 5e-4)
    print(f"\n== independent: N = {args.features:,}, zipfian(0.5, 0.4, 5e-4), L0 = {p.sum():.2f}, std 0")

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


def world(args: argparse.Namespace, name: str) -> None:
    import tempfile

    config = synthsae.preset("synthsaebench-16k" if name == "16k" else name)
    config.orthogonalization = None
    print(f"\n== world {name}: N = {config.num_features:,}, D = {config.hidden_dim}, full fidelity")
    try:
        from sae_lens.synthetic import SyntheticModel, SyntheticModelConfig
    except ImportError:
        model = None
        ours = synthsae.World(config, show_progress=False)
    else:
        model = SyntheticModel(SyntheticModelConfig.from_dict(config.to_dict()))
        with tempfile.TemporaryDirectory() as tmp:
            model.save(tmp)
            ours = synthsae.World.load(tmp)
    rows = args.world_rows
    feats = rows_per_second(
        lambda: ours.sample_features(rows, seed=0, num_threads=args.threads), rows, args.repeats
    )
    hidden = rows_per_second(lambda: ours.sample(rows, seed=0, num_threads=args.threads), rows, args.repeats)
    print(f"synthsae world.sample_features: {feats:>12,.0f} rows/s")
    print(f"synthsae world.sample (hidden): {hidden:>12,.0f} rows/s")
    if model is None:
        print("SKIP SAELens: sae-lens is not installed here (pip install sae-lens)")
        return
    # SAELens samples dense [batch, N] tensors, so its speed depends on the batch: each ratio uses
    # its fastest batch.
    their_feats = their_hidden = 0.0
    for batch in (int(b) for b in args.saelens_world_batch.split(",")):
        feats_b = rows_per_second(
            lambda b=batch: model.activation_generator.sample(b), batch, args.saelens_batches
        )
        hidden_b = rows_per_second(lambda b=batch: model.sample(b), batch, args.saelens_batches)
        print(f"SAELens activation_generator.sample({batch:>5}): {feats_b:>7,.0f} rows/s")
        print(f"SAELens SyntheticModel.sample({batch:>5}):       {hidden_b:>7,.0f} rows/s")
        note = " (SAELens's training default)" if batch == SAELENS_TRAINING_BATCH else ""
        ratio_b = f"features {feats / feats_b:.1f}x, hidden {hidden / hidden_b:.1f}x"
        print(f"  ratio at batch {batch}: {ratio_b}{note}")
        their_feats, their_hidden = max(their_feats, feats_b), max(their_hidden, hidden_b)
    ratios = f"features: {feats / their_feats:.1f}x, hidden: {hidden / their_hidden:.1f}x"
    print(f"ratio {ratios} (each against SAELens's fastest batch)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="independent,tiny,16k", help="comma list of workloads")
    parser.add_argument("--rows", type=int, default=1_000_000, help="synthsae rows per call (independent)")
    parser.add_argument("--world-rows", type=int, default=200_000, help="synthsae rows per call (worlds)")
    parser.add_argument("--saelens-batch", type=int, default=8192, help="SAELens batch (independent)")
    parser.add_argument(
        "--saelens-world-batch", default="256,1024", help="SAELens batches to try (worlds), comma list"
    )
    parser.add_argument("--saelens-batches", type=int, default=5, help="timed SAELens batches")
    parser.add_argument("--features", type=int, default=16384)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement (median)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"machine: {platform.processor() or platform.machine()}, {args.threads} threads; "
        f"synthsae {synthsae.__version__}, torch {torch.__version__}"
    )
    for name in args.workload.split(","):
        if name == "independent":
            independent(args)
        elif name in ("tiny", "16k"):
            world(args, name)
        else:
            parser.error(f"unknown workload {name!r}")


if __name__ == "__main__":
    main()
