"""``generate``: write a sharded dataset of a world's samples, in this process or on a Dask cluster.

Shards are pure functions of (world, seed, shard index, rows per shard), so any split of the work —
local threads, Dask workers (``client=``), SLURM array tasks (``split=``) — writes the same bytes, and a
rerun only redoes shards that are missing or corrupt. See ``synthsae.datasets.shards`` for the format.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthsae._files import HOST
from synthsae._validate import as_bool, as_int, as_num_threads, as_seed, check_memory
from synthsae.datasets.shards import (
    HIDDEN_DTYPES,
    LOCK_FILE,
    MANIFEST_FILE,
    WORLD_DIR,
    Manifest,
    Shard,
    consolidate,
    intact,
    load_fingerprinted_world,
    manifest_lock,
    read_manifest,
    read_state,
    shard_path,
    stale_temporaries,
    write_manifest,
    write_shard,
    writer_alive,
)
from synthsae.errors import ConfigError, ConfigTypeError
from synthsae.world.model import World


@dataclass
class GenerateReport:
    """What a ``generate`` call did. ``generated``/``skipped``: shards of this call's share written /
    found intact; ``complete``: whether the whole dataset (all shares) is now written."""

    path: Path
    rows: int
    num_shards: int
    generated: list[int]
    skipped: list[int]
    rows_written: int
    seconds: float
    complete: bool

    @property
    def rows_per_second(self) -> float:
        """Rows written by this call per second of wall time."""
        return self.rows_written / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        state = "complete" if self.complete else "incomplete (other shares still to run)"
        return (
            f"{self.path}: wrote {len(self.generated)} shards ({self.rows_written:,} rows) in "
            f"{self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s), {len(self.skipped)} already intact; "
            f"dataset of {self.rows:,} rows in {self.num_shards} shards is {state}"
        )


def generate(
    world: World | str | os.PathLike[str],
    rows: int,
    out: str | os.PathLike[str],
    *,
    seed: int,
    shard_rows: int = 1_000_000,
    hidden: bool = False,
    dtype: str = "float32",
    client: Any = None,
    num_threads: int | None = None,
    split: tuple[int, int] | None = None,
    show_progress: bool = True,
) -> GenerateReport:
    """Writes rows ``0 .. rows`` of ``world`` (seed ``seed``) to the dataset directory ``out``.

    Args:
        world: a World, or the path of a world directory.
        rows: total rows in the dataset; shard ``i`` holds rows ``[i·shard_rows, (i+1)·shard_rows)``.
        out: the dataset directory: new, empty, or a dataset made with the same world, seed and
            settings (then intact shards are kept, and missing or corrupt ones rewritten).
        hidden: also store hidden activations ``[rows, D]`` in ``dtype`` (float32/float16/bfloat16).
        client: a ``dask.distributed.Client``: shards become Dask tasks (workers must see ``out`` at
            the same path, and have synthsae installed). None: this process, shard after shard.
        num_threads: sampling threads per shard; default all cores locally, 1 per Dask task (Dask
            runs one task per worker thread).
        split: ``(i, k)`` writes only shards ``j`` with ``j % k == i`` — one of ``k`` independent
            processes (SLURM array tasks) that together write the dataset into the same ``out``.

    Returns a GenerateReport. Raises ValueError for a directory made for another world, seed or
    settings, FileExistsError for a non-empty directory that is not a dataset.
    """
    if isinstance(world, str | os.PathLike):
        world = World.load(world)
    if not isinstance(world, World):
        raise ConfigTypeError(f"world must be a World or a world directory, got {type(world).__name__}")
    if not isinstance(out, str | os.PathLike):
        raise ConfigTypeError(f"out must be a directory path, got {type(out).__name__}")
    rows = as_int("rows", rows, minimum=1)
    shard_rows = as_int("shard_rows", shard_rows, minimum=1)
    seed = as_seed(seed)
    num_threads = as_num_threads(num_threads)
    hidden = as_bool("hidden", hidden)
    show_progress = as_bool("show_progress", show_progress)
    if dtype not in HIDDEN_DTYPES:
        raise ConfigError(f"dtype must be one of {HIDDEN_DTYPES}, got {dtype!r}")
    if dtype != "float32" and not hidden:
        raise ConfigError("dtype sets the hidden activations' type: pass hidden=True with it")
    if client is not None and not callable(getattr(client, "submit", None)):
        raise ConfigTypeError(f"client must be a dask.distributed.Client, got {type(client).__name__}")
    part, parts = _split(split)
    # One shard is sampled in memory: its row pointers, and its hidden rows in float32 and in dtype.
    hidden_bytes = 4 + (4 if dtype == "float32" else 2)
    per_row = 8 + (world.hidden_dim * hidden_bytes if hidden else 0)
    check_memory("shard_rows", min(rows, shard_rows) * per_row, f"shards of {min(rows, shard_rows):,} rows")

    t0 = time.perf_counter()
    out = Path(out).absolute()
    plan = Manifest.plan(
        world, rows=rows, shard_rows=shard_rows, seed=seed, hidden_dtype=dtype if hidden else None
    )
    _prepare(out, plan, world)
    before = read_state(out)
    mine = [s for s in before.shards if s.index % parts == part]
    good = intact(out, mine, num_threads)
    todo = [s for s, ok in zip(mine, good, strict=True) if not ok]
    skipped = [s for s, ok in zip(mine, good, strict=True) if ok]
    for s in todo:
        path = shard_path(out, s)
        if path.is_symlink():
            raise ConfigError(
                f"{path} is a symbolic link where shard {s.index} belongs; shards are written only as "
                f"files inside {out}, never through a link: remove it"
            )
        if path.is_dir():
            raise FileExistsError(f"{path} is a directory where shard {s.index} belongs: move it")

    from tqdm.auto import tqdm

    bar = tqdm(
        total=sum(s.rows for s in mine),
        initial=sum(s.rows for s in skipped),
        unit="row",
        unit_scale=True,
        desc=f"generating {out.name}",
        disable=not show_progress,
    )
    with bar:
        if client is None:
            written = _run_local(world, out, todo, seed, plan.dtype, num_threads, bar)
        else:
            written = _run_dask(client, out, plan.world_sha256, todo, seed, plan.dtype, num_threads or 1, bar)
    for new in written:
        old = before.shards[new.index].sha256
        if old is not None and old != new.sha256:
            warnings.warn(
                f"shard {new.index} was rewritten with a different sha256 than recorded "
                f"({old[:12]} -> {new.sha256}): the old file came from another synthsae build",
                stacklevel=2,
            )
    state = consolidate(out)
    # Including those beside the shards this run rewrote: a killed writer's half-written file.
    for path in stale_temporaries(out, [s for s in state.shards if s.index % parts == part]):
        path.unlink(missing_ok=True)
    return GenerateReport(
        path=out,
        rows=rows,
        num_shards=len(state.shards),
        generated=sorted(s.index for s in written),
        skipped=[s.index for s in skipped],
        rows_written=sum(s.rows for s in written),
        seconds=time.perf_counter() - t0,
        complete=state.complete,
    )


def _split(split: Any) -> tuple[int, int]:
    if split is None:
        return 0, 1
    if not isinstance(split, tuple | list) or len(split) != 2:
        raise ConfigTypeError(f"split must be a pair (index, count), got {split!r}")
    count = as_int("split count", split[1], minimum=1)
    return as_int("split index", split[0], minimum=0, maximum=count - 1), count


def _prepare(out: Path, plan: Manifest, world: World) -> None:
    """Creates the dataset directory (the manifest, then world/) or checks an existing one against
    ``plan``. The manifest records the settings and how to rebuild the world (``world_source``), and
    world/ is written to a temporary directory and renamed, so ``generate --out DIR`` alone resumes
    any run that got as far as its manifest (:func:`~synthsae.datasets.shards.dataset_world`). A directory
    that holds anything but a synthsae dataset, or the beginnings of one for this plan, is refused
    before anything is written; temporaries of writers that died are removed."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    if out.is_dir():
        names = [p.name for p in out.iterdir()]
        # The manifest is checked after listing: another writer may have created the dataset meanwhile.
        if MANIFEST_FILE in names or (out / MANIFEST_FILE).exists():
            _check_matches(out, plan)
        else:
            _check_unstarted(out, names, plan)
    out.mkdir(parents=True, exist_ok=True)
    with manifest_lock(out):
        started = (out / MANIFEST_FILE).exists()
        if started:
            _check_matches(out, plan)
        else:
            _check_unstarted(out, [p.name for p in out.iterdir()], plan)
        if not started:
            write_manifest(out, plan)
        if not _has_world(out / WORLD_DIR, plan.world_sha256):
            _write_world(out, world)
        for path in _dead_temporaries(out):
            _remove(path)


