"""The documentation: README and docs/ say what the package does now (no project history), the
README stays short, every API reference and nav page resolves, and the metric table covers every
scalar an evaluation reports."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import json
import re
from pathlib import Path

import pytest
import yaml

import synthsae
from synthsae.evaluation.metrics import METRICS, markdown_table, metric

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PACKAGE = Path(synthsae.__file__).parent

#: Phrasing that belongs in CHANGELOG.md, not in text a user reads.
HISTORY = re.compile(
    r"\bissues? #?\d+"
    r"|\bsessions?\b"
    r"|\bfirst version\b"
    r"|\bno GPU was available\b"
    r"|\bthe reference notes\b"
    r"|\baudit(?:s|ed|ing)?\b"
    r"|\bbefore the rewrite\b"
    r"|\bwe have not yet\b"
    r"|\bearlier the same day\b",
    re.IGNORECASE,
)


def _docstrings(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = [
        tree,
        *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)),
    ]
    out = []
    for node in nodes:
        doc = ast.get_docstring(node, clean=False)
        if doc:
            out.append((getattr(node, "lineno", 1), doc))
    return out


def _user_texts() -> list[tuple[str, str]]:
    texts = [("README.md", (ROOT / "README.md").read_text(encoding="utf-8"))]
    texts += [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8")) for p in sorted(DOCS.glob("*.md"))]
    for path in sorted([*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.pyi")]):
        name = f"synthsae/{path.relative_to(PACKAGE).as_posix()}"
        texts += [(f"{name}:{line}", doc) for line, doc in _docstrings(path)]
    return texts


def test_history_pattern_catches_diary_phrasing():
    for text in ("see issue 12", "in the second session", "The first version's SAEs", "no GPU was available"):
        assert HISTORY.search(text), text
    for text in ("SAELens's sessionless API", "audio", "the tissue", "version 2"):
        assert not HISTORY.search(text), text


def test_user_facing_text_has_no_project_history():
    hits = [f"{where}: {m.group(0)!r}" for where, text in _user_texts() for m in HISTORY.finditer(text)]
    assert not hits, "history belongs in CHANGELOG.md:\n" + "\n".join(hits)


def test_readme_is_short():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 200


def _mkdocs() -> dict:
    data = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _nav_pages(nav: object) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [p for item in nav for p in _nav_pages(item)]
    if isinstance(nav, dict):
        return [p for value in nav.values() for p in _nav_pages(value)]
    return []


def test_every_nav_page_exists_and_every_page_is_in_the_nav():
    pages = _nav_pages(_mkdocs()["nav"])
    assert pages, "mkdocs.yml has no nav"
    missing = [p for p in pages if not (DOCS / p).is_file()]
    assert not missing, missing
    assert sorted(p.name for p in DOCS.glob("*.md")) == sorted(pages)


def _resolve(target: str) -> object:
    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return obj
    raise ModuleNotFoundError(target)


def _api_targets() -> list[str]:
    return [
        m.group(1)
        for p in sorted(DOCS.glob("*.md"))
        for m in re.finditer(r"^::: *(\S+)", p.read_text(), re.M)
    ]


def test_api_reference_has_targets():
    targets = _api_targets()
    assert {"synthsae.World", "synthsae.train", "synthsae.evaluate", "synthsae.EvalResult"} <= set(targets)


@pytest.mark.parametrize("target", _api_targets())
def test_every_api_target_imports(target):
    assert _resolve(target) is not None


def test_metric_table_covers_every_scalar_of_an_evaluation():
    from synthsae.evaluation.scoring import EvalResult

    # scalar fields are those annotated int or float (arrays are numpy, recovery is the dict below)
    scalars = [f.name for f in dataclasses.fields(EvalResult) if f.type in ("int", "float", int, float)]
    assert {"mcc", "f1", "explained_variance", "dead_latents"} <= set(scalars)
    for name in scalars:
        metric(name)
    names = {m.name for m in METRICS}
    assert len(names) == len(METRICS), "a metric is listed twice"
    # every family of keys of EvalResult.recovery (one key of each, as the modules emit them)
    prefixes = {n.split("/")[0] for n in names if "/" in n}
    assert prefixes == {"recovery", "splitting", "absorption", "baseline"}
    for key in (
        "splitting/split_fraction",
        "splitting/latents_per_split_feature",
        "splitting/union_recall",
        "splitting/best_single_recall",
        "absorption/gap",
        "absorption/full_rate",
        "absorption/near_rate",
        "absorption/fraction",
        "baseline/mcc",
    ):
        metric(key)
    for m in METRICS:
        assert m.direction in ("higher", "lower", "none") and m.definition and m.source


def test_bench_columns_are_in_the_metric_table():
    from synthsae.bench.report import _COLUMNS

    columns = {c.strip() for m in METRICS if m.column for c in m.column.split(",")}
    assert {header for header, *_ in _COLUMNS} == columns


def test_docs_render_the_generated_tables():
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    assert "<!-- metrics -->" in (DOCS / "evaluation.md").read_text()
    performance = (DOCS / "performance.md").read_text()
    assert "<!-- perf:threads -->" in performance and "<!-- perf:scale -->" in performance
    rendered = hooks.render("<!-- metrics -->\n<!-- perf:threads -->\n<!-- perf:scale -->")
    assert markdown_table() in rendered and "<!--" not in rendered
    assert rendered.count("*machine: ") == 2  # each performance table names its machine and date


def test_docs_ship_the_package_json_schema():
    # the site links docs/report.schema.json; it must be the schema the package ships and validates with
    if not DOCS.is_dir():
        pytest.skip("the docs are not next to this test (an installed wheel's test run)")
    from synthsae.bench.schema import shipped_schema

    assert json.loads((DOCS / "report.schema.json").read_text()) == shipped_schema()
