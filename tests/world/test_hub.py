"""Worlds from the Hugging Face Hub, tested offline against a local Hub cache in huggingface_hub's
documented layout (``models--owner--name/refs/main``, ``snapshots/<commit>/...``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import synthsae
from synthsae.world.hub import HUB_PRESETS, is_hub_source, split_source

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _hub_cache(tmp_path: Path, repo_id: str, world: synthsae.World, subfolder: str | None = None) -> Path:
    """A Hub cache holding ``world`` saved at ``repo_id`` (in ``subfolder``) on branch main."""
    cache = tmp_path / "hub"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    world.save(snapshot / subfolder if subfolder else snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return cache


def _offline(cache: Path, code: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "HF_HOME": str(cache.parent)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def small_world() -> synthsae.World:
    config = synthsae.preset("tiny")
    config.orthogonalization = None
    return synthsae.World(config, show_progress=False)


@pytest.mark.parametrize("subfolder", [None, "worlds/tiny"])
def test_from_pretrained_offline_equals_load(tmp_path, small_world, subfolder):
    cache = _hub_cache(tmp_path, "someone/tiny-world", small_world, subfolder)
    source = "someone/tiny-world" + (f":{subfolder}" if subfolder else "")
    local = cache / "models--someone--tiny-world" / "snapshots" / COMMIT / (subfolder or "")
    code = f"""
import json, torch, synthsae
hub = synthsae.World.from_pretrained({source!r})
disk = synthsae.World.load({str(local)!r})
same = all(torch.equal(getattr(hub, k), getattr(disk, k)) for k in
           ("feature_vectors", "bias", "firing_probabilities", "correlation_factor"))
rows = torch.equal(hub.sample(512, seed=3), disk.sample(512, seed=3))
world, name = synthsae.resolve_world({source!r})
print(json.dumps([hub.fingerprint(), disk.fingerprint(), same, rows, name, world.fingerprint()]))
"""
    hub_fp, disk_fp, same, rows, name, resolved_fp = json.loads(_offline(cache, code).splitlines()[-1])
    assert same and rows and hub_fp == disk_fp == resolved_fp == small_world.fingerprint()
    assert name == source


def test_missing_world_and_cli(tmp_path, small_world):
    cache = _hub_cache(tmp_path, "someone/tiny-world", small_world)
    code = """
import synthsae
try:
    synthsae.World.from_pretrained("someone/not-cached")
except synthsae.ConfigError as e:
    print("refused:", e)
from synthsae.cli import main
main(["world", "stats", "someone/tiny-world", "--samples", "2000", "--json"])
"""
    out = _offline(cache, code)
    assert "refused: someone/not-cached: no world there" in out
    stats = json.loads(out[out.index("{") :])
    assert stats["num_samples"] == 2000 and stats["true_l0"] > 0


def test_sources():
    assert is_hub_source("decoderesearch/synth-sae-bench-16k-v2")
    assert is_hub_source("owner/name:path/in/repo")
    for local in ("./a/b", "/abs/path", "~/w", "a\\b", "just-a-name"):
        assert not is_hub_source(local)
    assert split_source("o/n:a/b") == ("o/n", "a/b") and split_source("o/n") == ("o/n", None)
    for bad in ("o/n:../x", "o/n:/abs", "o/n:a/../../b", "not a repo"):
        with pytest.raises(ValueError, match="source"):
            split_source(bad)
    assert HUB_PRESETS["decoderesearch/synth-sae-bench-16k-v2"] in synthsae.PRESETS
