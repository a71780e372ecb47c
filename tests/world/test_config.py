"""WorldConfig: SAELens JSON round trips and validation naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthsae.world.config import (
    FoldedNormalMagnitudeConfig,
    HierarchyConfig,
    LinearMagnitudeConfig,
    LowRankCorrelationConfig,
    WorldConfig,
    ZipfianFiringProbabilityConfig,
)

FIXTURES = json.loads((Path(__file__).parents[1] / "data" / "saelens_fixtures.json").read_text())

# SynthSAEBench-16k's synthetic_model_config.json as SAELens writes it (reference doc §3).
PRESET_16K = json.loads(
    '{"num_features":16384,"hidden_dim":768,"firing_probability":{"exponent":0.5,"max_prob":0.4,'
    '"min_prob":0.0005,"generator_name":"zipfian"},"hierarchy":{"total_root_nodes":128,"branching_factor":4,'
    '"max_depth":3,"mutually_exclusive_portion":1.0,"mutually_exclusive_min_depth":0,'
    '"mutually_exclusive_max_depth":null,"compensate_probabilities":true,"scale_children_by_parent":true},'
    '"orthogonalization":{"num_steps":100,"lr":0.0003,"chunk_size":1024},"correlation":{"rank":25,'
    '"correlation_scale":0.1,"seed":null},"std_firing_magnitudes":{"mean":0.5,"std":0.5,"min_value":null,'
    '"max_value":null,"generator_name":"folded_normal"},"mean_firing_magnitudes":{"start":5.0,"end":4.0,'
    '"generator_name":"linear"},"bias":0.5,"dtype":"float32","seed":42}'
)


@pytest.mark.parametrize("case", FIXTURES["configs"], ids=lambda c: str(c["input"]["num_features"]))
def test_to_dict_equals_saelens(case):
    ours = WorldConfig.from_dict(case["input"]).to_dict()
    assert json.dumps(ours) == json.dumps(case["to_dict"])  # same keys, order and values
    assert WorldConfig.from_dict(ours).to_dict() == ours


def test_16k_preset_json_round_trips_exactly():
    cfg = WorldConfig.from_dict(PRESET_16K)
    assert json.dumps(cfg.to_dict()) == json.dumps(PRESET_16K)
    assert isinstance(cfg.std_firing_magnitudes, FoldedNormalMagnitudeConfig)
    assert isinstance(cfg.mean_firing_magnitudes, LinearMagnitudeConfig)
    assert cfg.hierarchy == HierarchyConfig(128, 4, 3, 1.0, 0, None, True, True)
    assert cfg.correlation == LowRankCorrelationConfig(25, 0.1)


def test_from_dict_does_not_mutate_its_input():
    d = json.loads(json.dumps(PRESET_16K))
    WorldConfig.from_dict(d)
    assert d == PRESET_16K


def test_branching_range_is_a_tuple_in_python_and_a_list_in_json():
    h = HierarchyConfig.from_dict({"branching_factor": [2, 5]})
    assert h.branching_factor == (2, 5)
    assert h.to_dict()["branching_factor"] == [2, 5]


@pytest.mark.parametrize(
    ("make", "exc", "field"),
    [
        (lambda: WorldConfig(0, 4), ValueError, "num_features"),
        (lambda: WorldConfig(4, 0), ValueError, "hidden_dim"),
        (lambda: WorldConfig(4.5, 4), TypeError, "num_features"),
        (lambda: WorldConfig(4, 4, dtype="int8"), ValueError, "dtype"),
        (lambda: WorldConfig(4, 4, bias=-1.0), ValueError, "bias"),
        (lambda: WorldConfig(4, 4, seed=-1), ValueError, "seed"),
        (lambda: WorldConfig(4, 4, std_firing_magnitudes=-0.1), ValueError, "std_firing_magnitudes"),
        (lambda: WorldConfig(4, 4, firing_probability=None), TypeError, "firing_probability"),
        (lambda: ZipfianFiringProbabilityConfig(exponent=0), ValueError, "exponent"),
        (lambda: ZipfianFiringProbabilityConfig(max_prob=0.01, min_prob=0.1), ValueError, "min_prob"),
        (lambda: HierarchyConfig(total_root_nodes=0), ValueError, "total_root_nodes"),
        (lambda: HierarchyConfig(branching_factor=1), ValueError, "branching_factor"),
        (lambda: HierarchyConfig(branching_factor=(4, 2)), ValueError, "branching_factor"),
        (lambda: HierarchyConfig(max_depth=0), ValueError, "max_depth"),
        (lambda: HierarchyConfig(mutually_exclusive_portion=1.5), ValueError, "mutually_exclusive_portion"),
        (
            lambda: HierarchyConfig(mutually_exclusive_min_depth=2, mutually_exclusive_max_depth=1),
            ValueError,
            "mutually_exclusive_max_depth",
        ),
        (lambda: LowRankCorrelationConfig(rank=0), ValueError, "rank"),
        (lambda: LinearMagnitudeConfig(start=0.0, end=1.0), ValueError, "start"),
        (lambda: FoldedNormalMagnitudeConfig(std=0.0), ValueError, "std"),
        (
            lambda: WorldConfig.from_dict({"num_features": 4, "hidden_dim": 4}),
            ValueError,
            "firing_probability",
        ),
        (lambda: WorldConfig.from_dict({**PRESET_16K, "colour": "red"}), ValueError, "colour"),
        (
            lambda: WorldConfig.from_dict({**PRESET_16K, "firing_probability": {"generator_name": "nope"}}),
            ValueError,
            "generator_name",
        ),
        (lambda: WorldConfig.from_dict({**PRESET_16K, "hierarchy": {"depth": 2}}), ValueError, "depth"),
    ],
)
def test_bad_configs_name_the_field(make, exc, field):
    with pytest.raises(exc, match=field):
        make()
