"""The error contract: every bad input is refused with a ``ValueError``/``TypeError`` subclass from
:mod:`synthsae.errors` naming the argument or the file, never a panic, a hang or a silent wrong answer;
sizes are checked before allocation; interrupted writes leave nothing half-written; the command line
exits 2 for usage errors, 1 for failed runs and 3 (with a traceback) for internal errors.

Sections:

- Bad input raises ValueError/TypeError naming the argument; nothing panics.

- The argument contract for SAEs, training and evaluation: wrong types raise TypeError, bad values
  (NaN/inf and out of range included) raise ValueError, and every message starts with the argument's name.

- Absurd sizes are refused fast and by name, checked against this machine's memory
  (``_core.MEMORY_LIMIT``) before anything is allocated or written, never an abort; corrupt world
  files are refused by file and tensor; a killed ``generate`` resumes to the same bytes.

- The error contract in one place: the classes of synthsae.errors and what they derive from, the Rust
  core raising those same classes, corrupt files named by a FileFormatError, and the command line's exit
  codes (2 usage, 1 a failed run, 3 an internal error with its traceback).
"""

from __future__ import annotations

import json
import math
import pickle
import re
import shutil
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

import synthsae
from synthsae import _core, errors
from synthsae._files import read_json
from synthsae.cli import EXIT_FAILED, EXIT_INTERNAL, EXIT_USAGE, commands, main
from synthsae.errors import (
    ConfigError,
    ConfigTypeError,
    FileFormatError,
    ResourceError,
    SynthSAEError,
    UsageError,
)
from synthsae.evaluation.scoring import EvalAccumulator, evaluate, reconstruction_score
from synthsae.saes import (
    BatchTopKSAE,
    JumpReLUSAE,
    L0Autotuner,
    MatchingPursuitSAE,
    MatryoshkaBatchTopKSAE,
    ReLUSAE,
    TopKSAE,
    create_sae,
    default_matryoshka_widths,
    load_sae,
    matching_pursuit,
)
from synthsae.training.loop import TrainingDiverged, train
from tests.conftest import assert_csr_equal

# ------------------------------------------------------------------------------------------------
# Arguments and configs
# ------------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------------
# SAEs, training and evaluation inputs
# ------------------------------------------------------------------------------------------------


NAN, INF = float("nan"), float("inf")


def _common(build: Callable[..., Any]) -> list[tuple[Callable[[], Any], type[Exception], str]]:
    """Cases every architecture shares (the base constructor's arguments)."""
    return [
        (lambda: build(d_in=0), ValueError, "d_in"),
        (lambda: build(d_in=8.0), TypeError, "d_in"),
        (lambda: build(d_in=True), TypeError, "d_in"),
        (lambda: build(d_sae=-3), ValueError, "d_sae"),
        (lambda: build(d_sae="8"), TypeError, "d_sae"),
        (lambda: build(seed=-1), ValueError, "seed"),
        (lambda: build(seed=2**64), ValueError, "seed"),
        (lambda: build(seed=1.5), TypeError, "seed"),
        # Sizes whose weights cannot fit in memory are refused by name before torch allocates them.
        (lambda: build(d_sae=10**12), ValueError, "d_sae"),
        (lambda: build(d_in=10**12), ValueError, "d_in"),
    ]


def _sae(cls: type, *args: Any) -> Callable[..., Any]:
    def build(d_in: Any = 8, d_sae: Any = 8, **kwargs: Any) -> Any:
        return cls(d_in, d_sae, *args, **kwargs)

    return build


TOPK, BATCH = _sae(TopKSAE, 2), _sae(BatchTopKSAE, 2)
MATRYOSHKA, RELU = _sae(MatryoshkaBatchTopKSAE, 2, [4]), _sae(ReLUSAE, 1.0)
JUMPRELU, MP = _sae(JumpReLUSAE, 2.0), _sae(MatchingPursuitSAE, 2)

