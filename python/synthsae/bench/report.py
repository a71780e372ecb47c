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
    REPORT_SCHEMA,
    RUN_FILE,
    SWEEP_FILE,
    header_differences,
    read_header,
    read_run,
)
from synthsae.errors import ConfigError
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
    runs: dict[str, dict[str, Any]] = {}
    for d in map(Path, dirs):
        if not (d / SWEEP_FILE).is_file():
            raise ConfigError(f"{d} is not a sweep directory (no {SWEEP_FILE})")
        h = read_header(d / SWEEP_FILE)
        if h.get("schema") != REPORT_SCHEMA:
            raise ConfigError(f"{d}: report schema {h.get('schema')!r}, this synthsae reads {REPORT_SCHEMA}")
        if header is None:
            header = h
        elif diffs := header_differences(header, h):
            raise ConfigError(
                f"{dirs[0]} and {d} are sweeps of different worlds or protocols: {'; '.join(diffs)}"
            )
        for f in sorted((d / "runs").glob(f"*/{RUN_FILE}")):
            record = read_run(f)
            runs.setdefault(record["name"], record)
    assert header is not None
    order = sorted(runs.values(), key=lambda r: (r["architecture"], r["l0"], r["seed"]))
    finished = [r for r in order if "failed" not in r]
    return {
        **header,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "runs": finished,
        "failed": [
            {k: r[k] for k in ("name", "architecture", "l0", "seed", "failed")}
            for r in order
            if "failed" in r
        ],
        "summary": summarize(finished),
    }


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (architecture, L0): the seeds and ``[mean, std]`` (population std; 0 for one seed) of every
    table column's metric."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["architecture"], r["l0"]), []).append(r)
    out = []
    for (architecture, l0), members in groups.items():
        metrics = {}
        for header, get, _, _ in _COLUMNS:
            values = np.array([float(get(m)) for m in members])
            metrics[header] = [float(values.mean()), float(values.std())]
        out.append(
            {
                "architecture": architecture,
                "l0": l0,
                "seeds": [m["seed"] for m in members],
                "metrics": metrics,
            }
        )
    return out


def write_report(out: Path, report: dict[str, Any], firing_probabilities: Any = None) -> list[str]:
    """Writes ``out/report.json`` and the plots (every seed's result; error bars over seeds); returns the
    plot names. ``firing_probabilities`` ``[N]`` (default: rebuilt from the report's world config)."""
    from synthsae.bench.plots import write_plots

    results = [(r["architecture"], r["l0"], EvalResult.from_dict(r["result"])) for r in report["runs"]]
    probabilities = firing_probabilities
    if probabilities is None:
        config = WorldConfig.from_dict(report["world_config"])
        config.orthogonalization = None  # the firing probabilities do not depend on it
        probabilities = World(config).firing_probabilities.numpy()
    plots = write_plots(out, results, probabilities) if results else []
    write_json(out / "report.json", {**report, "plots": plots})
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


def _cell(mean: float, std: float, width: int, spec: str, seeds: int) -> str:
    """A table cell: the mean in the column's format, ``±std`` after it over several seeds."""
    if spec == "d":
        text = f"{mean:.0f}" if seeds == 1 else f"{mean:.1f}"
    else:
        text = f"{mean:{spec}}" + (f"±{std:.3f}" if seeds > 1 else "")
    return f"{text:>{width}}"


def table(report: dict[str, Any]) -> str:
    """The summary table of a report, one line per architecture × L0 (mean±std over seeds when there
    are several): SAELens's MCC and F1, the F1 through the MCC matching (mF1), the shares of features
    whose matched latent has |cos| >= 0.5 / 0.9, the full absorption rate and the absorption fraction,
    and last the SAE decoder's mean max |cos| between its own rows (dec.ρmm).
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
            _cell(g["metrics"][h][0], g["metrics"][h][1], w, spec, seeds)
            for (h, _, _, spec), w in zip(_COLUMNS, widths, strict=True)
        ]
        lines.append(" ".join(cells))
        published = paper["results"].get(f"{g['l0']:g}", {}).get(g["architecture"])
        if report.get("preset") == paper["world"] and published:
            cells = [f"{'  paper':<{name}}", f"{g['l0']:>5g}", f"{paper['seeds']:>5}"]
            for (h, _, _, spec), w in zip(_COLUMNS, widths, strict=True):
                value = published.get(_PAPER_COLUMNS.get(h, ""))
                cells.append(_cell(value[0], value[1], w, spec, 2) if value else f"{'':>{w}}")
            lines.append(" ".join(cells))
    for f in report.get("failed", []):
        lines.append(f"{f['name']}: failed ({f['failed']}); not in the table")
    if report.get("preset") in SMOKE_PRESETS:
        lines += [
            "",
            f"{report['preset']} is a smoke test: its numbers are not comparable to the paper's "
            "(run --preset synthsaebench-cpu for the paper's ranking on a CPU)",
        ]
    elif report.get("preset") != paper["world"]:
        lines += ["", *ranking_lines(report, paper)]
    lines.append(f"(paper: {paper['source']})")
    return "\n".join(lines)


#: Presets too small to rank architectures like the paper: the table says so instead of ranking.
SMOKE_PRESETS = ("tiny",)


#: A gap in the paper's value above this makes a pair's order part of the ranking to reproduce.
PAPER_GAP = 0.03


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
            value = {a: g["metrics"][header][0] for a, g in ours.items()}
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
