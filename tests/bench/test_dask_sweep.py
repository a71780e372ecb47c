"""A sweep on a ``dask.distributed.LocalCluster`` (2 worker processes): each group of runs is a task,
and the results equal a local sweep's, bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthsae.cli import main

distributed = pytest.importorskip("dask.distributed")

ARGS = ["bench", "--saes", "topk,mp", "--l0", "4", "--seeds", "0,1", "--samples", "20480"]
ARGS += ["--eval-samples", "4096", "--width", "32", "--quiet"]


def _results(out: Path) -> dict[str, dict]:
    report = json.loads((out / "report.json").read_text())
    return {r["name"]: r["result"] for r in report["runs"]}


@pytest.mark.slow
def test_a_sweep_on_local_workers_equals_a_local_sweep(tmp_path, capsys):
    assert main([*ARGS, "--out", str(tmp_path / "local")]) == 0
    assert main([*ARGS, "--out", str(tmp_path / "dask"), "--local-workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "submitting topk-l0-4-seed-0, mp-l0-4-seed-0" in out
    assert "trained and scored on a Dask worker" in out
    assert _results(tmp_path / "dask") == _results(tmp_path / "local")
    assert len(_results(tmp_path / "dask")) == 4
    # the world the workers loaded is the sweep's, and --overwrite clears it with the rest
    assert (tmp_path / "dask" / "world" / "synthetic_model.safetensors").exists()
    assert main([*ARGS, "--out", str(tmp_path / "dask"), "--overwrite"]) == 0
    assert not (tmp_path / "dask" / "world").exists()
    assert _results(tmp_path / "dask") == _results(tmp_path / "local")


def test_scheduler_and_local_workers_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main([*ARGS, "--out", str(tmp_path / "x"), "--local-workers", "2", "--scheduler", "tcp://nowhere:1"])
    assert e.value.code == 2 and "not both" in capsys.readouterr().err