CASES = [
    *(case for build in (TOPK, BATCH, MATRYOSHKA, RELU, JUMPRELU, MP) for case in _common(build)),
    *(
        case
        for build in (TOPK, BATCH, MATRYOSHKA, RELU, JUMPRELU)
        for case in [
            (lambda build=build: build(decoder_init_norm=0), ValueError, "decoder_init_norm"),
            (lambda build=build: build(decoder_init_norm=NAN), ValueError, "decoder_init_norm"),
            (lambda build=build: build(decoder_init_norm="1"), TypeError, "decoder_init_norm"),
        ]
    ),
    *(
        case
        for build in (TOPK, BATCH, MATRYOSHKA)
        for case in [
            (lambda build=build: build(aux_coefficient=-1), ValueError, "aux_coefficient"),
            (lambda build=build: build(aux_coefficient=INF), ValueError, "aux_coefficient"),
            (
                lambda build=build: build(rescale_acts_by_decoder_norm=1),
                TypeError,
                "rescale_acts_by_decoder_norm",
            ),
        ]
    ),
    (lambda: TopKSAE(8, 8, 0), ValueError, "k"),
    (lambda: TopKSAE(8, 8, 9), ValueError, "k"),
    (lambda: TopKSAE(8, 8, 2.0), TypeError, "k"),
    (lambda: BatchTopKSAE(8, 8, NAN), ValueError, "k"),
    (lambda: BatchTopKSAE(8, 8, -1), ValueError, "k"),
    (lambda: BatchTopKSAE(8, 8, "2"), TypeError, "k"),
    (lambda: BatchTopKSAE(8, 8, 2, topk_threshold_lr=NAN), ValueError, "topk_threshold_lr"),
    (lambda: BatchTopKSAE(8, 8, 2, topk_threshold_lr=2), ValueError, "topk_threshold_lr"),
    (lambda: MatryoshkaBatchTopKSAE(8, 8, 2, [0, 4]), ValueError, "widths"),
    (lambda: MatryoshkaBatchTopKSAE(8, 8, 2, [4, 9]), ValueError, "widths"),
    (lambda: MatryoshkaBatchTopKSAE(8, 8, 2, [4.0]), TypeError, "widths"),
    (lambda: MatryoshkaBatchTopKSAE(8, 8, 2, [], use_matryoshka_aux_loss=1), ValueError, "widths"),
    (lambda: MatryoshkaBatchTopKSAE(8, 8, 2, [4], use_matryoshka_aux_loss=1), TypeError, "use_matryoshka"),
    (lambda: ReLUSAE(8, 8, INF), ValueError, "l1_coefficient"),
    (lambda: ReLUSAE(8, 8, None), TypeError, "l1_coefficient"),
    (lambda: ReLUSAE(8, 8, 1.0, l1_warm_up_steps=1.5), TypeError, "l1_warm_up_steps"),
    (lambda: ReLUSAE(8, 8, 1.0, target_l0=NAN), ValueError, "target_l0"),
    (lambda: ReLUSAE(8, 8, 1.0, target_l0=9), ValueError, "target_l0"),
    (lambda: ReLUSAE(8, 8, 1.0, autotune_start_step=-1), ValueError, "autotune_start_step"),
    (lambda: ReLUSAE(8, 8, 1.0, autotune_gain=NAN), ValueError, "autotune_gain"),
    (lambda: ReLUSAE(8, 8, 1.0, autotune_smoothing=1.5), ValueError, "autotune_smoothing"),
    (lambda: JumpReLUSAE(8, 8, INF), ValueError, "target_l0"),
    (lambda: JumpReLUSAE(8, 8, "2"), TypeError, "target_l0"),
    (lambda: JumpReLUSAE(8, 8, 2.0, l0_coefficient=-1), ValueError, "l0_coefficient"),
    (lambda: JumpReLUSAE(8, 8, 2.0, bandwidth=NAN), ValueError, "bandwidth"),
    (lambda: JumpReLUSAE(8, 8, 2.0, init_threshold=INF), ValueError, "init_threshold"),
    (lambda: JumpReLUSAE(8, 8, 2.0, autotune_smoothing=-0.1), ValueError, "autotune_smoothing"),
    (lambda: MatchingPursuitSAE(8, 8, 9), ValueError, "k"),
    (lambda: MatchingPursuitSAE(8, 8, 2, residual_threshold=NAN), ValueError, "residual_threshold"),
    (lambda: MatchingPursuitSAE(8, 8, 2, normalize_decoder=0), TypeError, "normalize_decoder"),
    (lambda: L0Autotuner(0), ValueError, "target_l0"),
    (lambda: L0Autotuner(2, gain=-1), ValueError, "autotune_gain"),
    (lambda: L0Autotuner(2, rate_smoothing=2), ValueError, "rate_smoothing"),
    (lambda: L0Autotuner(2, gain_scale=0), ValueError, "gain_scale"),
    (lambda: L0Autotuner(2, convergence_gain=NAN), ValueError, "convergence_gain"),
    (lambda: L0Autotuner(2, min_multiplier=0), ValueError, "min_multiplier"),
    (lambda: L0Autotuner(2, max_multiplier=INF), ValueError, "max_multiplier"),
    (lambda: L0Autotuner(2, min_multiplier=2, max_multiplier=1), ValueError, "min_multiplier"),
    (lambda: create_sae("no-such-architecture", 8, 8, l0=2), ValueError, "architecture"),
    (lambda: create_sae("topk", 8, 8, l0=NAN), ValueError, "l0"),
    (lambda: create_sae("topk", 8, 8, l0="2"), TypeError, "l0"),
    (lambda: create_sae("mp", 8, 8, l0=0.4), ValueError, "l0"),
    (lambda: default_matryoshka_widths(0), ValueError, "d_sae"),
    (lambda: matching_pursuit(torch.zeros(2, 4), torch.eye(4), -1), ValueError, "max_iterations"),
    (lambda: matching_pursuit(torch.zeros(2, 4), torch.eye(4), 1.0), TypeError, "max_iterations"),
]


@pytest.mark.parametrize(("build", "exc", "name"), CASES)
def test_sae_arguments(build: Callable[[], Any], exc: type[Exception], name: str) -> None:
    with pytest.raises(exc) as info:
        build()
    assert str(info.value).startswith(name), str(info.value)


def test_an_sae_too_large_for_memory_names_the_size(tmp_path: Any) -> None:
    with pytest.raises(ValueError) as info:
        TopKSAE(64, 10**12, k=8)
    message = str(info.value)
    assert message.startswith("d_sae: an SAE of 1,000,000,000,000 latents in 64 dimensions"), message
    assert "more than this machine has" in message
    # A saved config that asks for such a size: the error names the file and the field.
    TopKSAE(8, 16, 2, seed=0).save(tmp_path / "sae")
    cfg = tmp_path / "sae" / "cfg.json"
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "d_sae": 10**12}))
    with pytest.raises(ValueError) as info:
        load_sae(tmp_path / "sae")
    assert str(info.value).startswith(f"{cfg}: d_sae: an SAE of 1,000,000,000,000 latents"), str(info.value)


