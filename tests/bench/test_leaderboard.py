"""The static leaderboard page: its content, escaping, and rendering in a real headless Chromium.

The browser tests skip where no Chromium is installed, unless ``SYNTHSAE_REQUIRE_BROWSER=1`` (CI sets
it, after installing Debian's ``chromium``), where they fail instead.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from synthsae.bench.leaderboard import load_entry, render, write_leaderboard
from synthsae.bench.report import build_report, write_report
from synthsae.cli import main

DATA = Path(__file__).parents[1] / "data"


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("SYNTHSAE_REQUIRE_BROWSER") == "1":
        pytest.fail("SYNTHSAE_REQUIRE_BROWSER=1 but no chromium is installed")
    pytest.skip("no chromium installed (apt install chromium)")


def _chromium(*args: str) -> subprocess.CompletedProcess[bytes]:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"]
    return subprocess.run([_browser(), *flags, *args], capture_output=True, timeout=120, check=True)


@pytest.fixture()
def sweep(tmp_path: Path) -> Path:
    """The schema-2 fixture sweep with a second seed per architecture (seed 1: MCC and F1 moved by a
    fixed amount, so that the paired tests have two pairs) and its plots."""
    out = tmp_path / "sweep"
    shutil.copytree(DATA / "sweep-schema2", out)
    for run in sorted((out / "runs").iterdir()):
        record = json.loads((run / "run.json").read_text())
        record["seed"] = 1
        record["name"] = record["name"].replace("seed-0", "seed-1")
        bump = 0.05 if record["architecture"] == "topk" else 0.01
        record["result"]["mcc"] += bump
        record["result"]["f1"] += bump
        twin = out / "runs" / record["name"]
        twin.mkdir()
        (twin / "run.json").write_text(json.dumps(record))
    write_report(out, build_report([out]))
    return out


def _reference_report(sweep: Path) -> dict[str, Any]:
    """The sweep's report dressed as a SynthSAEBench-16k sweep at width 4,096, L0 25."""
    report, _ = load_entry(sweep)
    report = copy.deepcopy(report)
    report["preset"] = "synthsaebench-16k"
    report["protocol"]["width"] = 4096
    for g in report["summary"]:
        g["l0"] = 25
    report["ceiling"] = {
        "features": 4096,
        "train_rows": 10,
        "eval_rows": 10,
        "precision": 1.0,
        "recall": 0.9,
        "f1": 0.9473,
        "seconds": 1.0,
        "world_fingerprint": report["world_fingerprint"],
        "settings": {},
    }
    return report


def test_page_content_references_and_escaping(sweep):
    report = _reference_report(sweep)
    report["summary"][0]["architecture"] = "<script>alert(1)</script>"
    page = render([(report, sweep)])
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "reported, not rerun" in page and "https://arxiv.org/abs/2602.14687" in page
    assert "LISTA-Matryoshka" in page and "0.9894" in page  # the post-paper results at L0 25, width 4,096
    assert "matryoshka (paper, 5 seeds)" in page and 'class="ceiling"' in page and "0.9473" in page
    assert "https://" not in re.sub(r'href="https://[^"]+"|data-value="[^"]*"', "", page.split("<style>")[0])
    # self-contained: no external script, style or image
    assert not re.search(r'<(script|link|img)[^>]+(src|href)="(https?:)?//', page)


def _exit(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # usage errors end through argparse
        return int(e.code or 0)


def test_cli_refuses_to_overwrite_and_reads_old_reports(sweep, tmp_path, capsys):
    out = tmp_path / "board"
    assert _exit(["leaderboard", str(sweep), str(DATA / "report-schema2.json"), "--out", str(out)]) == 0
    assert "index.html" in capsys.readouterr().out
    assert _exit(["leaderboard", str(sweep), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert _exit(["leaderboard", str(sweep), "--out", str(out), "--overwrite"]) == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": 3, "runs": "nope"}))
    assert _exit(["leaderboard", str(bad), "--out", str(tmp_path / "b2")]) == 1
    assert str(bad) in capsys.readouterr().err


def test_page_renders_in_headless_chromium(sweep, tmp_path):
    report = _reference_report(sweep)
    report_file = tmp_path / "report.json"
    report_file.write_text(json.dumps(report))
    for name in report["plots"]:
        shutil.copy(sweep / name, tmp_path / name)
    page = write_leaderboard([report_file], tmp_path / "board")
    url = page.resolve().as_uri()

    # the DOM after the page's script ran: every row, the reference links, the inline plots
    dom = _chromium("--dump-dom", url).stdout.decode()
    rows = re.findall(r'<tr class="(entry|ceiling|reference)"', dom)
    assert rows.count("entry") == 2 and rows.count("ceiling") == 1 and rows.count("reference") >= 6
    assert 'href="https://github.com/chanind/claude-auto-research-synthsaebench"' in dom
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', dom)) == len(report["plots"])
    # two seeds each: a [low, high] interval in each of the 4 columns with one (all but "dead")
    assert len(re.findall(r'<span class="ci">\[-?[0-9.]+, -?[0-9.]+\]</span>', dom)) == 2 * 4

    # sorting, done by the page's script in the browser (#sort=1: by MCC, highest first)
    sorted_dom = _chromium("--dump-dom", url + "#sort=1").stdout.decode()
    body = sorted_dom[sorted_dom.index("<tbody>") : sorted_dom.index("</tbody>")]
    cells = re.findall(r'<tr[^>]*><td[^>]*>(?:(?!</td>).)*</td><td data-value="([^"]*)"', body)
    filled = [float(v) for v in cells if v]
    # 2 SAEs + 5 paper rows with an MCC; the ceiling and the 3 later results (F1 only) without
    assert len(cells) == 11 and len(filled) == 7
    assert cells[: len(filled)] == [v for v in cells if v]  # rows without an MCC last
    assert filled == sorted(filled, reverse=True)

    # a screenshot that is not blank: text, table tints and plots give many distinct colours
    shot = tmp_path / "shot.png"
    _chromium(f"--screenshot={shot}", "--window-size=1200,1600", url)
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (1600, 1200)
    non_white = float((pixels.min(axis=2) < 0.9).mean())
    colours = len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0))
    assert 0.02 < non_white < 0.9 and colours > 50, (non_white, colours)
