"""The release workflow (.github/workflows/release.yml) cannot run here: check it parses, covers every
platform, and stays in step with .ci/wheel (maturin flags, manylinux level, the smoke check)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _workflow() -> dict[str, Any]:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    assert isinstance(workflow, dict)
    return workflow


def _builds(workflow: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(job, matrix platform or {}, the maturin-action step's `with`) for every wheel build."""
    found = []
    for name, job in workflow["jobs"].items():
        platforms = job.get("strategy", {}).get("matrix", {}).get("platform", [{}])
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("PyO3/maturin-action@"):
                for platform in platforms:
                    found.append((name, platform, step["with"]))
    return found


def _resolve(value: str, platform: dict[str, Any]) -> str:
    return re.sub(r"\$\{\{\s*matrix\.platform\.(\w+)\s*\}\}", lambda m: str(platform[m[1]]), value)


def test_every_platform_gets_a_wheel_and_the_sdist_is_built():
    builds = _builds(_workflow())
    wheels = {
        (job, _resolve(str(w["target"]), p), _resolve(str(w.get("manylinux", "")), p))
        for job, p, w in builds
        if w.get("command", "build") == "build"
    }
    assert wheels == {
        ("linux", "x86_64", "2014"),
        ("linux", "aarch64", "2014"),
        ("linux", "x86_64", "musllinux_1_2"),
        ("macos", "x86_64", ""),
        ("macos", "aarch64", ""),
        ("windows", "x64", ""),
    }
    assert [job for job, _, w in builds if w.get("command") == "sdist"] == ["sdist"]


def test_builds_use_the_local_scripts_flags_and_smoke_check():
    local = (ROOT / ".ci" / "wheel").read_text()
    level = re.search(r"--compatibility manylinux(\w+)", local)
    assert level is not None and "--release --locked" in local
    workflow = _workflow()
    for job, platform, step in _builds(workflow):
        if step.get("command", "build") != "build":
            continue
        assert "--release --locked" in step["args"], job
        manylinux = _resolve(str(step.get("manylinux", "")), platform)
        if job == "linux" and not manylinux.startswith("musllinux"):
            assert manylinux == level[1], "release.yml and .ci/wheel target different glibc levels"
        smoke = " ".join(str(s.get("run", "")) for s in workflow["jobs"][job]["steps"]).replace('"', "")
        assert ".ci/smoke.py --installed" in smoke, f"{job} does not smoke-test its wheel"
    assert '.ci/smoke.py" --installed' in local


def test_one_abi3_wheel_serves_every_supported_python():
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    abi3 = [f for f in cargo["dependencies"]["pyo3"]["features"] if f.startswith("abi3-py")]
    assert abi3 == ["abi3-py311"] and project["requires-python"] == ">=3.11"


def test_tags_publish_everything_by_trusted_publishing():
    workflow = _workflow()
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["push"]["tags"] == ["v*"]
    publish = workflow["jobs"]["publish"]
    assert set(publish["needs"]) == set(workflow["jobs"]) - {"publish"}
    assert publish["permissions"] == {"id-token": "write"}
    assert "refs/tags/" in publish["if"]
    uses = [s.get("uses", "") for s in publish["steps"]]
    assert any(u.startswith("pypa/gh-action-pypi-publish@") for u in uses)
    download = next(s for s in publish["steps"] if s.get("uses", "").startswith("actions/download-artifact"))
    uploads = [
        s["with"]["name"]
        for j in workflow["jobs"].values()
        for s in j["steps"]
        if "upload-artifact" in s.get("uses", "")
    ]
    assert all(name.startswith(download["with"]["pattern"].rstrip("*")) for name in uploads)