ZERO_ROW_SAES = [
    lambda sparse: TopKSAE(8, 16, 3, sparse=sparse, seed=0),
    lambda sparse: BatchTopKSAE(8, 16, 3, sparse=sparse, seed=0),
    lambda sparse: MatryoshkaBatchTopKSAE(8, 16, 3, [4, 8], sparse=sparse, seed=0),
]


@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("build", ZERO_ROW_SAES)
def test_a_zero_decoder_row_adds_nothing(build: Callable[[bool], Any], sparse: bool) -> None:
    """With rescaled activations a zero decoder row gives its latent 0 and must add 0 (not 0/0 = NaN);
    the other rows' results are bit-identical to those of an SAE where that row is anything else."""
    sae, other = build(sparse), build(sparse)
    with torch.no_grad():
        sae.W_dec[5] = 0.0
        other.W_dec[5] = torch.arange(1.0, 9.0)
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))
    for model in (sae, other):
        model.eval()
    with torch.no_grad():
        z = sae.encode(x)
        assert torch.isfinite(z).all() and (z[:, 5] == 0).all()
        x_hat = sae.decode(z)
        assert torch.isfinite(x_hat).all()
        assert torch.equal(x_hat, other.decode(z))
        units = synthsae.evaluation.scoring.effective_decoder(sae)
        assert (units[5] == 0).all() and torch.isfinite(units).all()
    sae.train()
    for dead in ([5], [3, 5], list(range(16))):  # AuxK over a few dead latents and over many
        dead_mask = torch.zeros(16, dtype=torch.bool)
        dead_mask[dead] = True
        out = sae.training_forward(x, dead_mask=dead_mask)
        sae.zero_grad()
        out.loss.backward()
        assert all(math.isfinite(float(v)) for v in out.losses.values()), out.losses
        assert torch.isfinite(out.reconstruction).all() and torch.isfinite(out.latents).all()
        assert all(torch.isfinite(p.grad).all() for p in sae.parameters() if p.grad is not None)


@pytest.fixture(scope="module")
def world() -> synthsae.World:
    config = synthsae.preset("tiny")
    return synthsae.World(config)


TRAIN_CASES = [
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"batch_size": 2.0}, TypeError, "batch_size"),
    ({"total_samples": -1}, ValueError, "total_samples"),
    ({"lr": 0}, ValueError, "lr"),
    ({"lr": NAN}, ValueError, "lr"),
    ({"lr": "1e-3"}, TypeError, "lr"),
    ({"lr_end": -1.0}, ValueError, "lr_end"),
    ({"lr_end": INF}, ValueError, "lr_end"),
    ({"seed": -1}, ValueError, "seed"),
    ({"seed": 2**64}, ValueError, "seed"),
    ({"seed": None}, TypeError, "seed"),
    ({"lr_warmup_steps": -1}, ValueError, "lr_warmup_steps"),
    ({"lr_decay_steps": 0.5}, TypeError, "lr_decay_steps"),
    ({"eval_every": 0}, ValueError, "eval_every"),
    ({"eval_samples": -1}, ValueError, "eval_samples"),
    ({"checkpoint_every": 0}, ValueError, "checkpoint_every"),
    ({"dead_window": 0}, ValueError, "dead_window"),
    ({"log_every": 0}, ValueError, "log_every"),
    ({"max_grad_norm": 0}, ValueError, "max_grad_norm"),
    ({"max_grad_norm": INF}, ValueError, "max_grad_norm"),
    ({"adam_betas": (0.9, 1.0)}, ValueError, "adam_betas"),
    ({"adam_betas": (2.0, 0.9)}, ValueError, "adam_betas"),  # once torch's message
    ({"adam_betas": (0.9, NAN)}, ValueError, "adam_betas"),
    ({"adam_betas": 0.9}, TypeError, "adam_betas"),
    ({"resume": "yes"}, TypeError, "resume"),
    ({"log_to_wandb": 1}, TypeError, "log_to_wandb"),
    ({"autocast": 1}, TypeError, "autocast"),
]


@pytest.mark.parametrize(("overrides", "exc", "name"), TRAIN_CASES)
def test_train_arguments(world: synthsae.World, overrides: dict[str, Any], exc: type, name: str) -> None:
    sae = TopKSAE(world.hidden_dim, 16, 2, seed=0)
    kwargs: dict[str, Any] = {"total_samples": 64, "batch_size": 32, "show_progress": False, **overrides}
    with pytest.raises(exc) as info:
        train(sae, world, **kwargs)
    assert str(info.value).startswith(name), str(info.value)
    assert int(sae.n_steps) == 0  # refused before any step


