"""mkdocs hook: renders tables that have one source of truth.

- ``<!-- metrics -->``: the metric table, from :mod:`synthsae.evaluation.metrics` (loaded from its file,
  so the build needs neither the compiled extension nor torch);
- ``<!-- perf:threads -->``: ``docs/threads.json`` (``benches/threads.py --json``);
- ``<!-- perf:scale -->``: ``docs/scale.json`` (``benches/scale.py --json``).

Each table is preceded by the machine, date and command recorded in its JSON file.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _metrics_module() -> Any:
    name = "_synthsae_docs_metrics"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, ROOT / "python" / "synthsae" / "evaluation" / "metrics.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _provenance(data: dict[str, Any]) -> str:
    parts = [f"{key}: {data[key]}" for key in ("machine", "date") if data.get(key)]
    text = "; ".join(parts)
    if data.get("command"):
        text += f". Command: `{data['command']}`"
    return f"*{text}.*\n\n" if text else ""


def threads_table(data: dict[str, Any]) -> str:
    """Medians per workload: old/new settings, quiet and beside busy processes, and new busy / quiet."""
    columns = ("old quiet", "old busy", "new quiet", "new busy")
    rows = [
        "| workload | " + " | ".join(columns) + " | new busy / quiet |",
        "|---|" + "---:|" * (len(columns) + 1),
    ]
    for workload, medians in data["medians"].items():
        cells = [f"{medians[c]:.2f}" if c in medians else "" for c in columns]
        ratio = (
            f"{medians['new busy'] / medians['new quiet']:.2f}"
            if medians.get("new quiet") and "new busy" in medians
            else ""
        )
        rows.append(f"| {workload} | " + " | ".join(cells) + f" | {ratio} |")
    busy = data.get("busy")
    note = f"\n*Busy: beside {busy} CPU-bound process(es) pinned to a core.*\n" if busy else "\n"
    return _provenance(data) + "\n".join(rows) + "\n" + note


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def scale_table(data: dict[str, Any] | list[dict[str, Any]]) -> str:
    """Rows per second and build cost against the number of features."""
    meta: dict[str, Any] = data if isinstance(data, dict) else {}
    results: list[dict[str, Any]] = data["results"] if isinstance(data, dict) else data
    rows = [
        "| N | D | true L0 | synthsae features / hidden (rows/s) | growth per row | world build, peak RSS "
        "| SAELens features / hidden (rows/s) | ratio features / hidden "
        "| synthsae without the copula, features / hidden |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = results[0]["synthsae"]
    for r in results:
        ours = r["synthsae"]
        growth = (
            f"{base['features_rows_per_s'] / ours['features_rows_per_s']:.2f} / "
            f"{base['hidden_rows_per_s'] / ours['hidden_rows_per_s']:.2f}"
        )
        build = f"{ours['build_s']:.1f} s, {ours['build_peak_rss_gib']:.2f} GiB"
        theirs = r.get("saelens")
        if isinstance(theirs, dict):
            saelens = f"{_rate(theirs['features_rows_per_s'])} / {_rate(theirs['hidden_rows_per_s'])}"
            ratio = (
                f"**{ours['features_rows_per_s'] / theirs['features_rows_per_s']:.0f}× / "
                f"{ours['hidden_rows_per_s'] / theirs['hidden_rows_per_s']:.0f}×**"
            )
        else:
            saelens, ratio = "—", "—"
        plain = r.get("synthsae_no_copula")
        no_copula = (
            f"{_rate(plain['features_rows_per_s'])} / {_rate(plain['hidden_rows_per_s'])}"
            if isinstance(plain, dict)
            else "—"
        )
        rows.append(
            f"| {r['n']:,} | {r['hidden_dim']:,} | {ours['l0']:.1f} "
            f"| {_rate(ours['features_rows_per_s'])} / {_rate(ours['hidden_rows_per_s'])} "
            f"| {growth} | {build} "
            f"| {saelens} | {ratio} | {no_copula} |"
        )
    return _provenance(meta) + "\n".join(rows) + "\n"


def render(markdown: str) -> str:
    """``markdown`` with every marker replaced by its table."""
    if "<!-- metrics -->" in markdown:
        markdown = markdown.replace("<!-- metrics -->", _metrics_module().markdown_table())
    if "<!-- perf:threads -->" in markdown:
        data = json.loads((DOCS / "threads.json").read_text())
        markdown = markdown.replace("<!-- perf:threads -->", threads_table(data))
    if "<!-- perf:scale -->" in markdown:
        data = json.loads((DOCS / "scale.json").read_text())
        markdown = markdown.replace("<!-- perf:scale -->", scale_table(data))
    return markdown


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """mkdocs event: replace the markers on every page."""
    return render(markdown)
