"""A static leaderboard page: one self-contained HTML file (no server, no network: styles, the sorting
script and the plots are inline) from sweep directories and ``report.json`` files.

Per world (by fingerprint) and L0, a table sortable by any column: each submitted architecture's mean
and 95 % interval over seeds, a mark where a paired test puts it ahead of the next row on that metric,
the probe ceiling, and reference rows reported elsewhere (the paper; results published after it), each
with its source and marked "reported, not rerun". Each entry's provenance (world fingerprint,
protocol, versions) is listed under its world. Everything taken from the inputs is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from synthsae._files import atomic_write, read_json
from synthsae.bench.records import SWEEP_FILE
from synthsae.bench.report import build_report, paper_results, upgrade_report
from synthsae.bench.schema import validate_report
from synthsae.errors import ConfigError, FileFormatError

#: The page's file in ``--out``.
PAGE = "index.html"

#: Columns of the leaderboard: table column of the report, label.
COLUMNS = (
    ("MCC", "MCC"),
    ("F1", "F1"),
    ("expl.var", "expl. var."),
    ("absorb", "absorption"),
    ("dead", "dead"),
)

#: Where the paper's numbers come from.
PAPER_URL = "https://arxiv.org/abs/2602.14687"


def load_entry(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Path]:
    """A report (current schema) from a sweep directory (built from its runs) or a ``report.json``
    (upgraded from an older schema), with the folder its plots are in."""
    p = Path(path)
    if p.is_dir():
        if not (p / SWEEP_FILE).is_file():
            raise ConfigError(f"{p} is not a sweep directory (no {SWEEP_FILE}) nor a report.json")
        from synthsae.bench.plots import PLOT_FILES

        report = build_report([p])
        report["plots"] = [name for name in PLOT_FILES if (p / name).is_file()]
        return report, p
    if not p.is_file():
        raise ConfigError(f"{p}: no such sweep directory or report file")
    data = read_json(p)
    if not isinstance(data, dict):
        raise FileFormatError(f"{p}: not a synthsae report (a JSON {type(data).__name__})", p)
    try:
        report = upgrade_report(data)
        validate_report(report)
    except ValueError as e:
        raise FileFormatError(f"{p}: not a synthsae report ({str(e).splitlines()[0]})", p) from None
    return report, p.parent


def _reference_rows(report: dict[str, Any], l0: float) -> list[dict[str, Any]]:
    """Rows reported elsewhere for this world, width and L0: the paper's and later results."""
    from importlib.resources import files

    from synthsae.world.hub import HUB_PRESETS

    preset = report.get("preset") or ""
    world = HUB_PRESETS.get(preset, preset)
    width = report["protocol"].get("width")
    rows: list[dict[str, Any]] = []
    paper = paper_results()
    if world == paper["world"] and width == paper["width"]:
        for arch, values in paper["results"].get(f"{l0:g}", {}).items():
            rows.append(
                {
                    "name": f"{arch} (paper, {paper['seeds']} seeds)",
                    "values": {
                        "MCC": values["mcc"][0],
                        "F1": values["f1"][0],
                        "expl.var": values["explained_variance"][0],
                    },
                    "source": paper["source"],
                    "url": PAPER_URL,
                }
            )
    reported = json.loads(files("synthsae").joinpath("data/reported_results.json").read_text())
    for e in reported["entries"]:
        if e["world"] == world and e["width"] == width and e["l0"] == l0:
            rows.append(
                {
                    "name": e["name"],
                    "values": {"F1": e["metrics"]["f1"]},
                    "source": e["source"],
                    "url": e["url"],
                }
            )
    return rows


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "–" if value is None else f"{value:{spec}}"


def _marks(report: dict[str, Any], l0: float) -> dict[tuple[str, str], str]:
    """(architecture, column) → a title for the mark where the architecture beats every other at this
    L0 on that column in a paired test (p < 0.05)."""
    won: dict[tuple[str, str], list[str]] = {}
    rivals: dict[str, set[str]] = {}
    for c in report.get("comparisons", []):
        if c["l0"] != l0:
            continue
        rivals.setdefault(c["metric"], set()).update((c["a"], c["b"]))
        if c["better"] is not None:
            loser = c["b"] if c["better"] == c["a"] else c["a"]
            won.setdefault((c["better"], c["metric"]), []).append(f"{loser} (p = {c['p_value']:.2g})")
    return {
        key: "ahead of " + ", ".join(beaten) + " (paired t-test)"
        for key, beaten in won.items()
        if len(beaten) == len(rivals[key[1]]) - 1
    }