@pytest.mark.parametrize(
    ("overrides", "exc", "name"),
    [
        ({"num_samples": -1}, ValueError, "num_samples"),
        ({"num_samples": 1.5}, TypeError, "num_samples"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": "0"}, TypeError, "seed"),
        ({"device": "bogus"}, ValueError, "device"),
        ({"device": "cuda:99"}, ValueError, "device"),
        ({"device": 1.5}, TypeError, "device"),
    ],
)
def test_evaluate_arguments(world: synthsae.World, overrides: dict[str, Any], exc: type, name: str) -> None:
    sae = TopKSAE(world.hidden_dim, 16, 2, seed=0)
    with pytest.raises(exc) as info:
        evaluate(sae, world, **{"num_samples": 64, "show_progress": False, **overrides})
    assert str(info.value).startswith(name), str(info.value)


def test_evaluate_scores_an_sae_with_a_zero_decoder_row(world: synthsae.World) -> None:
    sae = TopKSAE(world.hidden_dim, 16, 2, seed=0)
    with torch.no_grad():
        sae.W_dec[3] = 0.0
    for extended in (True, False):
        result = evaluate(sae, world, num_samples=256, extended=extended, show_progress=False)
        assert math.isfinite(result.explained_variance) and math.isfinite(result.shrinkage)
        assert result.latent_precision[3] == 0.0  # the zero row's latent never fires


@pytest.mark.parametrize(("mean_rows", "exc"), [(0, ValueError), (True, TypeError), (2.0, TypeError)])
def test_accumulator_mean_rows(mean_rows: Any, exc: type) -> None:
    with pytest.raises(exc, match=r"^mean_rows"):
        EvalAccumulator(np.eye(4, dtype=np.float32), np.eye(4, dtype=np.float32), mean_rows=mean_rows)


@pytest.mark.parametrize(
    ("args", "exc", "name"),
    [
        ((NAN, 1.0, 2.0), ValueError, "loss_clean"),
        ((1.0, INF, 2.0), ValueError, "loss_reconstructed"),
        ((1.0, 1.5, "x"), TypeError, "loss_zero_ablation"),
    ],
)
def test_reconstruction_score_arguments(args: tuple[Any, ...], exc: type, name: str) -> None:
    with pytest.raises(exc) as info:
        reconstruction_score(*args)
    assert str(info.value).startswith(name), str(info.value)


# ------------------------------------------------------------------------------------------------
# Sizes, corrupt files, interrupted writes
# ------------------------------------------------------------------------------------------------


WEIGHTS = "synthetic_model.safetensors"
HUGE = 10**15  # rows or features: petabytes, on any machine this suite runs on


def test_the_limit_is_this_machines_memory():
    # Linux: physical memory (sysconf), which is below what a Rust allocation may address.
    assert 2**20 < _core.MEMORY_LIMIT <= 2**63 - 1


@pytest.mark.parametrize("n", [HUGE, 2**62])
def test_sampling_a_huge_count_names_n(n):
    with pytest.raises(ValueError, match=r"^n: the row pointers of \d+ rows would need .* more than"):
        synthsae.sample_independent(np.full(10, 0.1), n, seed=0)


def test_an_output_that_fits_its_row_pointers_but_not_its_entries_is_refused_from_its_density():
    # Every feature fires: 8 bytes of entries per feature and row. Rows whose pointers (8 bytes
    # each) fit but whose 1,000 entries each do not: refused after the first rows, naming n.
    n = _core.MEMORY_LIMIT // 1000
    with pytest.raises(ValueError, match=r"^n: \d+ rows \(measured 1000.00 entries per row"):
        synthsae.sample_independent(np.ones(1000), n, seed=0)


def test_world_sampling_and_streams_name_their_count(world):
    with pytest.raises(ValueError, match=r"^n: the row pointers"):
        world.sample_features(HUGE, seed=0)
    with pytest.raises(ValueError, match=r"^n: the row pointers"):
        world.sample(10**12, seed=0)
    with pytest.raises(ValueError, match=r"^batch_size: .* rows in each of 3 batches in flight"):
        synthsae.ActivationStream(world, HUGE, seed=0)
    with pytest.raises(TypeError, match=r"^world must be a synthsae.World"):
        synthsae.ActivationStream("tiny", 10, seed=0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "make",
    [
        lambda n: synthsae.zipfian_firing_probabilities(n),
        lambda n: synthsae.linear_firing_probabilities(n),
        lambda n: synthsae.constant_firing_probabilities(n, 0.1),
        lambda n: synthsae.random_firing_probabilities(n),
    ],
)
def test_firing_probabilities_of_a_huge_count_name_num_features(make):
    with pytest.raises(ValueError, match=r"^num_features: .* firing probabilities would need"):
        make(10**12)
    with pytest.raises(ValueError, match=r"^num_features must be <= 9223372036854775807"):
        make(2**64)


def test_the_core_refuses_huge_firing_counts_itself():
    # The bindings check too: an entry that skips the Python layer cannot abort either.
    with pytest.raises(ValueError, match=r"^num_features: 1000000000000 firing probabilities"):
        _core.constant_firing_probabilities(10**12, 0.1)


def test_generate_refuses_a_huge_shard_or_plan_before_writing_anything(world, tmp_path):
    out = tmp_path / "data"
    with pytest.raises(ValueError, match=r"^shard_rows: shards of 1,000,000,000,000,000 rows"):
        synthsae.generate(world, HUGE, out, seed=0, shard_rows=HUGE, show_progress=False)
    with pytest.raises(ValueError, match=r"^rows: a plan of 1,000,000,000 shards of 1,000 rows"):
        synthsae.generate(world, 10**12, out, seed=0, shard_rows=1000, show_progress=False)
    assert not out.exists()


def test_a_manifest_whose_rows_were_edited_is_refused_without_building_its_plan(world, tmp_path):
    out = tmp_path / "data"
    synthsae.generate(world, 300, out, seed=0, shard_rows=100, show_progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["rows"] = 10**12
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"3 shards listed, but rows / shard_rows gives 10000000000"):
        synthsae.verify(out)


# A corrupt world file is refused by file and tensor, never loaded into wrong rates.


@pytest.fixture(scope="module")
def saved(tmp_path_factory, world):
    path = tmp_path_factory.mktemp("world") / "tiny"
    world.save(path)
    return path


def _corrupt(saved, tmp_path, edit):
    path = tmp_path / "corrupt"
    shutil.copytree(saved, path)
    tensors = load_file(str(path / WEIGHTS))
    edit(tensors)
    save_file(tensors, str(path / WEIGHTS))
    return path


def _set(key, index, value):
    def edit(tensors):
        tensors[key][index] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set("feature_vectors", (3, 2), float("nan")), "feature_vectors has NaN or infinite entries"),
        (_set("bias", 0, float("inf")), "bias has NaN or infinite entries"),
        (
            lambda t: t.update(feature_vectors=t["feature_vectors"].int()),
            "feature_vectors must be a floating",
        ),
        (_set("correlation_factor", (5, 0), 10.0), "correlation_factor row 5 and correlation_diag"),
        (_set("correlation_diag", 7, 0.0), r"correlation_factor row 7 and correlation_diag\[7\]"),
    ],
)
def test_corrupt_tensors_are_refused_by_file_and_tensor(saved, tmp_path, edit, message):
    path = _corrupt(saved, tmp_path, edit)
    with pytest.raises(ValueError, match=f"^{re.escape(str(path / WEIGHTS))}: {message}"):
        synthsae.World.load(path)


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("hierarchy.json", b'{"roots": "x"}', ""),
        ("hierarchy.json", b'{"roots": [', "JSONDecodeError"),
        ("hierarchy.json", b"[" * 1500 + b"]" * 1500, ""),
        ("synthetic_model_config.json", b'{"num_features": "\xff\xfe"}', "UnicodeDecodeError"),
        ("synthetic_model_config.json", b"[1]", ""),
        ("synthetic_model_config.json", b"{", "JSONDecodeError"),
    ],
)
def test_malformed_json_names_its_file(saved, tmp_path, file, content, message):
    path = tmp_path / "bad"
    shutil.copytree(saved, path)
    (path / file).write_bytes(content)
    with pytest.raises(ValueError, match=f"^{re.escape(str(path / file))}: .*{message}"):
        synthsae.World.load(path)


