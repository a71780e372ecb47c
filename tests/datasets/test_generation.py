"""Sharded dataset generation without Dask: bit-identity across splits and threads, resume and repair,
refusals, atomic writes, the manifest lock, and the CLI (including SLURM array tasks in parallel)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import synthsae
from synthsae._files import HOST
from synthsae.cli import main
from synthsae.datasets.shards import read_manifest, read_shard, read_state
from tests.conftest import assert_csr_equal

ROWS, SHARD_ROWS, SEED = 50_000, 12_000, 7  # 5 shards, the last one short


@pytest.fixture(scope="module")
def reference(world, tmp_path_factory) -> Path:
    """The dataset written by one process, shard after shard, on 2 threads."""
    out = tmp_path_factory.mktemp("reference") / "data"
    synthsae.generate(world, ROWS, out, seed=SEED, shard_rows=SHARD_ROWS, num_threads=2, show_progress=False)
    return out


def shard_entries(out: Path) -> list[dict]:
    return json.loads((out / "manifest.json").read_text())["shards"]


def read_all(out: Path) -> tuple[synthsae.SparseBatch, torch.Tensor | None]:
    manifest = read_manifest(out)
    parts = [read_shard(out / s.file, manifest.num_features) for s in manifest.shards]
    hidden = None if parts[0][1] is None else torch.cat([h for _, h in parts])
    return synthsae.SparseBatch.concat([f for f, _ in parts]), hidden


def test_shards_hold_exactly_the_world_rows(world, reference):
    report = synthsae.verify(reference)
    assert report.ok and report.good_rows == ROWS and report.num_shards == 5, str(report)
    manifest = read_manifest(reference)
    assert [(s.start, s.stop) for s in manifest.shards] == [
        (0, 12_000),
        (12_000, 24_000),
        (24_000, 36_000),
        (36_000, 48_000),
        (48_000, 50_000),
    ]
    assert manifest.world_sha256 == world.fingerprint() and manifest.seed == SEED and manifest.complete
    assert (
        manifest.rng_algorithm == synthsae.RNG_ALGORITHM and manifest.synthsae_version == synthsae.__version__
    )
    features, hidden = read_all(reference)
    assert hidden is None
    assert_csr_equal(features, world.sample_features(ROWS, seed=SEED))
    assert sum(s.nnz for s in manifest.shards) == features.nnz
    assert synthsae.World.load(reference / "world").fingerprint() == world.fingerprint()


def test_bit_identical_for_any_thread_count_and_split(world, reference, tmp_path):
    one = tmp_path / "one-thread"
    synthsae.generate(world, ROWS, one, seed=SEED, shard_rows=SHARD_ROWS, num_threads=1, show_progress=False)
    assert shard_entries(one) == shard_entries(reference)
    split = tmp_path / "split"
    for part in (2, 0, 1):
        report = synthsae.generate(
            world, ROWS, split, seed=SEED, shard_rows=SHARD_ROWS, split=(part, 3), show_progress=False
        )
        assert report.generated == [i for i in range(5) if i % 3 == part]
        assert report.complete == (part == 1)
    assert shard_entries(split) == shard_entries(reference)
    for a, b in zip(sorted(split.glob("shard-*")), sorted(reference.glob("shard-*")), strict=True):
        assert a.read_bytes() == b.read_bytes()


def test_other_shard_sizes_hold_the_same_rows(world, reference, tmp_path):
    out = tmp_path / "other"
    synthsae.generate(world, ROWS, out, seed=SEED, shard_rows=7_000, show_progress=False)
    assert read_manifest(out).shards[-1].rows == 1_000
    assert_csr_equal(read_all(out)[0], read_all(reference)[0])


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_hidden_activations_match_the_world(world, tmp_path, dtype):
    out = tmp_path / dtype
    synthsae.generate(
        world, 5_000, out, seed=1, shard_rows=2_000, hidden=True, dtype=dtype, show_progress=False
    )
    manifest = read_manifest(out)
    assert manifest.hidden and manifest.dtype == dtype
    features, hidden = read_all(out)
    expected = world.sample(5_000, seed=1)
    assert hidden.dtype == getattr(torch, dtype) and hidden.shape == (5_000, world.hidden_dim)
    assert torch.equal(hidden, expected.to(hidden.dtype))
    assert_csr_equal(features, world.sample_features(5_000, seed=1))


def test_rerun_keeps_intact_shards_and_repairs_missing_and_corrupt_ones(world, reference, tmp_path):
    out = tmp_path / "copy"
    synthsae.generate(world, ROWS, out, seed=SEED, shard_rows=SHARD_ROWS, show_progress=False)
    (out / "shard-000001.safetensors").unlink()
    corrupt = out / "shard-000003.safetensors"
    data = bytearray(corrupt.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte flipped in the tensor data
    corrupt.write_bytes(bytes(data))
    report = synthsae.verify(out)
    assert not report.ok and report.missing == [1] and report.corrupt == [3] and report.world_ok
    assert report.good_rows == ROWS - 2 * SHARD_ROWS
    assert "missing shards (1): 1" in str(report) and "corrupt shards (1): 3" in str(report)
    rerun = synthsae.generate(world, ROWS, out, seed=SEED, shard_rows=SHARD_ROWS, show_progress=False)
    assert rerun.generated == [1, 3] and rerun.skipped == [0, 2, 4] and rerun.complete
    assert synthsae.verify(out).ok
    assert shard_entries(out) == shard_entries(reference)


def test_a_missing_or_foreign_world_directory_is_repaired_or_reported(world, tmp_path):
    out = tmp_path / "data"
    synthsae.generate(world, 1_000, out, seed=0, shard_rows=500, show_progress=False)
    (out / "world" / "synthetic_model.safetensors").unlink()
    report = synthsae.verify(out)
    assert not report.world_ok and not report.ok and "synthetic_model.safetensors" in str(report)
    synthsae.generate(world, 1_000, out, seed=0, shard_rows=500, show_progress=False)
    assert synthsae.verify(out).ok


def test_directories_of_other_datasets_and_files_are_refused(world, reference, tmp_path):
    other = synthsae.World(dataclasses.replace(synthsae.preset("tiny"), seed=1), show_progress=False)
    before = shard_entries(reference)
    with pytest.raises(ValueError, match="different world"):
        synthsae.generate(other, ROWS, reference, seed=SEED, shard_rows=SHARD_ROWS, show_progress=False)
    with pytest.raises(ValueError, match=r"different seed \(7\)"):
        synthsae.generate(world, ROWS, reference, seed=8, shard_rows=SHARD_ROWS, show_progress=False)
    with pytest.raises(ValueError, match="rows=50000"):
        synthsae.generate(world, ROWS + 1, reference, seed=SEED, shard_rows=SHARD_ROWS, show_progress=False)
    with pytest.raises(ValueError, match="hidden=False"):
        synthsae.generate(
            world, ROWS, reference, seed=SEED, shard_rows=SHARD_ROWS, hidden=True, show_progress=False
        )
    assert shard_entries(reference) == before
    user = tmp_path / "notes"
    user.mkdir()
    (user / "thesis.txt").write_text("do not lose me")
    with pytest.raises(FileExistsError, match="not empty"):
        synthsae.generate(world, 10, user, seed=0, show_progress=False)
    assert sorted(p.name for p in user.iterdir()) == ["thesis.txt"]
    with pytest.raises(FileExistsError, match="not a directory"):
        synthsae.generate(world, 10, user / "thesis.txt", seed=0, show_progress=False)
    with pytest.raises(FileNotFoundError, match=r"manifest\.json is missing"):
        synthsae.verify(user)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rows": 0}, ValueError, "rows must be >= 1"),
        ({"rows": 1.5}, TypeError, "rows must be an integer"),
        ({"shard_rows": 0}, ValueError, "shard_rows must be >= 1"),
        ({"seed": -1}, ValueError, "seed must be >= 0"),
        ({"dtype": "int8", "hidden": True}, ValueError, "dtype must be one of"),
        ({"dtype": "float16"}, ValueError, "pass hidden=True"),
        ({"hidden": 1}, TypeError, "hidden must be a bool"),
        ({"client": "tcp://x:8786"}, TypeError, "client must be a dask.distributed.Client"),
        ({"num_threads": 0}, ValueError, "num_threads must be >= 1"),
        ({"split": (3, 3)}, ValueError, "split index must be <= 2"),
        ({"split": 2}, TypeError, "split must be a pair"),
        ({"world": 5}, TypeError, "world must be a World"),
    ],
)
def test_bad_arguments_name_themselves(world, tmp_path, kwargs, error, match):
    args = {"world": world, "rows": 100, "seed": 0} | kwargs
    with pytest.raises(error, match=match):
        synthsae.generate(args.pop("world"), args.pop("rows"), tmp_path / "x", show_progress=False, **args)
    assert not (tmp_path / "x").exists()


def test_a_failed_write_leaves_no_shard_and_no_record(world, tmp_path, monkeypatch):
    out = tmp_path / "data"
    synthsae.generate(world, 2_000, out, seed=0, shard_rows=1_000, split=(0, 2), show_progress=False)
    import safetensors.torch

    def fail_midway(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        synthsae.generate(world, 2_000, out, seed=0, shard_rows=1_000, show_progress=False)
    assert sorted(p.name for p in out.iterdir()) == [
        ".manifest.lock",
        "manifest.json",
        "records",
        "shard-000000.safetensors",
        "world",
    ]
    assert [s.sha256 is not None for s in read_state(out).shards] == [True, False]
    assert [p.name for p in (out / "records").iterdir()] == ["shard-000000.json"]


@pytest.mark.slow
def test_slurm_array_tasks_in_parallel_merge_into_one_dataset(world, reference, tmp_path):
    world_dir = tmp_path / "world"
    world.save(world_dir)
    out = tmp_path / "data"
    args = ["--world", str(world_dir), "--rows", str(ROWS), "--shard-rows", str(SHARD_ROWS)]
    command = [sys.executable, "-m", "synthsae", "generate", *args, "--seed", str(SEED), "--out", str(out)]
    tasks = []
    for task in (1, 2, 3):  # an array submitted as --array=1-3
        env = os.environ | {
            "SLURM_ARRAY_TASK_ID": str(task),
            "SLURM_ARRAY_TASK_COUNT": "3",
            "SLURM_ARRAY_TASK_MIN": "1",
            "OMP_NUM_THREADS": "1",
        }
        tasks.append(
            subprocess.Popen([*command, "--quiet", "--threads", "1"], env=env, stdout=subprocess.PIPE)
        )
    outputs = [t.communicate(timeout=300)[0].decode() for t in tasks]
    assert [t.returncode for t in tasks] == [0, 0, 0], outputs
    for task, output in enumerate(outputs):
        assert f"shards i with i mod 3 = {task}" in output
    assert shard_entries(out) == shard_entries(reference)
    assert synthsae.verify(out).ok


def test_cli_generate_resume_and_verify(world, tmp_path, capsys):
    world_dir = tmp_path / "world"
    world.save(world_dir)
    out = tmp_path / "data"
    base = ["generate", "--out", str(out), "--quiet"]
    new = [
        "--world",
        str(world_dir),
        "--rows",
        "3000",
        "--shard-rows",
        "1000",
        "--hidden",
        "--dtype",
        "float16",
    ]
    assert main([*base, *new, "--seed", "5", "--shard-index", "0", "--num-shards", "2"]) == 0
    assert "wrote 2 shards" in capsys.readouterr().out
    assert main(["verify", str(out)]) == 1
    assert "missing shards (1): 1" in capsys.readouterr().out
    assert main(base) == 0  # resumes with the manifest's world, rows, seed and settings
    assert "wrote 1 shards" in capsys.readouterr().out
    assert main(["verify", str(out)]) == 0
    assert "OK" in capsys.readouterr().out
    manifest = read_manifest(out)
    assert (manifest.seed, manifest.dtype, manifest.rows) == (5, "float16", 3000)
    hidden = torch.cat([read_shard(out / s.file, 1024)[1] for s in manifest.shards])
    assert torch.equal(hidden, world.sample(3000, seed=5).half())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rows", "10"], "--world and --rows are required"),
        (["--world", "tiny", "--rows", "10", "--dtype", "float16"], "pass --hidden with it"),
        (["--world", "tiny", "--rows", "10", "--shard-index", "1"], "go together"),
        (
            ["--world", "tiny", "--rows", "10", "--shard-index", "3", "--num-shards", "3"],
            "below --num-shards",
        ),
    ],
)
def test_cli_generate_usage_errors(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        main(["generate", "--out", str(tmp_path / "d"), *argv])
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_cli_refuses_a_slurm_task_outside_the_array(tmp_path, capsys, monkeypatch):
    for name, value in {"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_COUNT": "3"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SLURM_ARRAY_TASK_MIN", raising=False)
    with pytest.raises(SystemExit) as e:
        main(["generate", "--world", "tiny", "--rows", "10", "--out", str(tmp_path / "d")])
    assert e.value.code == 2 and "not in the array's range" in capsys.readouterr().err


def test_records_keep_every_shard_when_manifest_updates_are_lost(world, tmp_path):
    """Each writer records its shard in records/; a manifest overwritten by a stale copy (a lost
    update, e.g. on a filesystem without locks) loses nothing, and the next run consolidates it."""
    out = tmp_path / "data"
    synthsae.generate(world, 4_000, out, seed=0, shard_rows=1_000, split=(0, 2), show_progress=False)
    stale = (out / "manifest.json").read_text()
    synthsae.generate(world, 4_000, out, seed=0, shard_rows=1_000, split=(1, 2), show_progress=False)
    (out / "manifest.json").write_text(stale)
    assert not read_manifest(out).complete
    assert read_state(out).complete and synthsae.verify(out).ok
    assert len(list(synthsae.ShardDataset(out, batch_size=1_000))) == 4
    rerun = synthsae.generate(world, 4_000, out, seed=0, shard_rows=1_000, show_progress=False)
    assert rerun.generated == [] and rerun.complete and read_manifest(out).complete


def test_without_file_locks_generation_warns_and_completes(world, tmp_path, monkeypatch):
    import filelock

    def unsupported(self, *args, **kwargs):
        raise NotImplementedError("flock is not supported on this filesystem")

    monkeypatch.setattr(filelock.FileLock, "acquire", unsupported)
    with pytest.warns(UserWarning, match="without a lock"):
        report = synthsae.generate(
            world, 2_000, tmp_path / "d", seed=0, shard_rows=1_000, show_progress=False
        )
    assert report.complete and synthsae.verify(tmp_path / "d").ok


def test_a_foreign_manifest_is_refused_untouched(world, tmp_path):
    user = tmp_path / "project"
    user.mkdir()
    (user / "manifest.json").write_text('{"files": ["a.csv"]}')
    with pytest.raises(ValueError, match="not a valid synthsae manifest"):
        synthsae.generate(world, 10, user, seed=0, show_progress=False)
    assert [p.name for p in user.iterdir()] == ["manifest.json"]
    assert (user / "manifest.json").read_text() == '{"files": ["a.csv"]}'


def test_only_temporaries_of_dead_writers_on_this_host_are_removed(world, tmp_path):
    out = tmp_path / "data"
    synthsae.generate(world, 2_000, out, seed=0, shard_rows=1_000, show_progress=False)
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead = int(finished.stdout)
    names = {
        "dead": f".shard-000000.safetensors.tmp-{HOST}-{dead}-1",
        "alive": f".shard-000000.safetensors.tmp-{HOST}-{os.getppid()}-1",
        "elsewhere": f".shard-000001.safetensors.tmp-other-node-{dead}-1",
    }
    for name in names.values():
        (out / name).write_bytes(b"partial")
    synthsae.generate(world, 2_000, out, seed=0, shard_rows=1_000, show_progress=False)
    assert sorted(p.name for p in out.glob(".*.tmp-*")) == sorted([names["alive"], names["elsewhere"]])


def test_cli_failures_of_the_run_exit_1(tmp_path, capsys, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("synthsae.cli.commands.generate", disk_full)
    with pytest.raises(SystemExit) as e:
        main(["generate", "--world", "tiny", "--rows", "10", "--out", str(tmp_path / "d")])
    assert e.value.code == 1 and "failed: [Errno 28] No space left on device" in capsys.readouterr().err


def test_cli_slurm_task_says_it_wrote_only_its_share(tmp_path, capsys, monkeypatch):
    for name, value in {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"}.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "d"
    assert (
        main(["generate", "--world", "tiny", "--rows", "4000", "--shard-rows", "1000", "--out", str(out)])
        == 0
    )
    captured = capsys.readouterr()
    assert "wrote 2 shards" in captured.out and "--shard-index 0 --num-shards 1" in captured.err
    assert [s.sha256 is not None for s in read_state(out).shards] == [False, True, False, True]


def test_read_shard_reads_any_row_range(world, reference):
    path = reference / read_manifest(reference).shards[1].file
    whole, _ = read_shard(path, world.num_features)
    for lo, hi in [(0, 12_000), (5, 6), (3_000, 9_001), (12_000, 12_000)]:
        part, hidden = read_shard(path, world.num_features, (lo, hi))
        assert hidden is None
        assert_csr_equal(part, whole.take(range(lo, hi)))
    with pytest.raises(ValueError, match="outside the shard's 12000 rows"):
        read_shard(path, world.num_features, (11_000, 12_001))


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="zombies are told apart through /proc")
def test_a_killed_writer_counts_as_dead_before_it_is_reaped():
    # A worker killed with SIGKILL is a zombie until its parent reaps it; its temporary files are
    # stale from the moment it died (found by a Dask test whose run outpaced the reaping).
    from synthsae.datasets.shards import writer_alive as _alive

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert _alive(child.pid)
        child.kill()
        for _ in range(500):  # wait (up to 5 s) until it is a zombie, without reaping it
            state = Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0]
            if state == "Z":
                break
            time.sleep(0.01)
        assert not _alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not _alive(child.pid)


def files_outside(parent: Path, out: Path) -> dict[str, bytes | None]:
    """Everything under ``parent`` except the dataset ``out``: each file's bytes (None for a directory,
    the target for a symbolic link)."""
    found: dict[str, bytes | None] = {}
    for root, dirs, names in os.walk(parent):
        dirs[:] = [d for d in dirs if Path(root, d) != out]
        for name in dirs + names:
            path = Path(root, name)
            key = str(path.relative_to(parent))
            if path.is_symlink():
                found[key] = os.readlink(path).encode()
            else:
                found[key] = path.read_bytes() if path.is_file() else None
    return found


def small_dataset(world, parent: Path) -> Path:
    out = parent / "ds"
    synthsae.generate(world, 2_000, out, seed=0, shard_rows=1_000, show_progress=False)
    return out


def test_a_manifest_naming_a_file_outside_the_dataset_is_refused(world, tmp_path, capsys):
    out = small_dataset(world, tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious, not a shard\n")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["shards"][1]["file"] = "../victim.txt"
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "records" / "shard-000001.json").unlink()  # so the shard would be written again
    before = files_outside(tmp_path, out)
    message = rf"{re.escape(str(out / 'manifest.json'))} is not a valid synthsae manifest: shards\[1\] names"
    with pytest.raises(ValueError, match=message + r" the file '\.\./victim\.txt'"):
        synthsae.generate(world, 2_000, out, seed=0, shard_rows=1_000, show_progress=False)
    with pytest.raises(SystemExit) as e:
        main(["generate", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert e.value.code == 1 and str(out / "manifest.json") in err and "'../victim.txt'" in err, err
    with pytest.raises(ValueError, match=message):
        synthsae.verify(out)
    with pytest.raises(ValueError, match=message):
        synthsae.ShardDataset(out)
    assert files_outside(tmp_path, out) == before
    assert victim.read_bytes() == b"precious, not a shard\n"
    assert not (out / "records" / "shard-000001.json").exists()


def test_a_shard_that_is_a_symbolic_link_is_refused_not_followed(world, tmp_path, capsys):
    out = small_dataset(world, tmp_path)
    shard = out / "shard-000001.safetensors"
    elsewhere = tmp_path / "elsewhere.safetensors"
    shard.rename(elsewhere)  # the right bytes, outside the dataset
    shard.symlink_to(elsewhere)
    before = files_outside(tmp_path, out)
    with pytest.raises(
        ValueError, match=rf"{re.escape(str(shard))} is a symbolic link where shard 1 belongs"
    ):
        synthsae.generate(world, 2_000, out, seed=0, shard_rows=1_000, show_progress=False)
    with pytest.raises(SystemExit) as e:
        main(["generate", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"{shard} is a symbolic link" in err, err
    report = synthsae.verify(out)
    assert not report.ok and report.corrupt == [1] and report.missing == [], str(report)
    with pytest.raises(ValueError, match=rf"{re.escape(str(shard))} is a symbolic link"):
        read_shard(shard, world.num_features)
    with pytest.raises(ValueError, match="is a symbolic link"):
        list(synthsae.ShardDataset(out, batch_size=500))
    assert shard.is_symlink() and files_outside(tmp_path, out) == before
    shard.unlink()  # once the link is gone, a rerun writes the shard inside the dataset
    assert synthsae.generate(world, 2_000, out, seed=0, shard_rows=1_000, show_progress=False).generated == [
        1
    ]
    assert synthsae.verify(out).ok and files_outside(tmp_path, out) == before


@pytest.mark.parametrize("name", ["records", ".manifest.lock", "manifest.json"])
def test_other_dataset_files_that_are_symbolic_links_are_refused(world, tmp_path, name):
    out = small_dataset(world, tmp_path)
    elsewhere = tmp_path / f"moved-{name}"
    (out / name).rename(elsewhere)
    (out / name).symlink_to(elsewhere)
    before = files_outside(tmp_path, out)
    with pytest.raises(ValueError, match=rf"{re.escape(str(out / name))} is a symbolic link"):
        synthsae.generate(world, 2_000, out, seed=0, shard_rows=1_000, show_progress=False)
    assert files_outside(tmp_path, out) == before


def refused(case: str, path: Path, call) -> str:
    """``call()`` must raise a ValueError naming ``path``; returns its message."""
    try:
        call()
    except ValueError as e:
        assert str(path) in str(e), (case, str(e))
        return str(e)
    pytest.fail(f"{case}: no ValueError")


def test_corrupt_manifests_are_value_errors_naming_the_file(world, tmp_path, capsys):
    out = small_dataset(world, tmp_path)
    path = out / "manifest.json"
    good = path.read_bytes()
    raw = {
        "truncated JSON": good[: len(good) // 2],
        "not UTF-8": b"\xff\xfe" + good,
        "nested too deeply": b"[" * 100_000 + b"]" * 100_000,
        "a list": b"[]",
    }
    edits = {
        "missing key": lambda d: d.pop("seed"),
        "rows a string": lambda d: d.update(rows="2000"),
        "num_features a float": lambda d: d.update(num_features=1024.0),
        "hidden a string": lambda d: d.update(hidden="no"),
        "dtype without hidden": lambda d: d.update(dtype="float16"),
        "world_source a string": lambda d: d.update(world_source=str(tmp_path)),
        "shards an object": lambda d: d.update(shards={}),
        "shard a string": lambda d: d["shards"].__setitem__(0, "shard-000000.safetensors"),
        "shard with an unknown key": lambda d: d["shards"][0].update(path="x"),
        "index a bool": lambda d: d["shards"][1].update(index=True),
        "file a number": lambda d: d["shards"][0].update(file=0),
        "file an absolute path": lambda d: d["shards"][0].update(file=str(tmp_path / "x.safetensors")),
        "file of another shard": lambda d: d["shards"][0].update(file="shard-000001.safetensors"),
        "sha256 a number": lambda d: d["shards"][0].update(sha256=5),
    }
    for case, edit in edits.items():
        manifest = json.loads(good)
        edit(manifest)
        raw[case] = json.dumps(manifest).encode()
    for case, content in raw.items():
        path.write_bytes(content)
        refused(case, path, lambda: synthsae.verify(out))
        with pytest.raises(SystemExit) as e:
            main(["generate", "--out", str(out), "--quiet"])
        err = capsys.readouterr().err
        assert e.value.code == 1 and f"failed: {path}" in err, (case, err)  # an unusable file: a failed run
    path.write_bytes(good)
    assert synthsae.verify(out).ok


def test_corrupt_shard_records_are_value_errors_naming_the_file(world, tmp_path):
    out = small_dataset(world, tmp_path)
    record = out / "records" / "shard-000001.json"
    entry = json.loads(record.read_text())
    cases = {
        "truncated JSON": record.read_text()[:20],
        "a list": "[]",
        "index a string": json.dumps(entry | {"index": "1"}),
        "index negative": json.dumps(entry | {"index": -1}),
        "index beyond the plan": json.dumps(entry | {"index": 7}),
        "no sha256": json.dumps(entry | {"sha256": None}),
        "file outside": json.dumps(entry | {"file": "../victim.txt"}),
    }
    for case, text in cases.items():
        record.write_text(text)
        refused(case, record, lambda: synthsae.verify(out))
        refused(
            case,
            record,
            lambda: synthsae.generate(world, 2_000, out, seed=0, shard_rows=1_000, show_progress=False),
        )
    record.write_text(json.dumps(entry))
    misnamed = out / "records" / "shard-000000.json"  # holds shard 1's entry
    misnamed.write_text(json.dumps(entry))
    assert "does not match the manifest's shard 1" in refused(
        "misnamed", misnamed, lambda: synthsae.verify(out)
    )
