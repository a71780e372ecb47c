"""A sweep's report: runs merged across directories, the mean and spread over seeds, the table, and the
paper's published numbers beside ours."""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from synthsae._files import write_json
from synthsae.bench.records import (
    CEILING_FILE,
    RUN_FILE,
    SWEEP_FILE,
    header_differences,
    read_ceiling,
    read_header,
    read_run,
)
from synthsae.bench.schema import READABLE_SCHEMAS, SCHEMA, validate_report
from synthsae.bench.stats import ALPHA, describe, paired_test
from synthsae.errors import ConfigError
from synthsae.evaluation.metrics import METRICS
from synthsae.evaluation.scoring import EvalResult
from synthsae.world.config import WorldConfig
from synthsae.world.model import World


def build_report(dirs: list[str | os.PathLike[str]]) -> dict[str, Any]:
    """The report of the finished runs in sweep directories ``dirs`` (each with ``bench.json``): the
    first's header, every run once (a run in several directories counts once), sorted by architecture,
    L0 and seed, and per (architecture, L0) the mean and std over seeds. Raises ``ValueError`` when the
    sweeps' worlds or training settings differ (naming the difference)."""
    if not dirs:
        raise ConfigError("dirs must name at least one sweep directory")
    header: dict[str, Any] | None = None
    ceiling: dict[str, Any] | None = None
    runs: dict[str, dict[str, Any]] = {}
    for d in map(Path, dirs):
        if not (d / SWEEP_FILE).is_file():
            raise ConfigError(f"{d} is not a sweep directory (no {SWEEP_FILE})")
        h = read_header(d / SWEEP_FILE)
        if h.get("schema") not in READABLE_SCHEMAS:
            raise ConfigError(
                f"{d}: report schema {h.get('schema')!r}, this synthsae reads {list(READABLE_SCHEMAS)}"
            )
        if header is None:
            header = h
        elif diffs := header_differences(header, h):
            raise ConfigError(
                f"{dirs[0]} and {d} are sweeps of different worlds or protocols: {'; '.join(diffs)}"
            )
        ceiling = ceiling or read_ceiling(d / CEILING_FILE)
        for f in sorted((d / "runs").glob(f"*/{RUN_FILE}")):
            record = read_run(f)
            runs.setdefault(record["name"], record)
    assert header is not None
    order = sorted(runs.values(), key=lambda r: (r["architecture"], r["l0"], r["seed"]))
    finished = [r for r in order if "failed" not in r]
    return {
        **header,
        "schema": SCHEMA,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "runs": finished,
        "failed": [
            {k: r[k] for k in ("name", "architecture", "l0", "seed", "failed")}
            for r in order
            if "failed" in r
        ],
        "summary": summarize(finished),
        "comparisons": comparisons(finished),
        "metrics": metric_infos(),
        "ceiling": ceiling
        if ceiling and ceiling["world_fingerprint"] == header["world_fingerprint"]
        else None,
    }


def _groups(runs: list[dict[str, Any]]) -> dict[tuple[str, float], list[dict[str, Any]]]:
    """Runs by (architecture, L0), each group in seed order."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for r in sorted(runs, key=lambda r: r["seed"]):
        groups.setdefault((r["architecture"], r["l0"]), []).append(r)
    return groups


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (architecture, L0): the seeds and, for every table column, the statistics over seeds
    (:func:`synthsae.bench.stats.describe`: mean, sample std, 95 % interval, the values)."""
    return [
        {
            "architecture": architecture,
            "l0": l0,
            "seeds": [m["seed"] for m in members],
            "metrics": {header: describe([float(get(m)) for m in members]) for header, get, _, _ in _COLUMNS},
        }
        for (architecture, l0), members in _groups(runs).items()
    ]


def _direction(header: str) -> str:
    return next((m.direction for m in METRICS if m.column and header in m.column.split(", ")), "none")


def metric_infos() -> list[dict[str, Any]]:
    """Each table column's metric: key, which way is better, definition (from
    :mod:`synthsae.evaluation.metrics`)."""
    out = []
    for header, _, _, _ in _COLUMNS:
        m = next(m for m in METRICS if m.column and header in m.column.split(", "))
        out.append({"column": header, "name": m.name, "direction": m.direction, "definition": m.definition})
    return out