def test_a_hierarchy_that_does_not_fit_the_world_names_its_file(saved, tmp_path):
    path = tmp_path / "bad"
    shutil.copytree(saved, path)
    tree = {"roots": [{"feature_index": 10**6, "children": []}]}
    (path / "hierarchy.json").write_text(json.dumps(tree))
    with pytest.raises(ValueError, match=f"^{re.escape(str(path / 'hierarchy.json'))}: .*out of range"):
        synthsae.World.load(path)


# Metric inputs, wrong types, seeds, an SAE that starts at the answer, odd dtypes.


@pytest.fixture(scope="module")
def dictionary():
    return np.random.default_rng(0).standard_normal((128, 64)).astype(np.float32)


def test_any_layout_and_byte_order_gives_the_same_mcc(world, dictionary):
    g = world.feature_vectors.numpy()
    expected = synthsae.mcc(dictionary, g)
    assert synthsae.mcc(dictionary[::-1], g) == pytest.approx(expected, abs=1e-6)  # rows reversed
    assert synthsae.mcc(dictionary.astype(">f4"), g) == expected
    assert synthsae.mcc(np.asfortranarray(dictionary), g) == expected
    small = np.round(dictionary * 20)
    assert synthsae.mcc(small.astype(np.int8), g) == synthsae.mcc(small.astype(np.int64), g)
    assert synthsae.mcc(small.astype(np.int16), g) == synthsae.mcc(small.astype(np.int32), g)


@pytest.mark.parametrize(
    "bad",
    [np.array([object()] * 4), "abc", None, [[1.0, 2.0], [1.0]], np.ones((4, 64), dtype=np.complex64)],
)
def test_non_numeric_metric_inputs_name_the_argument(world, dictionary, bad):
    g = world.feature_vectors.numpy()
    with pytest.raises(TypeError, match=r"^decoder must be"):
        synthsae.mcc(bad, g)
    with pytest.raises(TypeError, match=r"^gt_features must be"):
        synthsae.feature_uniqueness(dictionary, bad)


def test_nan_in_a_decoder_row_is_refused_by_every_metric(world, dictionary):
    d = dictionary.copy()
    d[3, 0] = np.nan
    g = world.feature_vectors.numpy()
    for metric in (synthsae.mcc, synthsae.feature_uniqueness):
        with pytest.raises(ValueError, match=r"^decoder must be finite"):
            metric(d, g)


