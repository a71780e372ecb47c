"""The dictionary orthogonalization of a world: synthsae's Gram form against SAELens's chunked form.

    python benches/orthogonalize.py [--world synthsaebench-16k] [--steps 100] [--saelens-steps 3]

On the world's random dictionary (``[N, D]`` unit rows, before orthogonalization) with the world's
``OrthogonalizationConfig``: times synthsae's default (``method="gram"``, ``O(N·D²)`` per step) over
``--steps`` Adam steps, and SAELens's ``orthogonalize_embeddings`` (``O(N²·D)`` per step; our
``method="chunked"`` when sae-lens is not installed) over ``--saelens-steps`` steps, extrapolated per
step. Prints seconds per step, the ratio, ρ_mm (mean over rows of the largest |cos| with another row)
before and after, and the largest difference between the two after the steps both ran.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time

import torch

import synthsae
from synthsae.evaluation.assignment import mean_max_abs_cos
from synthsae.world.model import orthogonalize


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--world", default="synthsaebench-16k")
    parser.add_argument("--steps", type=int, default=None, help="our steps (default: the world's)")
    parser.add_argument("--saelens-steps", type=int, default=3)
    args = parser.parse_args()
    config = synthsae.preset(args.world)
    ortho = config.orthogonalization or synthsae.OrthogonalizationConfig(num_steps=100, lr=3e-4)
    ours_cfg = dataclasses.replace(ortho, num_steps=args.steps or ortho.num_steps)
    ref_cfg = dataclasses.replace(ortho, num_steps=args.saelens_steps)
    config.orthogonalization = None
    vectors = synthsae.World(config, show_progress=False).feature_vectors  # the random unit rows
    n, d = vectors.shape
    print(
        f"machine: {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} torch threads"
    )
    print(f"== {args.world}: {n:,} x {d} dictionary, Adam lr {ortho.lr:g}, chunk {ortho.chunk_size}")

    try:
        from sae_lens.synthetic.feature_dictionary import orthogonalize_embeddings

        ref_name = "SAELens orthogonalize_embeddings"

        def reference(v: torch.Tensor) -> torch.Tensor:
            return orthogonalize_embeddings(
                v.clone(), num_steps=ref_cfg.num_steps, lr=ref_cfg.lr, chunk_size=ref_cfg.chunk_size
            )
    except ImportError:
        ref_name = "synthsae chunked (SAELens's computation; sae-lens not installed)"

        def reference(v: torch.Tensor) -> torch.Tensor:
            return orthogonalize(v, ref_cfg, show_progress=False, method="chunked")

    t0 = time.perf_counter()
    ref = reference(vectors)
    ref_step = (time.perf_counter() - t0) / max(ref_cfg.num_steps, 1)
    same_steps = orthogonalize(vectors, ref_cfg, show_progress=False)
    t0 = time.perf_counter()
    ours = orthogonalize(vectors, ours_cfg, show_progress=False)
    ours_step = (time.perf_counter() - t0) / max(ours_cfg.num_steps, 1)
    print(
        f"synthsae gram:  {ours_step:8.3f} s/step over {ours_cfg.num_steps} steps "
        f"({ours_step * ours_cfg.num_steps:.1f} s)"
    )
    print(
        f"{ref_name}: {ref_step:8.3f} s/step over {ref_cfg.num_steps} steps "
        f"(x {ours_cfg.num_steps} = {ref_step * ours_cfg.num_steps / 60:.1f} min, extrapolated)"
    )
    print(f"gram / reference speed: {ref_step / ours_step:.1f}x per step")
    diff = float((same_steps - ref).abs().max())
    print(f"after {ref_cfg.num_steps} steps each: max |gram - reference| = {diff:.2e}")
    print(
        f"rho_mm: before {mean_max_abs_cos(vectors):.5f}, reference after {ref_cfg.num_steps} steps "
        f"{mean_max_abs_cos(ref):.5f}, gram after {ref_cfg.num_steps} {mean_max_abs_cos(same_steps):.5f}, "
        f"gram after {ours_cfg.num_steps} {mean_max_abs_cos(ours):.5f}"
    )


if __name__ == "__main__":
    main()
