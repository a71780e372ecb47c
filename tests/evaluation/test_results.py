"""Typed evaluation results, and results and sweeps written by older versions staying readable.

``tests/data/sweep-schema2`` is a real schema-2 sweep (``synthsae bench --preset tiny --saes
topk,batchtopk --l0 6 --samples 20480 --eval-samples 4096 --width 32``) without the SAE weights. Its
``topk`` run is as written; its ``batchtopk`` run and ``bench.json`` are edited to look like an older
writer's: the run lacks ``decoder_rho_mm``, the matched classification, the per-feature matched-latent
arrays, ``feature_split_count``, the union and absorption-fraction figures and the chance level, and the
header lacks the orthogonality settings.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import synthsae
from synthsae.bench.records import read_run
from synthsae.bench.report import build_report, table
from synthsae.cli import main
from synthsae.evaluation.scoring import EvalResult

FIXTURE = Path(__file__).parents[1] / "data" / "sweep-schema2"
NEW, OLD = "topk-l0-6-seed-0", "batchtopk-l0-6-seed-0"
#: The fields the older writer of the fixture's batchtopk run did not record.
LATER_FIELDS = (
    "matched_precision",
    "matched_recall",
    "matched_f1",
    "feature_mcc_precision",
    "feature_mcc_recall",
    "feature_mcc_abs_cos",
    "feature_split_count",
)


def fixture_result(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((FIXTURE / "runs" / name / "run.json").read_text())["result"]
    return result


@pytest.fixture(scope="module")
def fresh() -> EvalResult:
    """A result of today's evaluate(): every field and every typed part present."""
    world = synthsae.World(synthsae.preset("tiny"))
    sae = synthsae.saes.TopKSAE(world.hidden_dim, 48, 4, seed=0)
    return synthsae.evaluate(sae, world, num_samples=2048, show_progress=False)