def test_evaluate_and_its_accumulator_refuse_wrong_types_by_name(world, dictionary):
    sae = synthsae.saes.BatchTopKSAE(64, 128, k=8, seed=0)

    class NumpySAE:
        W_dec = dictionary

        def encode(self, x):
            return x

        def decode(self, z):
            return z

    with pytest.raises(TypeError, match=r"^sae.W_dec must be a floating-point torch tensor"):
        synthsae.evaluate(NumpySAE(), world, num_samples=16)
    with pytest.raises(TypeError, match=r"^world must be a synthsae.World"):
        synthsae.evaluate(sae, "tiny", num_samples=16)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^batch_size: .* rows per batch would need"):
        synthsae.evaluate(sae, world, num_samples=16, batch_size=HUGE)
    with pytest.raises(ValueError, match=r"^num_samples must be <= 9223372036854775807"):
        synthsae.evaluate(sae, world, num_samples=2**64)  # rows are streamed: only their index is bounded
    g = world.feature_vectors
    acc = synthsae.EvalAccumulator(dictionary, g, mean=[0.0] * 64)  # a list is a fine mean
    x = np.zeros((2, 64), dtype=np.complex64)
    z, a = np.zeros((2, 128), np.float32), world.sample_features(2, seed=0)
    with pytest.raises(TypeError, match=r"^hidden must be an array of real numbers"):
        acc.add_batch(x, x.real, z, a)


def test_world_seeds_leave_room_for_their_sub_seeds():
    from dataclasses import replace

    with pytest.raises(ValueError, match=r"^WorldConfig.seed must be <= 18446744073709551611"):
        replace(synthsae.preset("tiny"), seed=2**64 - 4)
    with pytest.raises(ValueError, match=r"^seed must be <= 18446744073709551615"):
        synthsae.random_correlation_matrix(5, seed=2**64)


def test_an_unseeded_sae_does_not_start_at_a_world_built_under_the_same_manual_seed():
    import torch

    from synthsae.evaluation.recovery import random_baseline

    # The reproducer: d_sae = N, torch.manual_seed before both. Drawing the init's normals
    # from the global generator reproduced the dictionary (MCC 1.000). Chance is 0.401 here, with a
    # spread of 0.003 over random dictionaries (seeds 0-4): 0.03 is ten spreads, 1.0 is far outside.
    torch.manual_seed(0)
    world = synthsae.World(synthsae.preset("tiny"), show_progress=False)
    sae = synthsae.saes.BatchTopKSAE(64, 1024, k=15)
    chance = random_baseline(world, 1024)["baseline/mcc"]
    assert synthsae.mcc(sae.W_dec, world.feature_vectors) < chance + 0.03
    # torch.manual_seed still reproduces an unseeded init.
    torch.manual_seed(1)
    first = synthsae.saes.BatchTopKSAE(64, 1024, k=15).W_dec
    torch.manual_seed(1)
    assert torch.equal(synthsae.saes.BatchTopKSAE(64, 1024, k=15).W_dec, first)


def test_bfloat16_inputs_are_read_as_float32_and_dates_are_not_numbers():
    import torch

    p = torch.full((10,), 0.25, dtype=torch.bfloat16)
    assert_csr_equal(
        synthsae.sample_independent(p, 50, seed=0), synthsae.sample_independent(p.float(), 50, seed=0)
    )
    cost = torch.rand(5, 5, generator=torch.Generator().manual_seed(0)).bfloat16()
    rows, cols = synthsae.linear_sum_assignment(cost)
    expected = synthsae.linear_sum_assignment(cost.float())
    assert np.array_equal(rows, expected[0]) and np.array_equal(cols, expected[1])
    with pytest.raises(TypeError, match=r"^cost_matrix must be real numbers, got dtype timedelta64"):
        synthsae.linear_sum_assignment(np.arange(16).astype("timedelta64[s]").reshape(4, 4))


# Usage errors on the command line exit 2 with a message, not a traceback.


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("[1]", "must hold a JSON object, got list"),
        ('{"architecture": "batchtopk", "d_in": 64, "d_sae": 128, "bogus": 1}', "unexpected keyword"),
        ("{", "JSONDecodeError"),
    ],
)
def test_eval_of_a_malformed_sae_directory_is_a_usage_error(tmp_path, capsys, config, message):
    from synthsae.cli import main

    (tmp_path / "cfg.json").write_text(config)
    with pytest.raises(SystemExit) as e:
        main(["eval", "--sae", str(tmp_path), "--world", "tiny"])
    assert e.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["sample", "--world", "tiny", "--rows", "10", "--out", "{tmp}/missing/x.safetensors"],
            "does not exist",
        ),
        (["demo", "--features", str(2**64)], "num_features must be <="),
        (
            ["sample", "--world", "tiny", "--rows", str(HUGE), "--out", "{tmp}/x.safetensors"],
            "n: the row pointers",
        ),
        (["bench", "--l0", "inf", "--out", "{tmp}/sweep"], "L0 must be finite"),
    ],
)
def test_impossible_requests_exit_2_and_write_nothing(tmp_path, capsys, argv, message):
    from synthsae.cli import main

    with pytest.raises(SystemExit) as e:
        main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# SIGKILL anywhere in `synthsae generate`, then the documented resume, gives the bytes of an
# uninterrupted run.


def _files(out):
    """Every file of a dataset but the manifest's bookkeeping (timestamps, hosts), by name."""
    skip = ("manifest.json", ".manifest.lock", "records")
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and not str(p.relative_to(out)).startswith(skip)
    }