def _entry_rows(report: dict[str, Any], entry: str, l0: float) -> list[str]:
    """The table rows of one input's architectures at ``l0``."""
    rows = []
    marks = _marks(report, l0)
    for g in report["summary"]:
        if g["l0"] != l0:
            continue
        cells = []
        for column, _ in COLUMNS:
            stats = g["metrics"].get(column, {})
            mean, ci = stats.get("mean"), stats.get("ci95")
            text = _fmt(mean, ".1f" if column == "dead" else ".4f")
            if ci and column != "dead":
                text += f' <span class="ci">[{ci[0]:.3f}, {ci[1]:.3f}]</span>'
            mark = marks.get((g["architecture"], column))
            if mark:
                text += f' <span class="sig" title="{html.escape(mark)}">★</span>'
            sort = "" if mean is None else f"{mean:.6g}"
            cells.append(f'<td data-value="{sort}">{text}</td>')
        name = html.escape(g["architecture"])
        seeds = len(g["seeds"])
        rows.append(
            f'<tr class="entry"><td data-value="{name}">{name} <span class="meta">{html.escape(entry)}, '
            f"{seeds} seed{'s' if seeds != 1 else ''}</span></td>{''.join(cells)}</tr>"
        )
    return rows


def _value_cells(values: dict[str, float]) -> str:
    return "".join(
        f'<td data-value="{values[c]:.6g}">{values[c]:.4f}</td>' if c in values else '<td data-value=""></td>'
        for c, _ in COLUMNS
    )


