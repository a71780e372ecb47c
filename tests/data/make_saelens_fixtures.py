"""Regenerates saelens_fixtures.json from real SAELens (run in a venv with sae-lens installed):

    python tests/data/make_saelens_fixtures.py

Records SAELens's outputs for small cases: hierarchy generation + compensation factors, and
SyntheticModelConfig JSON round trips, and a small world saved by SAELens (saelens_world/) with
its regenerated magnitudes. The tests compare synthsae against these numbers.
"""

import json
from pathlib import Path

import sae_lens
import torch
from sae_lens.synthetic import SyntheticModel, SyntheticModelConfig
from sae_lens.synthetic.correlation import generate_random_correlation_matrix
from sae_lens.synthetic.hierarchy import HierarchyConfig, generate_hierarchy

HIERARCHIES = [
    (20, dict(total_root_nodes=2, branching_factor=3, max_depth=2, mutually_exclusive_portion=0.5), 0),
    (
        500,
        dict(
            total_root_nodes=7,
            branching_factor=(2, 6),
            max_depth=4,
            mutually_exclusive_portion=0.4,
            mutually_exclusive_min_depth=1,
            mutually_exclusive_max_depth=2,
            compensate_probabilities=True,
        ),
        3,
    ),
    (60, dict(total_root_nodes=10, branching_factor=(2, 9), max_depth=5, mutually_exclusive_portion=0.7), 11),
    (40, dict(total_root_nodes=3, branching_factor=4, max_depth=2, scale_children_by_parent=True), 5),
]

CONFIGS = [
    {"num_features": 10, "hidden_dim": 4, "firing_probability": {"generator_name": "zipfian"}},
    {
        "num_features": 1000,
        "hidden_dim": 64,
        "firing_probability": {"generator_name": "linear", "max_prob": 0.2, "min_prob": 0.01},
        "hierarchy": {"total_root_nodes": 10, "branching_factor": [2, 4], "max_depth": 2},
        "correlation": {"rank": 8, "correlation_scale": 0.2},
        "std_firing_magnitudes": {"generator_name": "constant", "value": 0.3},
        "mean_firing_magnitudes": {"generator_name": "exponential", "start": 2.0, "end": 1.0},
        "bias": False,
        "seed": 3,
    },
    {
        "num_features": 50,
        "hidden_dim": 8,
        "firing_probability": {"generator_name": "random", "max_prob": 0.3},
        "orthogonalization": {"num_steps": 10},
        "std_firing_magnitudes": {"generator_name": "folded_normal", "mean": 0.5, "std": 0.5},
        "bias": True,
        "dtype": "float64",
    },
]

out = {"sae_lens_version": sae_lens.__version__, "hierarchies": [], "configs": []}
for n, cfg, seed in HIERARCHIES:
    tree = generate_hierarchy(n, HierarchyConfig(**cfg), seed=seed)
    p = torch.rand(n, generator=torch.Generator().manual_seed(seed)) * 0.5
    out["hierarchies"].append(
        {
            "num_features": n,
            "config": HierarchyConfig(**cfg).to_dict(),
            "seed": seed,
            "tree": tree.to_dict(),
            "base_probabilities": p.tolist(),
            "correction_factors": tree.compute_probability_correction_factors(p).tolist(),
        }
    )
for d in CONFIGS:
    out["configs"].append(
        {"input": d, "to_dict": SyntheticModelConfig.from_dict(json.loads(json.dumps(d))).to_dict()}
    )
# Dense random correlation matrices (the second needs SAELens's PSD repair).
out["correlation_matrices"] = [
    {"args": args, "matrix": generate_random_correlation_matrix(*args[:5], seed=args[5]).tolist()}
    for args in ([6, 0.5, 0.3, 0.1, 0.8, 1], [12, 0.7, 0.0, 0.6, 0.95, 2])
]

# A small world with every component on, saved by SAELens (built on CPU).
WORLD = {
    "num_features": 60,
    "hidden_dim": 8,
    "firing_probability": {"generator_name": "zipfian", "exponent": 0.7, "max_prob": 0.35, "min_prob": 0.02},
    "hierarchy": {
        "total_root_nodes": 4,
        "branching_factor": [2, 3],
        "max_depth": 3,
        "mutually_exclusive_portion": 0.6,
        "compensate_probabilities": True,
        "scale_children_by_parent": True,
    },
    "correlation": {"rank": 4, "correlation_scale": 0.3},
    "std_firing_magnitudes": {"generator_name": "folded_normal", "mean": 0.5, "std": 0.5},
    "mean_firing_magnitudes": {"generator_name": "linear", "start": 3.0, "end": 2.0},
    "bias": 0.5,
    "seed": 7,
}
model = SyntheticModel(SyntheticModelConfig.from_dict(json.loads(json.dumps(WORLD))))
model.save(str(Path(__file__).with_name("saelens_world")))
generator = model.activation_generator
out["world_magnitudes"] = {
    "mean": generator.mean_firing_magnitudes.tolist(),
    "std": generator.std_firing_magnitudes.tolist(),
}
Path(__file__).with_name("saelens_fixtures.json").write_text(json.dumps(out, indent=1) + "\n")