def test_report_reads_a_sweep_from_an_older_writer(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    shutil.copytree(FIXTURE, sweep)
    assert main(["report", str(sweep)]) == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert lines[0].split()[:4] == ["architecture", "L0", "seeds", "MCC"]
    rows = {line.split()[0]: line.split() for line in lines[2:4]}
    assert set(rows) == {"topk", "batchtopk"}
    assert "2 runs from 1 sweep(s)" in printed
    report = json.loads((sweep / "report.json").read_text())
    assert [r["name"] for r in report["runs"]] == [OLD, NEW]
    assert report["failed"] == [] and len(report["plots"]) == 5
    metrics = {g["architecture"]: g["metrics"] for g in report["summary"]}
    # what the older writer recorded is reported; what it did not is NaN, not an error
    new, old = fixture_result(NEW), fixture_result(OLD)
    assert metrics["topk"]["mF1"]["mean"] == new["matched_f1"]
    assert metrics["batchtopk"]["MCC"]["mean"] == old["mcc"]
    assert metrics["batchtopk"]["rec@.5"]["mean"] == old["recovery"]["recovery/matched@0.5"]
    assert metrics["batchtopk"]["mF1"]["mean"] is None and metrics["batchtopk"]["a.frac"]["mean"] is None
    assert metrics["batchtopk"]["dec.ρmm"]["mean"] is None
    assert rows["batchtopk"][5] == "nan"  # the mF1 column


def test_report_reads_a_result_without_recovery(tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(FIXTURE, sweep)
    run = sweep / "runs" / OLD / "run.json"
    record = json.loads(run.read_text())
    del record["result"]["recovery"]
    run.write_text(json.dumps(record))
    report = build_report([sweep])
    assert "batchtopk" in table(report)
    assert {g["architecture"]: g for g in report["summary"]}["batchtopk"]["metrics"]["rec@.5"]["mean"] is None
    result = EvalResult.from_dict(read_run(run)["result"])
    assert result.recovery == {} and result.feature_recovery is None and result.baseline is None
    assert result.to_dict()["recovery"] == {}


@pytest.mark.parametrize("name", [NEW, OLD])
def test_fixture_results_read_and_write_back_unchanged(name):
    data = fixture_result(name)
    result = EvalResult.from_dict(data)
    # byte-compatible: the same JSON, keys in the same order
    assert json.dumps(result.to_dict(), indent=1) == json.dumps(data, indent=1)
    assert result.mcc == data["mcc"] and result.latent_abs_cos.dtype == np.float32
    assert result.feature_recovery is not None and result.splitting is not None
    assert result.absorption is not None
    if name == NEW:
        assert all(getattr(result, f) is not None for f in LATER_FIELDS)
        assert result.absorption.fraction is not None and result.baseline is not None
        assert result.splitting.union_recall == data["recovery"]["splitting/union_recall"]
    else:
        assert all(getattr(result, f) is None for f in LATER_FIELDS)
        assert result.absorption.fraction is None and result.absorption.fraction_parents is None
        assert result.splitting.union_recall is None and result.baseline is None
        log = result.to_log_dict()
        assert not any(k.startswith(("matched_classification/", "baseline/")) for k in log)
        assert log["absorption/full_rate"] == data["recovery"]["absorption/full_rate"]


def test_round_trip_of_a_fresh_result(fresh):
    data = json.loads(json.dumps(fresh.to_dict()))
    again = EvalResult.from_dict(data)
    assert again.to_dict() == fresh.to_dict()
    assert list(again.to_dict()) == list(fresh.to_dict())
    assert list(fresh.to_dict()) == list(EvalResult.__dataclass_fields__)  # every field, recovery last
    assert again.to_log_dict("eval/") == fresh.to_log_dict("eval/")
    for f in ("feature_split_count", "feature_mcc_abs_cos", "latent_precision", "latent_mcc_feature"):
        got, want = getattr(again, f), getattr(fresh, f)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert again.feature_recovery == fresh.feature_recovery and again.absorption == fresh.absorption
    assert again.splitting == fresh.splitting and again.baseline == fresh.baseline


def test_log_dict_keys_are_saelens_and_the_flat_figures(fresh):
    log = fresh.to_log_dict()
    saelens = {
        "true_l0",
        "sae_l0",
        "dead_latents",
        "shrinkage",
        "explained_variance",
        "explained_variance_per_sample",
        "explained_variance_per_dimension",
        "mcc",
        "uniqueness",
        *(f"classification/{k}" for k in ("precision", "recall", "f1_score", "accuracy")),
        *(f"matched_classification/{k}" for k in ("precision", "recall", "f1_score")),
    }
    assert set(log) == saelens | set(fresh.recovery)
    assert {k.split("/")[0] for k in fresh.recovery} == {"recovery", "splitting", "absorption", "baseline"}
    assert log["recovery/matched@0.5"] == fresh.recovery["recovery/matched@0.5"]


def typed_value(result: EvalResult, key: str) -> float:
    """The number the typed parts hold for a flat key, found independently of their ``flat()``."""
    if m := re.fullmatch(
        r"(baseline/)?recovery/(best|matched)@([\d.]+)(?:/(decile|depth)_(-?\d+)|/(free))?", key
    ):
        baseline, kind, t, group, index, free = m.groups()
        if baseline:
            assert result.baseline is not None and group is None and free is None
            rates = result.baseline.recovery
        else:
            assert result.feature_recovery is not None
            recovery = result.feature_recovery
            if free:
                assert recovery.free is not None
                rates = recovery.free
            elif group:
                rates = (recovery.by_decile if group == "decile" else recovery.by_depth)[int(index)]
            else:
                rates = recovery.overall
        return float(getattr(rates, kind)[float(t)])
    if key == "baseline/mcc":
        assert result.baseline is not None
        return result.baseline.mcc
    if key.startswith("splitting/"):
        value = getattr(result.splitting, key.split("/")[1])
        assert value is not None
        return float(value)
    assert key.startswith("absorption/")
    _, name, *depth = key.split("/")
    part = getattr(result.absorption, name)
    if name.endswith("_parents"):
        assert isinstance(part, int)
        return float(part)
    if name in ("edge_gap", "eligible_edge_fraction"):
        assert isinstance(part, float)
        return part
    return float(part.by_depth[int(depth[0][len("depth_") :])] if depth else part.overall)


@pytest.mark.parametrize("which", ["fresh", NEW, OLD])
def test_typed_parts_carry_the_flat_numbers(which, fresh):
    result = fresh if which == "fresh" else EvalResult.from_dict(fixture_result(which))
    flat = result.recovery
    assert flat
    for key, value in flat.items():
        assert typed_value(result, key) == value, key
    if which != "fresh":  # and every key the writer recorded is there
        assert flat == fixture_result(which)["recovery"]
    # the typed parts write the same figures back, in the writer's order
    parts = (result.feature_recovery, result.splitting, result.absorption, result.baseline)
    written = {k: v for part in parts if part is not None for k, v in part.flat().items()}
    assert list(written.items()) == list(flat.items())
    assert result.feature_recovery is not None
    assert sorted(result.feature_recovery.overall.best) == [0.5, 0.7, 0.9]
    assert set(result.feature_recovery.by_decile) == set(range(1, 11))
    assert result.absorption is not None and isinstance(result.absorption.gap_parents, int)


def test_unknown_fields_are_ignored():
    data = copy.deepcopy(fixture_result(NEW))
    data["from_a_newer_writer"] = {"anything": [1, 2]}
    data["recovery"]["recovery/matched@0.5/some_new_group"] = 0.25
    data["recovery"]["newfamily/figure"] = 1.0
    result = EvalResult.from_dict(data)
    want = fixture_result(NEW)
    assert "from_a_newer_writer" not in result.to_dict()
    # a newer writer's figures stay in the flat dict (written back, logged); the typed parts skip them
    assert result.to_dict() == {**want, "recovery": data["recovery"]}
    assert result.to_log_dict()["newfamily/figure"] == 1.0
    plain = EvalResult.from_dict(want)
    assert result.feature_recovery == plain.feature_recovery and result.absorption == plain.absorption


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mcc", "high", "'mcc' must be a number, got str"),
        ("f1", None, "'f1' must be a number, got NoneType"),
        ("matched_f1", [0.5], "'matched_f1' must be a number, got list"),
        ("num_samples", 1.5, "'num_samples' must be an integer, got float"),
        ("dead_latents", True, "'dead_latents' must be an integer, got bool"),
        ("latent_abs_cos", ["a", "b"], "'latent_abs_cos' must be a list of numbers"),
        ("latent_abs_cos", 0.5, "'latent_abs_cos' must be a list of numbers, got float"),
        ("latent_f1", [[1.0]], "'latent_f1' must be a list of numbers, got 2-D data"),
        ("feature_split_count", [0.5], "'feature_split_count' must be a list of integers"),
        ("feature_mcc_latent", [1, None], "'feature_mcc_latent' must be a list of integers"),
        ("recovery", [1.0], "'recovery' must be a dict, got list"),
        ("recovery", {"recovery/best@0.5": "x"}, "'recovery' must map names to numbers; 'recovery/best@0.5'"),
        (
            "recovery",
            {
                "absorption/gap": 0.1,
                "absorption/full_rate": 0.2,
                "absorption/gap_parents": 1.5,
                "absorption/rate_parents": 1.0,
            },
            "absorption/gap_parents must be a whole number",
        ),
    ],
)
def test_a_wrong_type_is_refused_naming_the_field(field, value, message, tmp_path):
    data = copy.deepcopy(fixture_result(NEW))
    data[field] = value
    with pytest.raises(ValueError, match=re.escape(message)):
        EvalResult.from_dict(data)
    run = tmp_path / "run.json"
    record = json.loads((FIXTURE / "runs" / NEW / "run.json").read_text())
    record["result"] = data
    run.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=re.escape(str(run)) + ".*" + re.escape(message)):
        read_run(run)


def test_a_field_every_writer_records_is_required():
    data = fixture_result(NEW)
    del data["mcc"], data["latent_f1"]
    with pytest.raises(ValueError, match=re.escape("lacks the EvalResult fields ['mcc', 'latent_f1']")):
        EvalResult.from_dict(data)
    with pytest.raises(ValueError, match="must be a dict of its fields, got list"):
        EvalResult.from_dict([])  # type: ignore[arg-type]
