"""The results format: typed models of a sweep header (``bench.json``), a run (``run.json``), a summary
row, a comparison and a report (``report.json``), and their JSON Schema.

The schema ships as ``synthsae/data/report.schema.json`` (:func:`json_schema`; the docs' Results
format page links it). Models accept keys they do not know (a newer writer's), so a reader is never
stricter than the schema's ``required`` lists. :func:`synthsae.bench.report.upgrade_report` turns a
report of an older schema into the current one.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from synthsae.evaluation.metrics import Direction
from synthsae.evaluation.scoring import EvalResult

#: The current version of ``report.json``'s and ``bench.json``'s layout (bumped when a key changes
#: meaning). 2: ``summary`` metrics as ``[mean, population std]``; 3: :class:`MetricSummary` objects,
#: ``comparisons``, ``metrics``, ``ceiling``.
SCHEMA = 3

#: Headers of these schemas can be read (and merged) by this version.
READABLE_SCHEMAS = (2, 3)

#: The shipped file, relative to the package.
SCHEMA_FILE = "data/report.schema.json"


class _Open(BaseModel):
    """A model that keeps keys it does not know."""

    model_config = ConfigDict(extra="allow")


def _result_model() -> type[BaseModel]:
    """``run.json``'s ``result``: every :class:`EvalResult` field, with its JSON type (arrays as lists;
    fields added after the first release optional)."""
    hints = typing.get_type_hints(EvalResult)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(EvalResult):
        hint = hints[f.name]
        optional = isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint)
        base = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
        json_type: Any
        if typing.get_origin(base) is dict or base is dict:
            json_type = dict[str, float | None]
        elif base in (int, float):
            json_type = base
        else:  # a numpy array: integers for index arrays, else numbers
            (_, dtype) = typing.get_args(base)
            (scalar,) = typing.get_args(dtype)
            json_type = list[int] if "int" in scalar.__name__ else list[float | None]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        fields[f.name] = (json_type, ...) if required else (json_type | None, None)
    return create_model("EvalResultRecord", __base__=_Open, **fields)


EvalResultRecord = _result_model()


class Versions(_Open):
    """The software that produced a sweep."""

    synthsae: str
    rng_algorithm: str | None = None
    torch: str | None = None
    numpy: str | None = None
    python: str | None = None
    platform: str | None = None


class SweepHeader(_Open):
    """``bench.json``: the world and protocol every run of a sweep shares."""

    schema_: int = Field(alias="schema", description="layout version of the sweep's files")
    world_fingerprint: str = Field(description="sha256 of everything that determines the world's rows")
    preset: str | None = Field(description="the preset's name, or null for a world from a directory")
    world_config: dict[str, Any] = Field(description="the world's full configuration (SAELens JSON)")
    protocol: dict[str, Any] = Field(description="SAEs, L0s, seeds and training settings")
    versions: Versions


class RunRecord(_Open):
    """``run.json`` of a finished run."""

    name: str
    architecture: str
    l0: float
    seed: int = Field(description="training stream seed; evaluated on stream seed + 1")
    width: int | None = None
    torch_threads: int | None = None
    train_seconds: float | None = None
    train_rows_per_second: float | None = None
    eval_seconds: float | None = None
    decoder_rho_mm: float | None = None
    training_log: list[dict[str, float | None]] | None = None
    result: EvalResultRecord  # type: ignore[valid-type]


class FailedRun(_Open):
    """A run that diverged: its identity and the reason."""

    name: str
    architecture: str
    l0: float
    seed: int
    failed: str


class MetricSummary(_Open):
    """A metric over a group's seeds (:func:`synthsae.bench.stats.describe`)."""

    n: int = Field(description="finite values")
    mean: float | None
    std: float | None = Field(description="sample standard deviation (ddof 1); null below 2 values")
    ci95: list[float] | None = Field(description="95 % Student-t interval of the mean; null below 2")
    values: list[float | None] = Field(description="per seed, in the order of `seeds`")


class SummaryRow(_Open):
    """One (architecture, L0) group over its seeds."""

    architecture: str
    l0: float
    seeds: list[int]
    metrics: dict[str, MetricSummary] = Field(description="by table column")


class Comparison(_Open):
    """A paired comparison of two architectures at one L0 on one metric
    (:func:`synthsae.bench.stats.paired_test`)."""

    l0: float
    metric: str = Field(description="table column")
    direction: Direction
    a: str
    b: str
    seeds: list[int] = Field(description="the seeds both ran (the pairs)")
    mean_difference: float = Field(description="mean over the seeds of a − b")
    t: float | None
    p_value: float | None = Field(description="paired t-test, two-sided")
    p_sign_flip: float | None = Field(description="exact sign-flip permutation test, two-sided")
    better: str | None = Field(description="the better of a and b where p_value < 0.05, else null")


class MetricInfo(_Open):
    """A table column: which way is better and what it means."""

    column: str
    name: str = Field(description="the metric's key in a run's result")
    direction: Direction
    definition: str


class Ceiling(_Open):
    """The supervised probe ceiling (:func:`synthsae.evaluation.ceiling.probe_ceiling`)."""

    features: int
    train_rows: int
    eval_rows: int
    precision: float
    recall: float
    f1: float
    seconds: float
    world_fingerprint: str
    settings: dict[str, Any]


class Report(SweepHeader):
    """``report.json``: the header, every finished run, and the statistics over seeds."""

    schema_: Literal[3] = Field(alias="schema", description="layout version")
    date: str = Field(description="when the report was built (ISO 8601, UTC)")
    runs: list[RunRecord]
    failed: list[FailedRun]
    summary: list[SummaryRow]
    comparisons: list[Comparison]
    metrics: list[MetricInfo]
    ceiling: Ceiling | None = None
    plots: list[str] = Field(default_factory=list)


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``report.json``."""
    schema = Report.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://synthsae.dev/report.schema.json",
        **schema,
    }


def shipped_schema() -> dict[str, Any]:
    """The schema file in the installed package."""
    from importlib.resources import files

    data: dict[str, Any] = json.loads(files("synthsae").joinpath(SCHEMA_FILE).read_text())
    return data


def validate_report(report: dict[str, Any]) -> Report:
    """``report`` parsed as a :class:`Report` (pydantic's ``ValidationError``, a ``ValueError``, when it
    is not one)."""
    return Report.model_validate(report)