def _stages(shards: int) -> list[tuple[str, Any]]:
    """20 moments to kill a run at, each the first time its condition holds in the output directory."""

    def has(pattern):
        return lambda out: any(out.glob(pattern))

    stages = [
        ("manifest being written", has(".manifest.json.tmp-*")),
        ("manifest written", has("manifest.json")),
        ("world/ being written", has(".world.tmp-*/*")),
        ("world/ renamed", has("world/synthetic_model.safetensors")),
    ]
    for i in range(0, shards, 2):
        stages.append((f"shard {i} being written", has(f".shard-{i:06d}.safetensors.tmp-*")))
        stages.append((f"shard {i + 1} written", has(f"shard-{i + 1:06d}.safetensors")))
    return stages + [("the end", lambda out: False)] * (20 - len(stages))


@pytest.mark.slow
def test_generate_resumes_to_identical_bytes_after_a_kill_at_any_point(world, tmp_path, capsys):
    import os
    import subprocess
    import sys
    import time

    from synthsae.cli import main

    world_dir = tmp_path / "world"
    world.save(world_dir)
    flags = ["--world", str(world_dir), "--rows", "48000", "--shard-rows", "3000", "--hidden", "--seed", "3"]
    quiet = ["--quiet", "--threads", "1"]
    assert main(["generate", *quiet, *flags, "--out", str(tmp_path / "full")]) == 0
    expected = _files(tmp_path / "full")
    assert len(expected) == 16 + 3  # the shards and the world's three files
    landed = []
    for k, (stage, reached) in enumerate(_stages(16)):
        out = tmp_path / f"killed-{k}"
        command = [sys.executable, "-m", "synthsae", "generate", *quiet, *flags, "--out", str(out)]
        proc = subprocess.Popen(
            command, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while proc.poll() is None and not (out.is_dir() and reached(out)) and time.monotonic() < deadline:
            time.sleep(0.0005)
        proc.kill()  # SIGKILL (nothing if the run already finished: the "end" stages)
        proc.wait()
        started = (out / "manifest.json").is_file()
        landed.append((stage, started))
        # The documented resume once manifest.json exists (it is written before world/, with what
        # rebuilds the world); a run killed before that recorded nothing, and its command reruns.
        assert main(["generate", *quiet, "--out", str(out), *([] if started else flags)]) == 0, stage
        assert synthsae.verify(out).ok, stage
        assert _files(out) == expected, stage
        assert not [p.name for p in out.iterdir() if ".tmp-" in p.name], stage  # the dead writer's leftovers
    capsys.readouterr()
    assert all(started for stage, started in landed if not stage.startswith("manifest")), landed


def test_the_documented_resume_rebuilds_a_world_that_was_never_finished(tmp_path, capsys):
    from synthsae.cli import main

    out = tmp_path / "data"
    flags = ["--world", "tiny", "--rows", "6000", "--shard-rows", "2000", "--quiet"]
    assert main(["generate", *flags, "--out", str(out)]) == 0
    expected = _files(out)
    # What a kill while world/ was written leaves: the manifest, no world/, a dead writer's temporary.
    shutil.rmtree(out / "world")
    (out / "shard-000001.safetensors").unlink()
    assert main(["generate", "--quiet", "--out", str(out)]) == 0  # rebuilt from the manifest's config
    assert synthsae.verify(out).ok and _files(out) == expected
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["world_source"]["config"] == synthsae.preset("tiny").to_dict()
    # A world that cannot be rebuilt (its source gone) is named, with what to do.
    manifest["world_source"] = None
    (out / "manifest.json").write_text(json.dumps(manifest))
    shutil.rmtree(out / "world")
    with pytest.raises(SystemExit) as e:
        main(["generate", "--quiet", "--out", str(out)])
    assert e.value.code == 2 and "pass --world" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# The exception classes and the command line's exit codes
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (ConfigError, ValueError),
        (ConfigTypeError, TypeError),
        (FileFormatError, ValueError),
        (ResourceError, ValueError),
        (TrainingDiverged, RuntimeError),
    ],
)
def test_every_class_is_a_synthsae_error_and_still_its_builtin(cls, builtin):
    assert issubclass(cls, SynthSAEError) and issubclass(cls, builtin)


def test_the_hierarchy_keeps_kinds_apart():
    assert issubclass(UsageError, SynthSAEError) and not issubclass(UsageError, ValueError)
    assert not issubclass(ConfigTypeError, ValueError)  # except ValueError keeps meaning "a bad value"
    assert not issubclass(ResourceError, MemoryError)  # refused before any allocation
    for a, b in [
        (ConfigError, FileFormatError),
        (ConfigError, ResourceError),
        (FileFormatError, ResourceError),
    ]:
        assert not issubclass(a, b) and not issubclass(b, a)
    assert synthsae.ConfigError is errors.ConfigError and synthsae.errors is errors
    assert commands.UsageError is UsageError


def test_a_file_format_error_carries_its_path_and_pickles(tmp_path):
    e = FileFormatError(f"{tmp_path / 'x.json'}: broken", tmp_path / "x.json")
    assert e.path == tmp_path / "x.json"
    again = pickle.loads(pickle.dumps(e))
    assert type(again) is FileFormatError and again.path == e.path and str(again) == str(e)
    assert FileFormatError("no path").path is None


