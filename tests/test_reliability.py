"""Issue 24's audit: absurd sizes are refused fast and by name, checked against this machine's memory
(``_core.MEMORY_LIMIT``) before anything is allocated or written, never an abort (findings 1-2);
corrupt world files are refused by file and tensor (finding 4)."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

import synthsae
from synthsae import _core

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


# Finding 4: a corrupt world file is refused by file and tensor, never loaded into wrong rates.


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
