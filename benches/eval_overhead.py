"""Cost of synthsae's evaluation metrics next to the SAE forward pass they score (CPU).

    python benches/eval_overhead.py [--batches 8] [--batch-size 4096] [--d-sae 4096] [--k 25]

Scores a 4096-latent TopK SAE (decoder rows = noisy copies of ground-truth features, encoder = the
decoder's transpose, k = 25 active latents) on the SynthSAEBench-16k world (orthogonalization off,
which only changes the dictionary). Per batch, timed separately: the data (sample features + hidden),
the SAE forward (encode + decode) and the metrics (``EvalAccumulator.add_batch``: SAELens's set plus
the matched classification, the split unions and the absorption counts and fractions). Also timed once:
the weight-side set-up (effective decoder, |cos| matrix, MCC matching, best match, recovery by decile and
depth, splitting, absorption candidates) and the chance level of a random dictionary, each reported as a
share of a default 500,000-row evaluation's forward time.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

import synthsae
from synthsae.evaluation.recovery import random_baseline
from synthsae.evaluation.scoring import effective_decoder
from synthsae.world.hierarchy import tree_positions


class TopKSAE(torch.nn.Module):
    def __init__(self, world: synthsae.World, d_sae: int, k: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        pick = torch.randperm(world.num_features, generator=g)[:d_sae]
        w = world.feature_vectors[pick] + 0.05 * torch.randn(d_sae, world.hidden_dim, generator=g)
        self.W_dec = torch.nn.Parameter(w / w.norm(dim=1, keepdim=True))
        self.W_enc = torch.nn.Parameter(self.W_dec.detach().T.clone())
        self.b_dec = torch.nn.Parameter(world.bias.clone())
        self.k = k

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        pre = torch.relu((x - self.b_dec) @ self.W_enc)
        top = pre.topk(self.k, dim=1)
        return torch.zeros_like(pre).scatter_(1, top.indices, top.values)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.W_dec + self.b_dec


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--d-sae", type=int, default=4096)
    parser.add_argument("--k", type=int, default=25)
    parser.add_argument("--eval-samples", type=int, default=500_000)
    args = parser.parse_args()

    print(f"machine: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}")
    config = synthsae.preset("synthsaebench-16k")
    config.orthogonalization = None
    world = synthsae.World(config)
    sae = TopKSAE(world, args.d_sae, args.k)
    parent, depth = tree_positions(world.hierarchy, world.num_features)
    acc, setup = timed(
        lambda: synthsae.EvalAccumulator(
            sae.W_dec,
            world.feature_vectors,
            firing_probabilities=world.firing_probabilities,
            feature_depth=depth,
            feature_parent=parent,
            effective_decoder=effective_decoder(sae),
        )
    )
    plain, plain_setup = timed(lambda: synthsae.EvalAccumulator(sae.W_dec, world.feature_vectors))
    _, chance = timed(lambda: random_baseline(world, args.d_sae))
    data, forward, metrics, plain_metrics = [], [], [], []
    with torch.no_grad():
        for i in range(args.batches + 1):
            (feats, x), t_data = timed(
                lambda i=i: (
                    f := world.sample_features(args.batch_size, seed=0, start=i * args.batch_size),
                    world.hidden_from_features(f),
                )
            )
            (z, y), t_fwd = timed(lambda x=x: (z := sae.encode(x), sae.decode(z)))
            _, t_met = timed(lambda feats=feats, x=x, y=y, z=z: acc.add_batch(x, y, z, feats))
            _, t_plain = timed(lambda feats=feats, x=x, y=y, z=z: plain.add_batch(x, y, z, feats))
            if i:  # the first batch warms up
                data.append(t_data)
                forward.append(t_fwd)
                metrics.append(t_met)
                plain_metrics.append(t_plain)
    med = statistics.median
    print(
        f"16k world, SAE {args.d_sae} latents (TopK k={args.k}), "
        f"batch {args.batch_size}, {args.batches} batches"
    )
    print(f"data (features + hidden): {med(data) * 1e3:8.1f} ms/batch")
    print(f"SAE forward:              {med(forward) * 1e3:8.1f} ms/batch")
    print(
        f"metrics (add_batch, incl. unions and absorption): {med(metrics) * 1e3:8.1f} ms/batch = "
        f"{med(metrics) / med(forward):.1%} of the forward"
    )
    total_forward = med(forward) * args.eval_samples / args.batch_size
    print(
        "weight-side set-up (effective decoder, |cos|, MCC, recovery, splitting, absorption): "
        f"{setup:.2f} s once = {setup / total_forward:.1%} of the forward over {args.eval_samples:,} rows"
    )
    print(
        f"chance level (random dictionary of the same width, cached per world and width): {chance:.2f} s "
        f"once = {chance / total_forward:.1%} of that forward"
    )
    new = (med(metrics) - med(plain_metrics)) * args.eval_samples / args.batch_size
    new += setup - plain_setup + chance
    print(
        "without the hierarchy inputs (no absorption, no by-decile/depth figures): "
        f"{med(plain_metrics) * 1e3:.1f} ms/batch, set-up {plain_setup:.2f} s; so the extended block adds "
        f"{new:.1f} s = {new / total_forward:.1%} to the forward over {args.eval_samples:,} rows "
        "(batches, set-up, chance level)"
    )
    r = acc.compute()
    print(
        f"(sanity: {r.num_samples:,} rows, true L0 {r.true_l0:.2f}, SAE L0 {r.sae_l0:.2f}, MCC {r.mcc:.4f})"
    )


if __name__ == "__main__":
    main()
