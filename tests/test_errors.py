"""Bad input raises ValueError/TypeError naming the argument; nothing panics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import synthsae

P = np.full(8, 0.25)


def sample(**overrides):
    kwargs = dict(firing_probabilities=P, n=4, seed=0)
    kwargs.update(overrides)
    return synthsae.sample_independent(**kwargs)


@pytest.mark.parametrize(
    ("overrides", "exc", "name"),
    [
        ({"firing_probabilities": np.array([0.1, np.nan])}, ValueError, "firing_probabilities"),
        ({"firing_probabilities": np.array([0.1, np.inf])}, ValueError, "firing_probabilities"),
        ({"firing_probabilities": np.array([0.1, -0.01])}, ValueError, "firing_probabilities"),
        ({"firing_probabilities": np.array([0.1, 1.0001])}, ValueError, "firing_probabilities"),
        ({"firing_probabilities": np.array([1, 0])}, TypeError, "firing_probabilities"),
        ({"firing_probabilities": np.array([True])}, TypeError, "firing_probabilities"),
        ({"firing_probabilities": np.array([0.1 + 0j])}, TypeError, "firing_probabilities"),
        ({"firing_probabilities": np.array(["0.1"])}, TypeError, "firing_probabilities"),
        ({"firing_probabilities": None}, TypeError, "firing_probabilities"),
        ({"firing_probabilities": [[0.1], [0.2, 0.3]]}, TypeError, "firing_probabilities"),
        ({"firing_probabilities": np.full((2, 2), 0.1)}, ValueError, "firing_probabilities"),
        ({"firing_probabilities": np.float64(0.1)}, ValueError, "firing_probabilities"),
        ({"firing_probabilities": np.array([], dtype=np.float64)}, ValueError, "firing_probabilities"),
        ({"n": -1}, ValueError, "n"),
        ({"n": 2.0}, TypeError, "n"),
        ({"n": True}, TypeError, "n"),
        ({"n": "3"}, TypeError, "n"),
        ({"n": 2**63}, ValueError, "n"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 2**64}, ValueError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"seed": None}, TypeError, "seed"),
        ({"start": -5}, ValueError, "start"),
        ({"start": 2**63 - 2}, ValueError, "start"),
        ({"num_threads": 0}, ValueError, "num_threads"),
        ({"num_threads": 1.0}, TypeError, "num_threads"),
        ({"mean_magnitudes": np.ones(3)}, ValueError, "mean_magnitudes"),
        ({"mean_magnitudes": np.ones((8, 1))}, ValueError, "mean_magnitudes"),
        ({"mean_magnitudes": float("nan")}, ValueError, "mean_magnitudes"),
        ({"mean_magnitudes": 1e38, "std_magnitudes": 1e37}, ValueError, "mean_magnitudes"),
        ({"mean_magnitudes": "big"}, TypeError, "mean_magnitudes"),
        ({"std_magnitudes": -0.1}, ValueError, "std_magnitudes"),
        ({"std_magnitudes": float("inf")}, ValueError, "std_magnitudes"),
        ({"std_magnitudes": np.array([1, 2, 3, 4, 5, 6, 7, 8])}, TypeError, "std_magnitudes"),
    ],
)
def test_bad_input_names_the_argument(overrides, exc, name):
    with pytest.raises(exc, match=rf"\b{name}\b"):
        sample(**overrides)


def test_seed_is_keyword_only_and_required():
    with pytest.raises(TypeError):
        synthsae.sample_independent(P, 4, 0)  # type: ignore[misc]
    with pytest.raises(TypeError, match="seed"):
        synthsae.sample_independent(P, 4)  # type: ignore[call-arg]


def test_torch_tensor_on_other_dtype_is_checked():
    with pytest.raises(TypeError, match="firing_probabilities"):
        sample(firing_probabilities=torch.tensor([1, 0]))


anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=10).map(np.array),
    st.lists(st.integers(-3, 3), max_size=5),
)


@given(
    p=st.one_of(anything, st.lists(st.floats(-1, 2), min_size=1, max_size=10).map(np.array)),
    n=anything,
    seed=anything,
    start=anything,
    mean=anything,
    std=anything,
    threads=st.one_of(st.none(), anything),
)
def test_fuzzed_arguments_never_panic(p, n, seed, start, mean, std, threads):
    # A Rust panic would surface as pyo3's PanicException (a BaseException): only these may escape.
    try:
        synthsae.sample_independent(
            p, n, seed=seed, start=start, mean_magnitudes=mean, std_magnitudes=std, num_threads=threads
        )
    except (TypeError, ValueError):
        pass


# ------------------------------------------------------------------ every public entry point taking numbers
# Each case: a call, the exception it must raise, and the name its message starts with.

NAN, INF = float("nan"), float("inf")
SEEDS_OUT_OF_RANGE = (-1, 2**64)


def _cfg(**overrides):
    return synthsae.WorldConfig(4, 4, **overrides)


CONFIG_CASES = [
    (lambda: synthsae.WorldConfig("4", 4), TypeError, "WorldConfig.num_features"),
    (lambda: synthsae.WorldConfig(4, True), TypeError, "WorldConfig.hidden_dim"),
    (lambda: _cfg(seed=1.0), TypeError, "WorldConfig.seed"),
    *[(lambda s=s: _cfg(seed=s), ValueError, "WorldConfig.seed") for s in SEEDS_OUT_OF_RANGE],
    (lambda: _cfg(bias=NAN), ValueError, "WorldConfig.bias"),
    (lambda: _cfg(dtype=32), TypeError, "WorldConfig.dtype"),
    (lambda: _cfg(dtype="int8"), ValueError, "WorldConfig.dtype"),
    (lambda: _cfg(bias="1"), TypeError, "WorldConfig.bias"),
    (lambda: _cfg(mean_firing_magnitudes=INF), ValueError, "WorldConfig.mean_firing_magnitudes"),
    (lambda: _cfg(std_firing_magnitudes="0"), TypeError, "WorldConfig.std_firing_magnitudes"),
    (lambda: _cfg(std_firing_magnitudes=NAN), ValueError, "WorldConfig.std_firing_magnitudes"),
    (lambda: synthsae.ZipfianFiringProbabilityConfig(exponent=NAN), ValueError, "zipfian.exponent"),
    (lambda: synthsae.ZipfianFiringProbabilityConfig(exponent=-1), ValueError, "zipfian.exponent"),
    (lambda: synthsae.ZipfianFiringProbabilityConfig(max_prob="x"), TypeError, "zipfian.max_prob"),
    (lambda: synthsae.ZipfianFiringProbabilityConfig(max_prob=1.5), ValueError, "zipfian.max_prob"),
    (lambda: synthsae.ZipfianFiringProbabilityConfig(min_prob=0.3), ValueError, "zipfian.min_prob"),
    (lambda: synthsae.LinearFiringProbabilityConfig(0.2, 0.3), ValueError, "linear.min_prob"),
    (lambda: synthsae.LinearFiringProbabilityConfig(INF, 0.3), ValueError, "linear.max_prob"),
    (lambda: synthsae.RandomFiringProbabilityConfig(min_prob=INF), ValueError, "random.min_prob"),
    (lambda: synthsae.RandomFiringProbabilityConfig(0.2, 0.2), ValueError, "random.min_prob"),
    (lambda: synthsae.ConstantFiringProbabilityConfig(1.5), ValueError, "constant.probability"),
    (lambda: synthsae.ConstantFiringProbabilityConfig(None), TypeError, "constant.probability"),
    (lambda: synthsae.ConstantMagnitudeConfig(NAN), ValueError, "constant.value"),
    (lambda: synthsae.LinearMagnitudeConfig(1.0, -1.0), ValueError, "linear.end"),
    (lambda: synthsae.ExponentialMagnitudeConfig(INF, 1.0), ValueError, "exponential.start"),
    (lambda: synthsae.ExponentialMagnitudeConfig("1", 1.0), TypeError, "exponential.start"),
    (lambda: synthsae.FoldedNormalMagnitudeConfig(std=NAN), ValueError, "folded_normal.std"),
    (lambda: synthsae.FoldedNormalMagnitudeConfig(mean=INF), ValueError, "folded_normal.mean"),
    (lambda: synthsae.FoldedNormalMagnitudeConfig(min_value=-1.0), ValueError, "folded_normal.min_value"),
    (lambda: synthsae.FoldedNormalMagnitudeConfig(max_value=0.0), ValueError, "folded_normal.max_value"),
    (
        lambda: synthsae.FoldedNormalMagnitudeConfig(min_value=2.0, max_value=1.0),
        ValueError,
        "folded_normal.min_value",
    ),
    (lambda: synthsae.HierarchyConfig(total_root_nodes=1.0), TypeError, "hierarchy.total_root_nodes"),
    (lambda: synthsae.HierarchyConfig(branching_factor=(2, 2.5)), TypeError, "hierarchy.branching_factor"),
    (lambda: synthsae.HierarchyConfig(branching_factor=(2, 3, 4)), ValueError, "hierarchy.branching_factor"),
    (lambda: synthsae.HierarchyConfig(max_depth=-1), ValueError, "hierarchy.max_depth"),
    (
        lambda: synthsae.HierarchyConfig(mutually_exclusive_portion=NAN),
        ValueError,
        "hierarchy.mutually_exclusive_portion",
    ),
    (
        lambda: synthsae.HierarchyConfig(mutually_exclusive_min_depth=-1),
        ValueError,
        "hierarchy.mutually_exclusive_min_depth",
    ),
    (
        lambda: synthsae.HierarchyConfig(compensate_probabilities=1),
        TypeError,
        "hierarchy.compensate_probabilities",
    ),
    (lambda: synthsae.OrthogonalizationConfig(num_steps=-1), ValueError, "orthogonalization.num_steps"),
    (lambda: synthsae.OrthogonalizationConfig(lr=0.0), ValueError, "orthogonalization.lr"),
    (lambda: synthsae.OrthogonalizationConfig(lr=INF), ValueError, "orthogonalization.lr"),
    (lambda: synthsae.OrthogonalizationConfig(chunk_size=0), ValueError, "orthogonalization.chunk_size"),
    (lambda: synthsae.LowRankCorrelationConfig(rank=1.5), TypeError, "correlation.rank"),
    (
        lambda: synthsae.LowRankCorrelationConfig(correlation_scale=-0.1),
        ValueError,
        "correlation.correlation_scale",
    ),
    (
        lambda: synthsae.LowRankCorrelationConfig(correlation_scale=NAN),
        ValueError,
        "correlation.correlation_scale",
    ),
    *[
        (lambda s=s: synthsae.LowRankCorrelationConfig(seed=s), ValueError, "correlation.seed")
        for s in SEEDS_OUT_OF_RANGE
    ],
    (lambda: synthsae.preset(3), TypeError, "name"),
    (lambda: synthsae.preset("huge"), ValueError, "name"),
]

FUNCTION_CASES = [
    (lambda: synthsae.zipfian_firing_probabilities("4"), TypeError, "num_features"),
    (lambda: synthsae.zipfian_firing_probabilities(4, exponent=INF), ValueError, "exponent"),
    (lambda: synthsae.zipfian_firing_probabilities(4, max_prob=NAN), ValueError, "max_prob"),
    (lambda: synthsae.linear_firing_probabilities(4, max_prob=NAN), ValueError, "max_prob"),
    (lambda: synthsae.linear_firing_probabilities(4, min_prob=None), TypeError, "min_prob"),
    (lambda: synthsae.constant_firing_probabilities(4, NAN), ValueError, "probability"),
    (lambda: synthsae.random_firing_probabilities(4, max_prob=1.5), ValueError, "max_prob"),
    (lambda: synthsae.random_firing_probabilities(4, min_prob=INF), ValueError, "min_prob"),
    (lambda: synthsae.random_firing_probabilities(4, seed=1.5), TypeError, "seed"),
    *[
        (lambda s=s: synthsae.random_firing_probabilities(4, seed=s), ValueError, "seed")
        for s in SEEDS_OUT_OF_RANGE
    ],
    (lambda: synthsae.random_correlation_matrix(-1), ValueError, "num_features"),
    (lambda: synthsae.random_correlation_matrix(1.5), TypeError, "num_features"),
    (lambda: synthsae.random_correlation_matrix(4, positive_ratio=1.5), ValueError, "positive_ratio"),
    (lambda: synthsae.random_correlation_matrix(4, uncorrelated_ratio=NAN), ValueError, "uncorrelated_ratio"),
    (
        lambda: synthsae.random_correlation_matrix(4, min_correlation_strength="x"),
        TypeError,
        "min_correlation_strength",
    ),
    (
        lambda: synthsae.random_correlation_matrix(4, min_correlation_strength=0.9),
        ValueError,
        "min_correlation_strength",
    ),
    (
        lambda: synthsae.random_correlation_matrix(4, max_correlation_strength=INF),
        ValueError,
        "max_correlation_strength",
    ),
    *[
        (lambda s=s: synthsae.random_correlation_matrix(4, seed=s), ValueError, "seed")
        for s in SEEDS_OUT_OF_RANGE
    ],
    (lambda: synthsae.fix_correlation_matrix("x"), TypeError, "matrix"),
    (lambda: synthsae.fix_correlation_matrix(torch.ones(2, 3)), ValueError, "matrix"),
    (lambda: synthsae.fix_correlation_matrix(torch.full((2, 2), NAN)), ValueError, "matrix"),
    (lambda: synthsae.fix_correlation_matrix(torch.eye(2), 0.0), ValueError, "min_eigenvalue"),
    (lambda: synthsae.fix_correlation_matrix(torch.eye(2), NAN), ValueError, "min_eigenvalue"),
    (lambda: synthsae.low_rank_from_dense(np.eye(2, dtype=bool)), TypeError, "correlation_matrix"),
    (lambda: synthsae.low_rank_from_dense([[1.0, 0.0], [0.0]]), TypeError, "correlation_matrix"),
    (lambda: synthsae.low_rank_from_dense(np.full((2, 2), INF)), ValueError, "correlation_matrix"),
    (lambda: synthsae.linear_sum_assignment(np.ones(3)), ValueError, "cost_matrix"),
    (lambda: synthsae.linear_sum_assignment(np.array([[NAN]])), ValueError, "cost_matrix"),
    (lambda: synthsae.linear_sum_assignment(np.array([["a"]])), TypeError, "cost_matrix"),
    (lambda: synthsae.linear_sum_assignment([[1.0], [1.0, 2.0]]), TypeError, "cost_matrix"),
    (lambda: synthsae.linear_sum_assignment(np.ones((2, 2)), maximize=1), TypeError, "maximize"),
    (lambda: synthsae.mcc(np.ones(4), np.ones((3, 4))), ValueError, "decoder"),
    (lambda: synthsae.mcc(np.full((2, 4), NAN), np.ones((3, 4))), ValueError, "decoder"),
    (lambda: synthsae.mcc(np.ones((2, 4)), np.full((3, 4), INF)), ValueError, "gt_features"),
    (lambda: synthsae.mcc(np.ones((2, 4), dtype=bool), np.ones((3, 4))), TypeError, "decoder"),
    (lambda: synthsae.mcc(np.ones((2, 4)), np.ones((3, 4)), return_matching=1), TypeError, "return_matching"),
    (lambda: synthsae.abs_cos_matrix(np.ones((2, 4)), np.full((3, 4), NAN)), ValueError, "gt_features"),
    (lambda: synthsae.feature_uniqueness(np.full((2, 4), INF), np.ones((3, 4))), ValueError, "decoder"),
]


@pytest.mark.parametrize(("call", "exc", "name"), CONFIG_CASES + FUNCTION_CASES)
def test_public_functions_name_the_argument_first(call, exc, name):
    with pytest.raises(exc) as info:
        call()
    assert str(info.value).startswith(name), str(info.value)


WORLD_CASES = [
    (lambda w, tmp: synthsae.World("tiny"), TypeError, "config"),
    (lambda w, tmp: synthsae.World(synthsae.preset("tiny"), show_progress="no"), TypeError, "show_progress"),
    (lambda w, tmp: w.sample_features(-1, seed=0), ValueError, "n"),
    (lambda w, tmp: w.sample_features(4, seed=2**64), ValueError, "seed"),
    (lambda w, tmp: w.sample_features(4, seed=0, start=1.0), TypeError, "start"),
    (lambda w, tmp: w.sample_features(4, seed=0, num_threads=0), ValueError, "num_threads"),
    (lambda w, tmp: w.sample(4.0, seed=0), TypeError, "n"),
    (lambda w, tmp: w.sample(4, seed=-1), ValueError, "seed"),
    (lambda w, tmp: w.sample(4, seed=0, return_features=1), TypeError, "return_features"),
    (lambda w, tmp: w.stats(num_samples=0), ValueError, "num_samples"),
    (lambda w, tmp: w.stats(num_samples=1.5), TypeError, "num_samples"),
    (lambda w, tmp: w.stats(seed=2**64), ValueError, "seed"),
    (lambda w, tmp: w.save(tmp / "w", overwrite="yes"), TypeError, "overwrite"),
    (lambda w, tmp: synthsae.resolve_world(3), TypeError, "world"),
    (lambda w, tmp: synthsae.resolve_world(str(tmp / "missing")), ValueError, "world"),
    (lambda w, tmp: synthsae.resolve_world("tiny", orthogonalize="no"), TypeError, "orthogonalize"),
    (lambda w, tmp: synthsae.ActivationStream(w, 0, seed=0), ValueError, "batch_size"),
    (lambda w, tmp: synthsae.ActivationStream(w, 1.5, seed=0), TypeError, "batch_size"),
    (lambda w, tmp: synthsae.ActivationStream(w, 4, seed=None), TypeError, "seed"),
    (lambda w, tmp: synthsae.ActivationStream(w, 4, seed=2**64), ValueError, "seed"),
    (lambda w, tmp: synthsae.ActivationStream(w, 4, seed=0, prefetch=0), ValueError, "prefetch"),
    (lambda w, tmp: synthsae.ActivationStream(w, 4, seed=0, start_batch=-1), ValueError, "start_batch"),
    (lambda w, tmp: synthsae.ActivationStream(w, 4, seed=0, num_batches=-1), ValueError, "num_batches"),
    (lambda w, tmp: synthsae.ActivationStream(w, 4, seed=0, num_threads=0), ValueError, "num_threads"),
    (lambda w, tmp: synthsae.ActivationStream(w, 4, seed=0, dtype=torch.int32), TypeError, "dtype"),
    (
        lambda w, tmp: synthsae.ActivationStream(w, 4, seed=0, return_features="y"),
        TypeError,
        "return_features",
    ),
    (lambda w, tmp: synthsae.ActivationStream(w, 4, seed=0).batch(-1), ValueError, "k"),
    # Sizes whose feature vectors cannot fit in memory are refused by name before torch allocates them.
    (lambda w, tmp: synthsae.World(synthsae.WorldConfig(10**12, 64)), ValueError, "WorldConfig.num_features"),
    (lambda w, tmp: synthsae.World(synthsae.WorldConfig(4, 10**12)), ValueError, "WorldConfig.hidden_dim"),
]


@pytest.mark.parametrize(("call", "exc", "name"), WORLD_CASES)
def test_world_and_stream_name_the_argument_first(world, tmp_path, call, exc, name):
    with pytest.raises(exc) as info:
        call(world, tmp_path)
    assert str(info.value).startswith(name), str(info.value)


def test_a_world_too_large_for_memory_is_refused_by_name(tmp_path, capsys, monkeypatch):
    from synthsae import _core
    from synthsae.cli import main

    config = synthsae.WorldConfig(10**12, 64)
    with pytest.raises(ValueError) as info:
        synthsae.World(config)
    message = str(info.value)
    assert message.startswith(
        "WorldConfig.num_features: a world of 1,000,000,000,000 features in 64 dimensions"
    )
    assert "more than this machine has" in message
    (tmp_path / "world.json").write_text(json.dumps(config.to_dict()))
    with pytest.raises(SystemExit) as e:
        main(["world", "info", str(tmp_path / "world.json")])
    assert e.value.code == 2
    assert "error: WorldConfig.num_features: a world of 1,000,000,000,000 features" in capsys.readouterr().err
    # Orthogonalization keeps five copies of the feature vectors: a world that fits without it may not.
    small = synthsae.WorldConfig(1024, 64, seed=0)
    monkeypatch.setattr(_core, "MEMORY_LIMIT", 3 * 4 * 1024 * 64)
    synthsae.World(small, show_progress=False)
    small.orthogonalization = synthsae.OrthogonalizationConfig(num_steps=1)
    with pytest.raises(ValueError, match=r"^WorldConfig.num_features: .* orthogonalized"):
        synthsae.World(small, show_progress=False)


def _generate(tiny, path, **overrides):
    kwargs = dict(world=tiny, rows=10, out=path, seed=0, show_progress=False)
    kwargs.update(overrides)
    return synthsae.generate(**kwargs)


@pytest.mark.parametrize(
    ("overrides", "exc", "name"),
    [
        ({"world": 3}, TypeError, "world"),
        ({"out": 3}, TypeError, "out"),
        ({"rows": 0}, ValueError, "rows"),
        ({"rows": 1.5}, TypeError, "rows"),
        ({"shard_rows": 0}, ValueError, "shard_rows"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 2**64}, ValueError, "seed"),
        ({"seed": NAN}, TypeError, "seed"),
        ({"num_threads": 0}, ValueError, "num_threads"),
        ({"hidden": "yes"}, TypeError, "hidden"),
        ({"show_progress": 1}, TypeError, "show_progress"),
        ({"dtype": "int8"}, ValueError, "dtype"),
        ({"split": "ab"}, TypeError, "split"),
        ({"split": (2, 2)}, ValueError, "split index"),
        ({"split": (0, 0)}, ValueError, "split count"),
        ({"split": (0.0, 2)}, TypeError, "split index"),
    ],
)
def test_generate_names_the_argument_first(world, tmp_path, overrides, exc, name):
    with pytest.raises(exc) as info:
        _generate(world, tmp_path / "data", **overrides)
    assert str(info.value).startswith(name), str(info.value)
    assert not (tmp_path / "data").exists()  # refused before anything is written


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    world = synthsae.World(synthsae.preset("tiny"), show_progress=False)
    out = tmp_path_factory.mktemp("errors") / "data"
    synthsae.generate(world, 20, out, seed=0, shard_rows=10, show_progress=False)
    return out


@pytest.mark.parametrize(
    ("overrides", "exc", "name"),
    [
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": 1.5}, TypeError, "batch_size"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 2**64}, ValueError, "seed"),
        ({"shuffle": "yes"}, TypeError, "shuffle"),
        ({"return_features": 1}, TypeError, "return_features"),
        ({"drop_last": None}, TypeError, "drop_last"),
        ({"format": "jax"}, ValueError, "format"),
    ],
)
def test_shard_dataset_names_the_argument_first(dataset, overrides, exc, name):
    with pytest.raises(exc) as info:
        synthsae.ShardDataset(dataset, **overrides)
    assert str(info.value).startswith(name), str(info.value)


@pytest.mark.parametrize(("epoch", "exc"), [(-1, ValueError), (1.5, TypeError)])
def test_shard_dataset_epoch_is_checked(dataset, epoch, exc):
    with pytest.raises(exc, match=r"^epoch"):
        synthsae.ShardDataset(dataset).set_epoch(epoch)
