"""Package-level promises: lazy torch, version, typing files, README/CI agreement."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import synthsae

ROOT = Path(__file__).resolve().parents[1]


def test_import_does_not_import_torch():
    code = "import sys, synthsae; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_version_matches_cargo():
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    assert synthsae.__version__ == cargo["package"]["version"]


def test_typing_files_ship():
    pkg = Path(synthsae.__file__).parent
    assert (pkg / "py.typed").exists() and (pkg / "_core.pyi").exists()


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```(?:bash|sh)\n(.*?)\n```", readme, flags=re.S)
    assert len(commands) >= 2
    first, second = commands[0].strip(), commands[1].strip()
    assert readme.index(first) < readme.index("## ")  # both come before the first section
    assert "synthsae" in first and "pytest" in second
    assert second in (ROOT / ".ci" / "run").read_text()