# Temporaries beside the manifest and world/: name prefix -> fields after the host (pid[, thread]).
_TEMPORARIES = {f".{MANIFEST_FILE}.tmp-": 2, f".{WORLD_DIR}.tmp-": 1}


def _check_unstarted(out: Path, names: list[str], plan: Manifest) -> None:
    """A directory without a manifest may hold only what an interrupted start of this same dataset
    leaves: the lock, temporaries, and this plan's world/."""
    for name in names:
        if name == LOCK_FILE or name.startswith(tuple(_TEMPORARIES)):
            continue
        if name == WORLD_DIR and _has_world(out / WORLD_DIR, plan.world_sha256):
            continue
        raise FileExistsError(f"{out} is not empty and holds no synthsae dataset; choose another directory")


def _write_world(out: Path, world: World) -> None:
    """world/ by rename of a complete temporary copy (under the manifest lock: one writer at a time)."""
    tmp = out / f".{WORLD_DIR}.tmp-{HOST}-{os.getpid()}"
    _remove(tmp)
    world.save(tmp, overwrite=True)
    target = out / WORLD_DIR
    # Incomplete, damaged or a link to another world (_has_world said it is not this plan's world).
    _remove(target)
    os.rename(tmp, target)


def _remove(path: Path) -> None:
    """Removes ``path`` from the dataset directory: a directory with its contents, a file, or a
    symbolic link itself (never what it points to)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _dead_temporaries(out: Path) -> list[Path]:
    """The manifest's and world/'s temporaries left by writers on this host that have died."""
    dead = []
    for path in out.iterdir():
        for prefix, fields in _TEMPORARIES.items():
            if path.name.startswith(prefix):
                host, pid, *_ = path.name.removeprefix(prefix).rsplit("-", fields)
                if host == HOST and pid.isdigit() and not writer_alive(int(pid)):
                    dead.append(path)
    return dead


def _check_matches(out: Path, plan: Manifest) -> None:
    manifest = read_manifest(out)
    manifest.check_matches(plan, out / MANIFEST_FILE)
    if manifest.synthsae_version != plan.synthsae_version:
        warnings.warn(
            f"{out} was started with synthsae {manifest.synthsae_version}, this is {plan.synthsae_version}: "
            "shards it writes are checked against the recorded checksums where they exist",
            stacklevel=4,
        )


def _check_empty(out: Path, names: list[str], ignore: tuple[str, ...]) -> None:
    if any(not name.startswith(ignore) for name in names):
        raise FileExistsError(f"{out} is not empty and holds no synthsae dataset; choose another directory")


def _has_world(path: Path, fingerprint: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load_fingerprinted_world(path, fingerprint)
        return True
    except (OSError, ValueError):
        return False


def _run_local(
    world: World,
    out: Path,
    todo: list[Shard],
    seed: int,
    hidden_dtype: str | None,
    num_threads: int | None,
    bar: Any,
) -> list[Shard]:
    written = []
    for shard in todo:
        written.append(
            write_shard(world, out, shard, seed=seed, hidden_dtype=hidden_dtype, num_threads=num_threads)
        )
        bar.update(shard.rows)
    return written


def _run_dask(
    client: Any,
    out: Path,
    fingerprint: str,
    todo: list[Shard],
    seed: int,
    hidden_dtype: str | None,
    num_threads: int,
    bar: Any,
) -> list[Shard]:
    from dask.distributed import as_completed

    world_dir = str(out / WORLD_DIR)
    futures = [
        client.submit(
            _dask_task,
            world_dir,
            fingerprint,
            str(out),
            shard,
            seed,
            hidden_dtype,
            num_threads,
            key=f"synthsae-shard-{shard.index:06d}-{fingerprint[:8]}-{os.getpid()}-{time.time_ns()}",
            retries=2,
        )
        for shard in todo
    ]
    written, failed = [], []
    try:
        for future in as_completed(futures):
            try:
                done = future.result()
            except Exception as e:
                failed.append(f"{future.key}: {type(e).__name__}: {e}")
                continue
            written.append(done)
            bar.update(done.rows)
    finally:
        client.cancel(futures)
    if failed:
        raise RuntimeError(
            f"{len(failed)} of {len(todo)} shards failed (the others are saved; rerun to finish):\n"
            + "\n".join(failed[:10])
        )
    return written


_WORLDS: dict[str, World] = {}  # by fingerprint
_WORLDS_LOCK = threading.Lock()


def _dask_task(
    world_dir: str,
    fingerprint: str,
    out: str,
    shard: Shard,
    seed: int,
    hidden_dtype: str | None,
    num_threads: int,
) -> Shard:
    """One shard on a Dask worker: the world is loaded from the dataset's ``world/`` once per process."""
    with _WORLDS_LOCK:
        world = _WORLDS.get(fingerprint)
        if world is None:
            world = _WORLDS[fingerprint] = load_fingerprinted_world(Path(world_dir), fingerprint)
    return write_shard(world, Path(out), shard, seed=seed, hidden_dtype=hidden_dtype, num_threads=num_threads)
