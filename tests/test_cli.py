"""The command line: demo output, help, and error exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from synthsae.cli import main


def test_demo_prints_throughput(capsys):
    assert main(["demo", "--rows", "20000", "--features", "1000", "--threads", "2"]) == 0
    out = capsys.readouterr().out
    assert "sampled 20,000 rows on 2 thread(s)" in out and "rows/s" in out


@pytest.mark.parametrize(
    "argv",
    [["demo", "--rows", "0"], ["demo", "--rows", "x"], ["nope"], [], ["demo", "--min-prob", "0.9"]],
)
def test_bad_flags_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert "error" in capsys.readouterr().err


def test_python_dash_m_help():
    out = subprocess.run([sys.executable, "-m", "synthsae", "demo", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--rows" in out.stdout
