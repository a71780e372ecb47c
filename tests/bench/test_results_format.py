"""The results format (the shipped JSON Schema, upgrades of older reports) and the statistics over
seeds (intervals and paired tests against scipy)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
import scipy.stats

from synthsae.bench import report as report_module
from synthsae.bench.report import build_report, comparisons, significance_lines, upgrade_report, write_report
from synthsae.bench.schema import SCHEMA, json_schema, shipped_schema, validate_report
from synthsae.bench.stats import describe, paired_test, sign_flip_p
from synthsae.errors import ConfigError

DATA = Path(__file__).parents[1] / "data"


def _validator() -> jsonschema.protocols.Validator:
    schema = shipped_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_shipped_schema_is_the_models_schema():
    # after changing a model, write json.dumps(json_schema(), indent=1, ensure_ascii=False) to
    # python/synthsae/data/report.schema.json and docs/report.schema.json
    assert shipped_schema() == json.loads(json.dumps(json_schema()))


def test_written_report_validates_against_the_shipped_schema(tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(DATA / "sweep-schema2", sweep)
    report = build_report([sweep])
    write_report(sweep, report)
    written = json.loads((sweep / "report.json").read_text())
    assert written["schema"] == SCHEMA
    _validator().validate(written)
    # and a report that breaks the schema is caught: by the JSON Schema and by the writer's check
    row = {"architecture": "x", "l0": 6, "seeds": [0], "metrics": {"MCC": [1, 0]}}  # schema 2's form
    broken = {**written, "summary": [row]}
    assert not _validator().is_valid(broken)
    with pytest.raises(ValueError, match="metrics"):
        validate_report(broken)


def test_schema2_report_upgrades_on_read():
    old = json.loads((DATA / "report-schema2.json").read_text())
    assert old["schema"] == 2 and isinstance(old["summary"][0]["metrics"]["MCC"], list)
    assert not _validator().is_valid(old)
    new = upgrade_report(old)
    _validator().validate(new)
    assert new["schema"] == SCHEMA and new["runs"] == old["runs"] and new["plots"] == old["plots"]
    for before, after in zip(old["summary"], new["summary"], strict=True):
        assert (before["architecture"], before["l0"], before["seeds"]) == (
            after["architecture"],
            after["l0"],
            after["seeds"],
        )
        for column, (mean, _) in before["metrics"].items():
            got = after["metrics"][column]["mean"]
            assert (got is None) if math.isnan(mean) else got == pytest.approx(mean)
    directions = {m["column"]: m["direction"] for m in new["metrics"]}
    assert directions["MCC"] == "higher" and directions["absorb"] == "lower"
    assert directions["SAE L0"] == "none"
    with pytest.raises(ConfigError, match="schema 1"):
        upgrade_report({**old, "schema": 1})


# ------------------------------------------------------------------------------------------ statistics


@pytest.mark.parametrize("values", [[0.7, 0.72], [0.5, 0.61, 0.58, 0.55, 0.49], [1.0, 1.0, 1.0]])
def test_interval_matches_scipy(values):
    stats = describe(values)
    assert stats["n"] == len(values) and stats["mean"] == pytest.approx(np.mean(values))
    assert stats["std"] == pytest.approx(np.std(values, ddof=1))
    sem = scipy.stats.sem(values)
    if sem == 0:
        assert stats["ci95"] == pytest.approx([np.mean(values)] * 2)
    else:
        expected = scipy.stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=sem)
        assert stats["ci95"] == pytest.approx(list(expected), rel=1e-12)


def test_interval_edge_cases():
    assert describe([]) == {"n": 0, "mean": None, "std": None, "ci95": None, "values": []}
    one = describe([0.5, float("nan"), None])
    assert one == {"n": 1, "mean": 0.5, "std": None, "ci95": None, "values": [0.5, None, None]}


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([0.71, 0.74], [0.69, 0.70]),
        ([0.5, 0.61, 0.58, 0.55, 0.49], [0.45, 0.62, 0.50, 0.51, 0.47]),
        ([0.3, 0.2, 0.4, 0.1, 0.5, 0.6, 0.2], [0.1, 0.3, 0.2, 0.1, 0.2, 0.3, 0.4]),
    ],
)
def test_paired_tests_match_scipy(a, b):
    test = paired_test(a, b)
    expected = scipy.stats.ttest_rel(a, b)
    assert test["t"] == pytest.approx(expected.statistic, rel=1e-12)
    assert test["p_value"] == pytest.approx(expected.pvalue, rel=1e-12)
    exact = scipy.stats.permutation_test(
        (np.array(a), np.array(b)),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        n_resamples=np.inf,
        alternative="two-sided",
        vectorized=True,
    )
    assert test["p_sign_flip"] == pytest.approx(exact.pvalue, rel=1e-12)
    assert test["mean_difference"] == pytest.approx(np.mean(np.subtract(a, b)))


def test_paired_test_without_spread():
    # every difference equal: the t statistic is ±inf (p = 0) or undefined (p = 1)
    assert paired_test([1.0, 2.0], [0.5, 1.5])["p_value"] == 0.0
    same = paired_test([1.0, 2.0], [1.0, 2.0])
    assert same["p_value"] == 1.0 and same["t"] is None and same["p_sign_flip"] == 1.0
    # the sign-flip floor: 2 / 2ⁿ
    assert sign_flip_p(np.array([0.1, 0.2, 0.3, 0.4, 0.5])) == pytest.approx(2 / 32)


def _run(arch: str, seed: int, mcc: float, absorb: float) -> dict[str, Any]:
    return {
        "name": f"{arch}-{seed}",
        "architecture": arch,
        "l0": 6,
        "seed": seed,
        "result": {"mcc": mcc, "recovery": {"absorption/full_rate": absorb}},
    }


def test_comparisons_pair_by_seed_and_respect_direction():
    # a beats b on MCC on every seed by 0.1 ± a little, and has *lower* (better) absorption; b's seed 3
    # has no partner and is left out of the pairs
    runs = [_run("a", s, 0.8 + 0.01 * s, 0.1 + 0.001 * s) for s in range(3)]
    runs += [_run("b", s, 0.7 + 0.012 * s, 0.3 - 0.002 * s) for s in range(4)]
    found = {c["metric"]: c for c in comparisons(runs)}
    assert set(found) >= {"MCC", "absorb"} and "SAE L0" not in found  # no direction, no test
    assert found["MCC"]["seeds"] == [0, 1, 2] and found["MCC"]["better"] == "a"
    assert found["absorb"]["better"] == "a" and found["absorb"]["mean_difference"] < 0
    lines = significance_lines({"comparisons": list(found.values())})
    assert any(line.startswith("a > b on MCC at L0 6") for line in lines)
    assert any(line.startswith("a < b on absorb at L0 6") and "lower is better" in line for line in lines)


def test_report_module_columns_all_have_metric_info():
    infos = report_module.metric_infos()
    assert [i["column"] for i in infos] == [c[0] for c in report_module._COLUMNS]
    assert all(i["definition"] for i in infos)