@pytest.mark.parametrize(
    ("call", "cls", "message"),
    [
        (lambda: _core.zipfian_firing_probabilities(0, 1.0, 0.3, 0.01), ConfigError, "num_features: must be"),
        (
            lambda: _core.linear_sum_assignment(np.zeros((2, 2), dtype=np.int32)),
            ConfigTypeError,
            "cost_matrix must be a 2-D float32 or float64 array",
        ),
        (
            lambda: _core.zipfian_firing_probabilities(10**18, 1.0, 0.3, 0.01),
            ResourceError,
            "more than this machine has",
        ),
    ],
    ids=["invalid-value", "invalid-type", "resource"],
)
def test_each_rust_error_kind_arrives_as_its_class(call, cls, message):
    with pytest.raises(cls, match=message) as info:
        call()
    assert type(info.value) is cls  # the very class of synthsae.errors, not a look-alike


def test_python_argument_checks_raise_config_errors():
    with pytest.raises(ConfigError, match=r"^num_features"):
        synthsae.zipfian_firing_probabilities(0, 1.0, 0.3, 0.01)
    with pytest.raises(ConfigTypeError, match=r"^num_features"):
        synthsae.zipfian_firing_probabilities("many", 1.0, 0.3, 0.01)


def test_a_corrupt_json_file_is_a_file_format_error_naming_it(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": ')
    with pytest.raises(FileFormatError, match=f"^{bad}") as info:
        read_json(bad)
    assert info.value.path == bad


def test_a_corrupt_world_directory_is_a_file_format_error_naming_the_file(tmp_path):
    from synthsae.world.io import CONFIG_FILE, WEIGHTS_FILE

    (tmp_path / CONFIG_FILE).write_text("[1, 2")
    (tmp_path / WEIGHTS_FILE).write_bytes(b"")
    with pytest.raises(FileFormatError) as info:
        synthsae.World.load(tmp_path)
    assert str(tmp_path / CONFIG_FILE) in str(info.value)
    assert info.value.path == tmp_path / CONFIG_FILE


def test_a_corrupt_manifest_is_a_file_format_error_naming_it(tmp_path):
    (tmp_path / "manifest.json").write_text('{"format": "something else"}')
    with pytest.raises(FileFormatError, match="not a valid synthsae manifest") as info:
        synthsae.verify(tmp_path)
    assert info.value.path == tmp_path / "manifest.json"


def test_a_truncated_checkpoint_is_a_file_format_error_naming_it(tmp_path):
    from synthsae.training import checkpoints

    file = tmp_path / "checkpoint.safetensors"
    file.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(FileFormatError, match=f"^{file}: unreadable checkpoint") as info:
        checkpoints.load(file, "cpu")
    assert info.value.path == file


def _exit(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code, capsys.readouterr().err


def test_cli_a_bad_flag_exits_2(capsys):
    code, err = _exit(["demo", "--rows", "x"], capsys)
    assert code == EXIT_USAGE == 2 and "error" in err


def test_cli_a_bad_value_rejected_by_the_core_exits_2(capsys):
    code, err = _exit(["demo", "--min-prob", "0.9"], capsys)
    assert code == 2 and "synthsae demo: error:" in err and "Traceback" not in err


def test_cli_a_corrupt_input_file_exits_1_naming_it(tmp_path, capsys):
    manifest = tmp_path / "manifest.json"
    manifest.write_text("{not json")
    code, err = _exit(["verify", str(tmp_path)], capsys)
    assert code == EXIT_FAILED == 1
    assert f"synthsae verify: failed: {manifest}" in err and "Traceback" not in err


def test_cli_a_usage_error_exits_2(monkeypatch, capsys):
    def refuse(args):
        raise UsageError("--out x exists; pass --overwrite to replace it")

    monkeypatch.setattr(commands, "run_demo", refuse)
    code, err = _exit(["demo"], capsys)
    assert code == 2 and err == "synthsae demo: error: --out x exists; pass --overwrite to replace it\n"


@pytest.mark.parametrize(
    "raised", [KeyError("rows"), AssertionError("unreachable"), ValueError("shapes differ")]
)
def test_cli_an_internal_error_shows_its_traceback_and_asks_for_a_report(monkeypatch, capsys, raised):
    """A KeyError, an AssertionError, or a ValueError raised outside synthsae's code (here: this test
    file, as numpy or torch would) is a bug, not a message for users."""

    def broken(args):
        raise raised

    monkeypatch.setattr(commands, "run_demo", broken)
    code, err = _exit(["demo"], capsys)
    assert code == EXIT_INTERNAL == 3
    lines = err.rstrip("\n").splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert any(line.startswith(type(raised).__name__) for line in lines)
    assert lines[-1] == "synthsae demo: internal error; please report it with the traceback above"


@pytest.mark.parametrize(
    ("raised", "code"),
    [
        (OSError(28, "No space left on device"), 1),
        (RuntimeError("lost its Dask workers"), 1),
        (TrainingDiverged("training diverged at step 3"), 1),
        (ResourceError("n: 10^15 rows would need 1 PiB of memory"), 2),
        (FileNotFoundError("/no/such/world is not a world directory"), 2),
        (FileExistsError("out exists and is not empty; pass --overwrite"), 2),
    ],
)
def test_cli_failed_runs_exit_1_and_refusals_before_any_work_exit_2(monkeypatch, capsys, raised, code):
    def run(args):
        raise raised

    monkeypatch.setattr(commands, "run_demo", run)
    got, err = _exit(["demo"], capsys)
    assert got == code and str(raised) in err and "Traceback" not in err
