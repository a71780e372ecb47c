"""Generation on a real ``dask.distributed.LocalCluster`` with 2 worker processes: the same bytes as one
process, repair of a corrupt shard, and a worker killed mid-run losing and duplicating no rows."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

import synthsae
from synthsae.datasets.shards import read_manifest, read_shard
from tests.conftest import assert_csr_equal

distributed = pytest.importorskip("dask.distributed")

ROWS, SHARD_ROWS, SEED = 40_000, 6_000, 11


def local_cluster() -> distributed.LocalCluster:
    return distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        worker_dashboard_address=":0",
    )


@pytest.fixture(scope="module")
def client():
    with local_cluster() as cluster, distributed.Client(cluster) as client:
        yield client


def entries(out: Path) -> list[dict]:
    return json.loads((out / "manifest.json").read_text())["shards"]


def test_cluster_writes_the_same_bytes_as_one_process_and_repairs(world, client, tmp_path):
    kwargs = {
        "seed": SEED,
        "shard_rows": SHARD_ROWS,
        "hidden": True,
        "dtype": "float16",
        "show_progress": False,
    }
    local = tmp_path / "local"
    synthsae.generate(world, ROWS, local, **kwargs)
    dask = tmp_path / "dask"
    report = synthsae.generate(world, ROWS, dask, client=client, **kwargs)
    assert report.generated == list(range(7)) and report.complete
    assert entries(dask) == entries(local)
    workers = client.run(lambda: len(synthsae.datasets.generation._WORLDS))
    assert len(workers) == 2 and sum(workers.values()) >= 1  # shards ran in the worker processes

    corrupt = dask / "shard-000004.safetensors"
    corrupt.write_bytes(corrupt.read_bytes()[:-100])
    assert synthsae.verify(dask).corrupt == [4]
    rerun = synthsae.generate(world, ROWS, dask, client=client, **kwargs)
    assert rerun.generated == [4] and len(rerun.skipped) == 6
    assert synthsae.verify(dask).ok and entries(dask) == entries(local)


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_and_duplicates_no_rows(world, tmp_path):
    rows, shard_rows = 1_600_000, 100_000  # 16 shards, several seconds of work per worker
    reference = tmp_path / "reference"
    synthsae.generate(world, rows, reference, seed=SEED, shard_rows=shard_rows, show_progress=False)
    out = tmp_path / "dask"
    outcome: dict = {}
    with local_cluster() as cluster, distributed.Client(cluster) as client:
        pids = client.run(os.getpid)

        def run() -> None:
            try:
                outcome["report"] = synthsae.generate(
                    world, rows, out, seed=SEED, shard_rows=shard_rows, client=client, show_progress=False
                )
            except Exception as e:  # re-raised below in the test's thread
                outcome["error"] = e

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if list(out.glob("records/*.json")):
                break
            time.sleep(0.02)
        busy = [address for address, keys in client.processing().items() if keys]
        assert busy, "no worker was running a shard when the kill was due"
        done_at_kill = len(list(out.glob("records/*.json")))
        os.kill(pids[busy[0]], signal.SIGKILL)
        thread.join(timeout=300)
    assert "error" not in outcome, outcome.get("error")
    assert 0 < done_at_kill < 16, "the kill must land mid-run"
    assert outcome["report"].complete
    assert synthsae.verify(out).ok
    assert entries(out) == entries(reference)
    assert not list(out.glob(".*.tmp-*")), "stale temporary files were left behind"
    manifest = read_manifest(out)
    assert [(s.start, s.stop) for s in manifest.shards] == [
        (i, i + shard_rows) for i in range(0, rows, shard_rows)
    ]
    features = synthsae.SparseBatch.concat([read_shard(out / s.file, 1024)[0] for s in manifest.shards[:2]])
    assert_csr_equal(features, world.sample_features(2 * shard_rows, seed=SEED))


@pytest.mark.slow
def test_cli_on_a_scheduler_address_and_on_local_workers(world, client, tmp_path, capsys):
    from synthsae.cli import main

    world_dir = tmp_path / "world"
    world.save(world_dir)
    common = ["generate", "--world", str(world_dir), "--rows", "20000", "--shard-rows", "5000", "--quiet"]
    local = tmp_path / "local"
    assert main([*common, "--out", str(local)]) == 0
    remote = tmp_path / "remote"
    assert main([*common, "--out", str(remote), "--scheduler", client.scheduler.address]) == 0
    spawned = tmp_path / "spawned"
    assert main([*common, "--out", str(spawned), "--local-workers", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("wrote 4 shards") == 3 and "processes=2" in printed
    assert entries(remote) == entries(local) == entries(spawned)