def comparisons(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Paired comparisons (:func:`synthsae.bench.stats.paired_test`) of every two architectures at each
    L0 on every table column with a direction, over the seeds both ran (at least two with finite
    values). ``better`` names the better one where the t-test's p-value is below
    :data:`~synthsae.bench.stats.ALPHA`."""
    groups = _groups(runs)
    out = []
    for l0 in sorted({l0 for _, l0 in groups}):
        archs = sorted(a for a, x in groups if x == l0)
        for i, a in enumerate(archs):
            for b in archs[i + 1 :]:
                by_seed = {r["seed"]: r for r in groups[(a, l0)]}
                pairs = [(by_seed[r["seed"]], r) for r in groups[(b, l0)] if r["seed"] in by_seed]
                for header, get, _, _ in _COLUMNS:
                    direction = _direction(header)
                    if direction == "none":
                        continue
                    kept = [
                        (ra, rb) for ra, rb in pairs if np.isfinite([float(get(ra)), float(get(rb))]).all()
                    ]
                    if len(kept) < 2:
                        continue
                    test = paired_test([float(get(ra)) for ra, _ in kept], [float(get(rb)) for _, rb in kept])
                    better = None
                    if test["p_value"] is not None and test["p_value"] < ALPHA:
                        first = (test["mean_difference"] > 0) == (direction == "higher")
                        better = a if first else b
                    out.append(
                        {
                            "l0": l0,
                            "metric": header,
                            "direction": direction,
                            "a": a,
                            "b": b,
                            "seeds": [ra["seed"] for ra, _ in kept],
                            "mean_difference": test["mean_difference"],
                            "t": test["t"],
                            "p_value": test["p_value"],
                            "p_sign_flip": test["p_sign_flip"],
                            "better": better,
                        }
                    )
    return out


#: The columns whose paired differences the table lists (report.json keeps every column's).
HEADLINE_COLUMNS = ("MCC", "F1", "expl.var", "absorb")


def significance_lines(report: dict[str, Any]) -> list[str]:
    """The comparisons on :data:`HEADLINE_COLUMNS` with p < :data:`~synthsae.bench.stats.ALPHA` as
    "A > B on MCC at L0 6 (p = …, n seeds)" (``<`` for a metric where lower is better), or a line
    saying there are none."""
    lines = []
    for c in report.get("comparisons", []):
        if c["better"] is None or c["metric"] not in HEADLINE_COLUMNS:
            continue
        worse = c["b"] if c["better"] == c["a"] else c["a"]
        sign = ">" if c["direction"] == "higher" else "<"
        note = "" if c["direction"] == "higher" else ", lower is better"
        lines.append(
            f"{c['better']} {sign} {worse} on {c['metric']} at L0 {c['l0']:g} "
            f"(paired t-test p = {c['p_value']:.3g}, {len(c['seeds'])} seeds{note})"
        )
    if not lines:
        tested = len(report.get("comparisons", []))
        return [f"no paired difference with p < {ALPHA} ({tested} comparisons; they need 2+ shared seeds)"]
    head = f"paired differences with p < {ALPHA} on {', '.join(HEADLINE_COLUMNS)} (uncorrected for multiple"
    head += " comparisons; every column's are in report.json):"
    return [head, *lines]


def write_report(out: Path, report: dict[str, Any], firing_probabilities: Any = None) -> list[str]:
    """Writes ``out/report.json`` (checked against :class:`~synthsae.bench.schema.Report`) and the plots
    (every seed's result; error bars over seeds); returns the plot names. ``firing_probabilities``
    ``[N]`` (default: rebuilt from the report's world config)."""
    from synthsae.bench.plots import write_plots

    results = [(r["architecture"], r["l0"], EvalResult.from_dict(r["result"])) for r in report["runs"]]
    probabilities = firing_probabilities
    if probabilities is None:
        config = WorldConfig.from_dict(report["world_config"])
        config.orthogonalization = None  # the firing probabilities do not depend on it
        probabilities = World(config).firing_probabilities.numpy()
    plots = write_plots(out, results, probabilities) if results else []
    final = {**report, "plots": plots}
    validate_report(final)  # every report written is one the shipped JSON Schema describes
    write_json(out / "report.json", final)
    return plots


def _present(value: Any) -> Any:
    """A metric's value, NaN where the run's writer did not record it (an older synthsae)."""
    return float("nan") if value is None else value


def _field(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda run: _present(run["result"].get(key))


def _recovery(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda run: _present((run["result"].get("recovery") or {}).get(key))


#: Table columns: header, value of a run record, width, format.
_COLUMNS: tuple[tuple[str, Callable[[dict[str, Any]], Any], int, str], ...] = (
    ("MCC", _field("mcc"), 7, ".4f"),
    ("F1", _field("f1"), 7, ".4f"),
    ("mF1", _field("matched_f1"), 7, ".4f"),
    ("rec@.5", _recovery("recovery/matched@0.5"), 7, ".4f"),
    ("rec@.9", _recovery("recovery/matched@0.9"), 7, ".4f"),
    ("absorb", _recovery("absorption/full_rate"), 7, ".4f"),
    ("a.frac", _recovery("absorption/fraction"), 7, ".4f"),
    ("edges", _recovery("absorption/eligible_edge_fraction"), 6, ".2f"),
    ("unique", _field("uniqueness"), 7, ".4f"),
    ("expl.var", _field("explained_variance"), 8, ".4f"),
    ("SAE L0", _field("sae_l0"), 7, ".2f"),
    ("dead", _field("dead_latents"), 6, "d"),
    ("dec.ρmm", lambda run: _present(run.get("decoder_rho_mm")), 7, ".4f"),
)


def paper_results() -> dict[str, Any]:
    """The paper's published SynthSAEBench-16k numbers (``synthsae/data/paper_results.json``: per L0 and
    architecture, ``[mean, std]`` over 5 seeds of F1, MCC, uniqueness, explained variance, and the
    source)."""
    from importlib.resources import files

    data: dict[str, Any] = json.loads(files("synthsae").joinpath("data/paper_results.json").read_text())
    return data


#: Table column → the paper's metric name.
_PAPER_COLUMNS = {"MCC": "mcc", "F1": "f1", "unique": "uniqueness", "expl.var": "explained_variance"}


def _cell(stats: dict[str, Any], width: int, spec: str) -> str:
    """A table cell: the mean in the column's format, ``±h`` after it with ``h`` the half-width of the
    95 % interval over several seeds."""
    mean = stats["mean"]
    if mean is None:
        return f"{'nan':>{width}}"
    if spec == "d":
        text = f"{mean:.0f}" if stats["n"] <= 1 else f"{mean:.1f}"
    else:
        ci = stats.get("ci95")
        text = f"{mean:{spec}}" + (f"±{(ci[1] - ci[0]) / 2:.3f}" if ci else "")
    return f"{text:>{width}}"


def _published_cell(value: list[float], width: int, spec: str) -> str:
    """The paper's ``[mean, std]`` (5 seeds) as ``mean±std``."""
    return f"{f'{value[0]:{spec}}±{value[1]:.3f}':>{width}}"


def table(report: dict[str, Any]) -> str:
    """The summary table of a report, one line per architecture × L0 (mean ± the 95 % interval's
    half-width over seeds when there are several), the probe ceiling where the report has one, and the
    paired differences with p < 0.05. Columns: SAELens's MCC and F1, the F1 through the MCC matching
    (mF1), the shares of features whose matched latent has |cos| >= 0.5 / 0.9, the full absorption rate
    and the absorption fraction, and last the SAE decoder's mean max |cos| between its own rows
    (dec.ρmm).
    For the 16k preset, the paper's value follows at its L0s (20 and 25); for other presets, the
    paper's L0-25 ranking of the architectures by MCC and F1 beside ours."""
    many = any(len(g["seeds"]) > 1 for g in report["summary"])
    widths = [w + (6 if many and spec != "d" else 0) for _, _, w, spec in _COLUMNS]
    name = max([12, *(len(g["architecture"]) for g in report["summary"])])
    head = " ".join(
        [f"{'architecture':<{name}}", f"{'L0':>5}", f"{'seeds':>5}"]
        + [f"{h:>{w}}" for (h, _, _, _), w in zip(_COLUMNS, widths, strict=True)]
    )
    lines = [head, "-" * len(head)]
    paper = paper_results()
    for g in report["summary"]:
        seeds = len(g["seeds"])
        cells = [f"{g['architecture']:<{name}}", f"{g['l0']:>5g}", f"{seeds:>5}"]
        cells += [
            _cell(g["metrics"][h], w, spec) for (h, _, _, spec), w in zip(_COLUMNS, widths, strict=True)
        ]
        lines.append(" ".join(cells))
        published = paper["results"].get(f"{g['l0']:g}", {}).get(g["architecture"])
        if _paper_world(report, paper) and published:
            cells = [f"{'  paper':<{name}}", f"{g['l0']:>5g}", f"{paper['seeds']:>5}"]
            for (h, _, _, spec), w in zip(_COLUMNS, widths, strict=True):
                value = published.get(_PAPER_COLUMNS.get(h, ""))
                cells.append(_published_cell(value, w, spec) if value else f"{'':>{w}}")
            lines.append(" ".join(cells))
    ceiling = report.get("ceiling")
    if ceiling:
        cells = [f"{'  ceiling':<{name}}", f"{'':>5}", f"{'':>5}"]
        for (h, _, _, spec), w in zip(_COLUMNS, widths, strict=True):
            cells.append(f"{ceiling['f1']:>{w}{spec}}" if h == "F1" else f"{'':>{w}}")
        lines.append(" ".join(cells))
    for f in report.get("failed", []):
        lines.append(f"{f['name']}: failed ({f['failed']}); not in the table")
    if many:
        lines += ["", "± = half-width of the 95 % confidence interval over seeds (Student t)"]
        if ceiling:
            lines[-1] += (
                f"; ceiling = a linear probe trained on the labels of the {ceiling['features']} "
                "most frequent features (F1 as the SAEs')"
            )
        lines += significance_lines(report)
    elif ceiling:
        lines += [
            "",
            f"ceiling = a linear probe trained on the labels of the {ceiling['features']} most frequent "
            "features (F1 as the SAEs')",
        ]
    if report.get("preset") in SMOKE_PRESETS:
        lines += [
            "",
            f"{report['preset']} is a smoke test: its numbers are not comparable to the paper's "
            "(run --preset synthsaebench-cpu for the paper's ranking on a CPU)",
        ]
    elif not _paper_world(report, paper):
        lines += ["", *ranking_lines(report, paper)]
    lines.append(f"(paper: {paper['source']})")
    return "\n".join(lines)


def _paper_world(report: dict[str, Any], paper: dict[str, Any]) -> bool:
    """Whether the report's world is the paper's: its preset, or the Hub's upload of it."""
    from synthsae.world.hub import HUB_PRESETS

    preset = report.get("preset") or ""
    return bool(paper["world"] in (preset, HUB_PRESETS.get(preset)))


#: Presets too small to rank architectures like the paper: the table says so instead of ranking.
SMOKE_PRESETS = ("tiny",)


#: A gap in the paper's value above this makes a pair's order part of the ranking to reproduce.
PAPER_GAP = 0.03


def _mean(stats: dict[str, Any]) -> float:
    return float("nan") if stats["mean"] is None else float(stats["mean"])


def ranking_lines(report: dict[str, Any], paper: dict[str, Any]) -> list[str]:
    """Per target L0 of the report, the architectures the paper also ran ranked by mean MCC, F1 and
    explained variance beside the paper's L0-25 ranking of the same architectures, and which pairs the
    paper separates by more than :data:`PAPER_GAP` keep their order here."""
    published = paper["results"]["25"]
    out = []
    for l0 in sorted({g["l0"] for g in report["summary"]}):
        ours = {
            g["architecture"]: g
            for g in report["summary"]
            if g["l0"] == l0 and g["architecture"] in published
        }
        if len(ours) < 2:
            continue
        for header, metric in (("MCC", "mcc"), ("F1", "f1"), ("expl.var", "explained_variance")):
            value = {a: _mean(g["metrics"][header]) for a, g in ours.items()}
            mine = sorted(value, key=lambda a: -value[a])
            theirs = sorted(value, key=lambda a: -published[a][metric][0])
            pairs = [
                (a, b)
                for a in theirs
                for b in theirs
                if published[a][metric][0] - published[b][metric][0] > PAPER_GAP
            ]
            broken = [
                f"{a} > {b} ({value[a]:.4f} vs {value[b]:.4f})" for a, b in pairs if value[a] <= value[b]
            ]
            out.append(
                f"ranking by {header} at L0 {l0:g}: ours {' > '.join(mine)}; paper (16k, L0 25) "
                f"{' > '.join(theirs)}; {len(pairs) - len(broken)}/{len(pairs)} pairs the paper separates "
                f"by > {PAPER_GAP} hold" + (f", not {', '.join(broken)}" if broken else "")
            )
    return out


def upgrade_report(report: dict[str, Any]) -> dict[str, Any]:
    """A report of an older schema as the current one (the statistics rebuilt from its runs); a current
    one unchanged. ``ValueError`` for a schema this version cannot read."""
    version = report.get("schema")
    if version == SCHEMA:
        return report
    if version not in READABLE_SCHEMAS:
        raise ConfigError(f"report schema {version!r}: this synthsae reads {list(READABLE_SCHEMAS)}")
    runs = report.get("runs", [])
    summary = summarize(runs)
    return {
        **report,
        "schema": SCHEMA,
        "summary": summary,
        "comparisons": comparisons(runs),
        "metrics": metric_infos(),
        "ceiling": report.get("ceiling"),
        "plots": report.get("plots", []),
    }