def _table(members: list[tuple[str, dict[str, Any], Path]], l0: float) -> str:
    """One world's table at ``l0``: every input's rows, the ceiling, the reference rows."""
    head = "".join(
        f'<th data-col="{i + 1}" title="click to sort">{html.escape(label)}</th>'
        for i, (_, label) in enumerate(COLUMNS)
    )
    rows = [row for name, report, _ in members for row in _entry_rows(report, name, l0)]
    ceiling = next((r["ceiling"] for _, r, _ in members if r.get("ceiling")), None)
    if ceiling:
        rows.append(
            f'<tr class="ceiling"><td data-value="ceiling">ceiling <span class="meta">linear probe on the '
            f"labels of the {ceiling['features']} most frequent features</span></td>"
            f"{_value_cells({'F1': ceiling['f1']})}</tr>"
        )
    for ref in _reference_rows(members[0][1], l0):
        rows.append(
            f'<tr class="reference"><td data-value="{html.escape(ref["name"])}">{html.escape(ref["name"])} '
            f'<span class="meta">reported, not rerun: <a href="{html.escape(ref["url"])}">'
            f"{html.escape(ref['source'])}</a></span></td>{_value_cells(ref['values'])}</tr>"
        )
    return (
        f'<table class="sortable"><thead><tr><th data-col="0">SAE</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _plots(report: dict[str, Any], folder: Path) -> str:
    """The report's plots inline (PNG data URIs), those present in ``folder``."""
    out = []
    for name in report.get("plots", []):
        f = folder / Path(name).name
        if f.suffix == ".png" and f.is_file() and not f.is_symlink():
            data = base64.b64encode(f.read_bytes()).decode()
            alt = html.escape(Path(name).stem.replace("_", " "))
            out.append(
                f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">'
                f"<figcaption>{alt}</figcaption></figure>"
            )
    return f'<div class="plots">{"".join(out)}</div>' if out else ""


def _provenance(report: dict[str, Any], entry: str) -> str:
    p = report["protocol"]
    v = report.get("versions", {})
    items = [
        ("world fingerprint", report["world_fingerprint"]),
        (
            "protocol",
            f"{p.get('width')} latents, {p.get('samples', 0):,} training rows, batch "
            f"{p.get('batch_size')}, lr {p.get('lr')}, {p.get('eval_samples', 0):,} evaluation rows",
        ),
        ("versions", ", ".join(f"{k} {v[k]}" for k in sorted(v))),
        ("report date", report.get("date", "")),
    ]
    body = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(val))}</dd>" for k, val in items)
    summary = f"<summary>{html.escape(entry)}: provenance</summary>"
    return f'<details class="provenance">{summary}<dl>{body}</dl></details>'


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;padding:0 1.5rem;max-width:72rem;color:#1b1b1b;
background:#fff}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.5rem}h3{font-size:1.05rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}
th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:right;vertical-align:top}
td{white-space:nowrap}
th:first-child,td:first-child{text-align:left}th{cursor:pointer;background:#f2f4f8}
tr.ceiling{background:#eef7ee}tr.reference{background:#fbf6ea;color:#444}
.meta,.ci{color:#666;font-size:.8em}.sig{color:#b8860b}
.plots{display:flex;flex-wrap:wrap;gap:1rem}.plots figure{margin:0;flex:1 1 30rem;max-width:34rem}
.plots img{width:100%;border:1px solid #ddd}figcaption{color:#666;font-size:.85em}
dt{font-weight:600}dd{margin:0 0 .4rem 1rem;font-family:monospace;font-size:.85em;word-break:break-all}
"""

_SCRIPT = r"""
document.querySelectorAll('table.sortable th').forEach(function (th) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0], col = +th.dataset.col;
    var down = th.dataset.dir !== 'desc'; th.dataset.dir = down ? 'desc' : 'asc';
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.value, y = b.cells[col].dataset.value;
      if (x === '' || y === '') { return (x === '') - (y === ''); }
      var u = parseFloat(x), v = parseFloat(y);
      var d = isNaN(u) || isNaN(v) ? x.localeCompare(y) : u - v;
      return down ? -d : d;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
var wanted = /sort=(\d+)/.exec(location.hash);
if (wanted) {
  document.querySelectorAll('table.sortable th[data-col="' + wanted[1] + '"]').forEach(function (th) {
    th.click();
  });
}
"""


def render(entries: Iterable[tuple[dict[str, Any], Path]], title: str = "SynthSAEBench leaderboard") -> str:
    """The page for ``entries`` (report, folder of its plots), grouped by world fingerprint."""
    worlds: dict[str, list[tuple[str, dict[str, Any], Path]]] = {}
    for i, (report, folder) in enumerate(entries):
        name = f"{i + 1}: {folder.name or folder}"
        worlds.setdefault(report["world_fingerprint"], []).append((name, report, folder))
    sections = []
    for fingerprint, members in worlds.items():
        label = members[0][1].get("preset") or "a world from files"
        parts = [
            f'<section class="world"><h2>{html.escape(label)} <span class="meta">world '
            f"{html.escape(fingerprint[:12])}…</span></h2>"
        ]
        for l0 in sorted({g["l0"] for _, report, _ in members for g in report["summary"]}):
            parts.append(f"<h3>L0 {l0:g}</h3>{_table(members, l0)}")
        for name, report, folder in members:
            parts.append(_plots(report, folder))
            parts.append(_provenance(report, name))
        parts.append("</section>")
        sections.append("".join(parts))
    intro = (
        "<p>Means over seeds with their 95 % confidence intervals (Student t). ★ marks an SAE ahead of "
        "every other at its L0 on that column in a paired t-test over shared seeds (p &lt; 0.05, "
        "uncorrected). Absorption and dead latents: lower is better; the rest: higher. Click a column "
        "to sort (or link to <code>#sort=N</code> for column N, 1 = MCC). Rows on a tinted background "
        "are the supervised ceiling and results reported elsewhere.</p>"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{intro}{''.join(sections)}<script>{_SCRIPT}</script></body></html>"
    )


def write_leaderboard(
    inputs: list[str | os.PathLike[str]], out: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Writes ``out/index.html`` for sweep directories and report files ``inputs``; refuses to replace
    an existing page unless ``overwrite``. Returns the page's path."""
    if not inputs:
        raise ConfigError("inputs must name at least one sweep directory or report.json")
    entries = [load_entry(p) for p in inputs]
    out = Path(out)
    page = out / PAGE
    if page.exists() and not overwrite:
        raise FileExistsError(f"{page} exists; pass overwrite=True (--overwrite) to replace it")
    out.mkdir(parents=True, exist_ok=True)
    text = render(entries)
    atomic_write(page, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return page
