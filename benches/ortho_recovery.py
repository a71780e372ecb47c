"""What the decoder-orthogonality penalty does to recovery (issue 25's experiment).

    python benches/ortho_recovery.py [--coefs 0,1,10] [--out DIR] [--power 2]

Runs ``synthsae bench``'s ``synthsaebench-cpu`` protocol (1,024 latents, L0 6, 5M rows, lr 2e-3, seeds
0 and 1) for BatchTopK and Matryoshka at each penalty coefficient C (``DIR/ortho-<C>``; finished runs
in an existing directory are reused, as ``synthsae bench --out`` does), then prints per architecture
and C the mean ± std over seeds of MCC, F1, the share of the rarest half of the features (by firing
probability) whose MCC-matched latent has |cos| >= 0.5 and >= 0.7, the full absorption rate and the
decoder's mean max |cos|, as a Markdown table.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import numpy as np

import synthsae
from synthsae import bench
from synthsae.evaluation.recovery import probability_deciles


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--coefs", default="0,1,10")
    parser.add_argument("--power", type=float, default=2.0)
    parser.add_argument("--out", default="ortho-recovery")
    args = parser.parse_args()
    world = synthsae.World(synthsae.preset("synthsaebench-cpu"), show_progress=False)
    rare = probability_deciles(world.firing_probabilities.numpy()) <= 5
    rows = []
    for coef in (float(c) for c in args.coefs.split(",")):
        protocol = bench.default_protocol("synthsaebench-cpu", world.num_features)
        protocol.saes = ["batchtopk", "matryoshka"]
        protocol.ortho_coef, protocol.ortho_power = coef, args.power
        report = bench.run(
            world,
            protocol,
            Path(args.out) / f"ortho-{coef:g}",
            preset_name="synthsaebench-cpu",
            show_progress=False,
            log=lambda *a: None,
        )
        for arch in protocol.saes:
            runs = [r for r in report["runs"] if r["architecture"] == arch]
            matched = [np.asarray(r["result"]["feature_mcc_abs_cos"])[rare] for r in runs]
            values = {
                "MCC": [r["result"]["mcc"] for r in runs],
                "F1": [r["result"]["f1"] for r in runs],
                "rare rec@.5": [float((m >= 0.5).mean()) for m in matched],
                "rare rec@.7": [float((m >= 0.7).mean()) for m in matched],
                "absorption": [r["result"]["recovery"]["absorption/full_rate"] for r in runs],
                "dec ρmm": [r["decoder_rho_mm"] for r in runs],
            }
            rows.append((arch, coef, len(runs), values))
    print(f"machine: {platform.machine()} {platform.processor()}; synthsae {synthsae.__version__}")
    names = list(rows[0][3])
    print("| SAE | C | seeds | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for arch, coef, seeds, values in rows:
        cells = [f"{np.mean(v):.4f} ± {np.std(v):.4f}" for v in values.values()]
        print(f"| {arch} | {coef:g} | {seeds} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
