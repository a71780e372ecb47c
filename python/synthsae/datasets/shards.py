"""Sharded datasets on disk: the manifest, shard files, their checksums, and ``verify``.

A dataset directory holds::

    world/                      the world, in SAELens's layout
    manifest.json               the plan (world, seed, row ranges) and every finished shard's sha256
    shard-000000.safetensors    rows [start, stop): CSR features (indptr, indices, values) [+ hidden]
    records/shard-000000.json   the finished shard's manifest entry, written by its writer

A shard is a pure function of (world, seed, start, stop, hidden dtype): the same bytes whichever
process, machine or thread count writes it. Every file is written to a temporary name and renamed.
Whoever writes a shard then writes its record; the records are the source of truth, and the manifest
gathers them (``consolidate``, at the end of every ``generate`` call, under a file lock where the
filesystem has one). Readers overlay the records on the manifest, so no finished shard is ever lost,
however many writers share the directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from io import BufferedReader
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthsae import _core
from synthsae._files import HOST, atomic_write, write_json
from synthsae._validate import as_bool, as_count, as_int, as_seed, check_memory
from synthsae.errors import ConfigError, ConfigTypeError, FileFormatError
from synthsae.world.sparse import SparseBatch

if TYPE_CHECKING:
    import torch

    from synthsae.world.model import World

FORMAT = "synthsae-shards"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
WORLD_DIR = "world"
RECORDS_DIR = "records"
LOCK_FILE = ".manifest.lock"
HIDDEN_DTYPES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class Shard:
    """A shard's manifest entry: rows ``[start, stop)`` in ``file``; ``sha256`` (of the file), ``nnz``
    and ``bytes`` are None until it has been written."""

    index: int
    file: str
    start: int
    stop: int
    sha256: str | None = None
    nnz: int | None = None
    bytes: int | None = None

    @property
    def rows(self) -> int:
        return self.stop - self.start


@dataclass
class Manifest:
    """The contents of ``manifest.json``."""

    world_sha256: str
    world_config_sha256: str
    num_features: int
    hidden_dim: int
    seed: int
    rows: int
    shard_rows: int
    hidden: bool
    dtype: str | None
    rng_algorithm: str
    synthsae_version: str
    shards: list[Shard] = field(default_factory=list)
    #: ``World.source`` of the dataset's world: what rebuilds it if world/ was never finished.
    world_source: dict[str, Any] | None = None
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    @classmethod
    def plan(
        cls, world: World, *, rows: int, shard_rows: int, seed: int, hidden_dtype: str | None
    ) -> Manifest:
        """The manifest of a new dataset: ``ceil(rows / shard_rows)`` shards, none written yet."""
        config = json.dumps(world.config.to_dict(), sort_keys=True).encode()
        return cls(
            world_sha256=world.fingerprint(),
            world_config_sha256=hashlib.sha256(config).hexdigest(),
            num_features=world.num_features,
            hidden_dim=world.hidden_dim,
            seed=seed,
            rows=rows,
            shard_rows=shard_rows,
            hidden=hidden_dtype is not None,
            dtype=hidden_dtype,
            rng_algorithm=_core.RNG_ALGORITHM,
            synthsae_version=_core.__version__,
            shards=_plan_shards(rows, shard_rows),
            world_source=world.source,
        )

    @property
    def complete(self) -> bool:
        """Whether every shard has been written."""
        return all(s.sha256 is not None for s in self.shards)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        head = {"format": d.pop("format"), "format_version": d.pop("format_version")}
        return head | d

    @classmethod
    def from_dict(cls, d: Any, path: Path) -> Manifest:
        """The manifest in ``d`` (the JSON of ``path``): FileFormatError naming ``path`` unless every field
        has the type ``plan`` gives it and the shard list is exactly the plan, file names included."""
        try:
            if not isinstance(d, dict):
                raise ConfigTypeError(f"it holds a JSON {type(d).__name__}, not an object")
            if d.get("format") != FORMAT:
                raise ConfigError(f"format is {d.get('format')!r}, not {FORMAT!r}")
            if d.get("format_version") != FORMAT_VERSION:
                raise ConfigError(f"format_version {d.get('format_version')!r} is not {FORMAT_VERSION}")
            if not isinstance(d.get("shards"), list):
                raise ConfigTypeError(f"shards must be a list, got {type(d.get('shards')).__name__}")
            shards = [_shard_from_json(s, f"shards[{i}]") for i, s in enumerate(d["shards"])]
            manifest = cls(**{**d, "shards": shards})
            _check_settings(manifest)
            _check_tiling(shards, manifest.rows, manifest.shard_rows)
            for i, s in enumerate(shards):
                _check_file(s, f"shards[{i}]")
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise FileFormatError(f"{path} is not a valid synthsae manifest: {e}", path) from None
        return manifest

    def check_matches(self, other: Manifest, path: Path) -> None:
        """Raises ConfigError unless ``other`` (a new plan) describes the dataset this manifest does: the
        output directory holds another dataset, and the fix is to choose another one."""
        if (self.world_sha256, self.seed) != (other.world_sha256, other.seed):
            what = "world" if self.world_sha256 != other.world_sha256 else f"seed ({self.seed})"
            raise ConfigError(
                f"{path} holds a dataset made for a different {what}; choose another output directory"
            )
        keys = ("rows", "shard_rows", "hidden", "dtype", "rng_algorithm")
        diff = [
            f"{k}={getattr(self, k)!r} (asked {getattr(other, k)!r})"
            for k in keys
            if getattr(self, k) != getattr(other, k)
        ]
        if diff:
            raise ConfigError(f"{path} holds a dataset made with different settings: {', '.join(diff)}")


def _check_tiling(shards: list[Shard], rows: Any, shard_rows: Any) -> None:
    """The shard list must be exactly the plan of ``rows`` and ``shard_rows`` (checked against the
    list itself, so an edited ``rows`` cannot make a plan bigger than the file)."""
    rows, shard_rows = as_int("rows", rows, minimum=1), as_int("shard_rows", shard_rows, minimum=1)
    if len(shards) != -(-rows // shard_rows):
        raise ConfigError(
            f"{len(shards)} shards listed, but rows / shard_rows gives {-(-rows // shard_rows)}"
        )
    for i, s in enumerate(shards):
        if (s.index, s.start, s.stop) != (i, i * shard_rows, min((i + 1) * shard_rows, rows)):
            raise ConfigError("shard row ranges do not tile [0, rows) in shard_rows steps")


def shard_file(index: int) -> str:
    """The file name the plan gives shard ``index``: the only name a shard is read from or written to."""
    return f"shard-{index:06d}.safetensors"


def record_file(index: int) -> str:
    """The name of shard ``index``'s record in ``records/``."""
    return f"shard-{index:06d}.json"


_HEX = frozenset("0123456789abcdef")


def _shard_from_json(entry: Any, where: str = "") -> Shard:
    """A shard entry read from disk (in the manifest or a record), with the field types a writer gives
    it; TypeError/ValueError naming the field (``where.field``) otherwise. The file name is checked by
    the caller (``_check_file``), against the plan."""
    prefix = f"{where}." if where else ""
    if not isinstance(entry, dict):
        raise ConfigTypeError(f"{where or 'the entry'} must be an object, got {type(entry).__name__}")
    try:
        shard = Shard(**entry)
    except TypeError as e:  # a missing or unknown key
        raise ConfigTypeError(f"{where}: {e}" if where else str(e)) from None
    for name in ("index", "start", "stop"):
        as_int(prefix + name, getattr(shard, name), minimum=0)
    for name in ("nnz", "bytes"):
        if getattr(shard, name) is not None:
            as_int(prefix + name, getattr(shard, name), minimum=0)
    if not isinstance(shard.file, str):
        raise ConfigTypeError(f"{prefix}file must be a string, got {type(shard.file).__name__}")
    digest = shard.sha256
    if digest is not None and not (isinstance(digest, str) and len(digest) == 64 and set(digest) <= _HEX):
        raise ConfigError(f"{prefix}sha256 is {digest!r}, not a sha256 hex digest")
    return shard


def _check_file(shard: Shard, where: str) -> None:
    """A shard entry must name the file the plan gives its index, and nothing else."""
    planned = shard_file(shard.index)
    if shard.file != planned:
        raise ConfigError(f"{where} names the file {shard.file!r}; shard {shard.index}'s file is {planned!r}")


def _check_settings(manifest: Manifest) -> None:
    """The manifest's settings have the types ``Manifest.plan`` gives them."""
    for name in ("world_sha256", "world_config_sha256", "rng_algorithm", "synthsae_version"):
        value = getattr(manifest, name)
        if not isinstance(value, str):
            raise ConfigTypeError(f"{name} must be a string, got {type(value).__name__}")
    as_count("num_features", manifest.num_features, minimum=1)
    as_count("hidden_dim", manifest.hidden_dim, minimum=1)
    as_seed(manifest.seed)
    as_bool("hidden", manifest.hidden)
    if manifest.dtype not in (None, *HIDDEN_DTYPES):
        raise ConfigError(f"dtype must be null or one of {HIDDEN_DTYPES}, got {manifest.dtype!r}")
    if manifest.hidden != (manifest.dtype is not None):
        raise ConfigError(f"hidden is {manifest.hidden} but dtype is {manifest.dtype!r}")
    source = manifest.world_source
    if source is None:
        return
    if not isinstance(source, dict):
        raise ConfigTypeError(f"world_source must be an object or null, got {type(source).__name__}")
    kinds = {
        "config": (dict, "an object"),
        "directory": (str, "a string"),
        "orthogonalization": (str, "a string"),
    }
    for key, (kind, what) in kinds.items():
        if key in source and not isinstance(source[key], kind):
            raise ConfigTypeError(f"world_source.{key} must be {what}, got {type(source[key]).__name__}")


def shard_path(out: Path, shard: Shard) -> Path:
    """Where ``shard`` lives in the dataset directory ``out``: ValueError unless its entry names the
    planned file (so no path from disk reaches the filesystem)."""
    _check_file(shard, f"shard {shard.index}")
    return out / shard.file


def _is_regular_file(path: Path) -> bool:
    """Whether ``path`` is a regular file itself (a symbolic link is not followed)."""
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def _refuse_symlink(path: Path, what: str) -> None:
    """FileFormatError if ``path`` is a symbolic link: a dataset's ``what`` is read and written only in
    its directory, never through a link that may lead out of it."""
    if path.is_symlink():
        raise FileFormatError(
            f"{path} is a symbolic link; synthsae reads and writes {what} only inside the dataset "
            "directory, never through a link: remove the link",
            path,
        )


def _open_regular(path: Path, what: str) -> BufferedReader:
    """``path`` opened for reading; FileFormatError if it is a symbolic link (not followed) or not a
    regular file."""
    _refuse_symlink(path, what)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    f = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        f.close()
        raise FileFormatError(f"{path} is not a regular file", path)
    return f


def _read_json(path: Path, what: str) -> Any:
    """The JSON in ``path`` (a regular file, see ``_open_regular``); FileFormatError naming it if the file
    is not UTF-8 JSON."""
    with _open_regular(path, what) as f:
        data = f.read()
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise FileFormatError(f"{path} is not valid JSON: {e}", path) from None


def _shard_bytes() -> int:
    """The memory one shard's entry takes while a plan is built and written: the object, its file
    name, and its dict and JSON forms."""
    shard = Shard(0, shard_file(0), 0, 1)
    entry = asdict(shard)
    sizes = (shard, vars(shard), shard.file, entry)
    return sum(sys.getsizeof(x) for x in sizes) + len(json.dumps(entry))


def _plan_shards(rows: int, shard_rows: int) -> list[Shard]:
    """Shard i holds rows ``[i·shard_rows, min((i+1)·shard_rows, rows))``; none written yet. A plan
    that would not fit in memory is refused (``ValueError`` naming ``rows``) before it is built."""
    count = -(-rows // shard_rows)
    check_memory("rows", count * _shard_bytes(), f"a plan of {count:,} shards of {shard_rows:,} rows")
    return [
        Shard(i, shard_file(i), start, min(start + shard_rows, rows))
        for i, start in enumerate(range(0, rows, shard_rows))
    ]


@contextmanager
def manifest_lock(out: Path) -> Iterator[None]:
    """Serialises manifest updates across processes and machines sharing ``out`` (``flock``). On a
    filesystem without locks it warns and goes on: the records keep every finished shard anyway."""
    from filelock import FileLock

    _refuse_symlink(out / LOCK_FILE, "the manifest's lock file")
    lock = FileLock(str(out / LOCK_FILE))
    try:
        lock.acquire()
    except (OSError, NotImplementedError) as e:
        warnings.warn(
            f"cannot lock {out / LOCK_FILE} ({e}); updating the manifest without a lock", stacklevel=3
        )
        yield
        return
    try:
        yield
    finally:
        lock.release()


def read_manifest(out: Path) -> Manifest:
    """The manifest as written (see ``read_state`` for the dataset's current state). FileFormatError
    naming the file if it is not a valid manifest (see ``Manifest.from_dict``) or is a symbolic link."""
    path = out / MANIFEST_FILE
    if not os.path.lexists(path):
        raise FileNotFoundError(f"{out} is not a synthsae dataset: {MANIFEST_FILE} is missing")
    return Manifest.from_dict(_read_json(path, "the manifest"), path)


def read_state(out: Path, manifest: Manifest | None = None) -> Manifest:
    """The manifest (``manifest``, or the one on disk) with every shard record in ``records/``
    applied: which shards are written now. A record must be a regular file named for its shard and
    describe that shard of the plan, else FileFormatError naming it."""
    manifest = replace(manifest or read_manifest(out))
    manifest.shards = list(manifest.shards)
    records = out / RECORDS_DIR
    _refuse_symlink(records, f"shard records ({RECORDS_DIR}/)")
    for path in sorted(records.glob("shard-*.json")):
        data = _read_json(path, f"shard records ({RECORDS_DIR}/)")
        try:
            shard = _shard_from_json(data)
            if shard.index >= len(manifest.shards):
                raise ConfigError(
                    f"shard {shard.index} is beyond the manifest's {len(manifest.shards)} shards"
                )
            if shard.sha256 is None:
                raise ConfigError("it records no sha256")
        except (TypeError, ValueError) as e:
            raise FileFormatError(f"{path} is not a valid shard record: {e}", path) from None
        planned = manifest.shards[shard.index]
        same = (shard.file, shard.start, shard.stop) == (planned.file, planned.start, planned.stop)
        if path.name != record_file(shard.index) or not same:
            raise FileFormatError(f"{path} does not match the manifest's shard {shard.index}", path)
        manifest.shards[shard.index] = shard
    return manifest


def write_manifest(out: Path, manifest: Manifest) -> None:
    write_json(out / MANIFEST_FILE, manifest.to_dict())


def consolidate(out: Path) -> Manifest:
    """Writes the records into the manifest (under the lock); returns the dataset's state."""
    with manifest_lock(out):
        manifest = read_manifest(out)
        state = read_state(out, manifest)
        if state != manifest:
            write_manifest(out, state)
    return state


def load_fingerprinted_world(path: Path, fingerprint: str) -> World:
    """The world in directory ``path``; FileFormatError unless it is the one with ``fingerprint``."""
    from synthsae.world.model import World

    world = World.load(path)
    if world.fingerprint() != fingerprint:
        raise FileFormatError(f"{path} is not the world this dataset was made for", path)
    return world


def dataset_world(out: Path, manifest: Manifest) -> World:
    """The world of the dataset in ``out``: its world/, or, if a run was stopped before world/ was
    finished, the world rebuilt from the manifest's ``world_source``; either way checked against the
    manifest's fingerprint. When neither is possible, ConfigError naming what is missing and asking for
    ``--world``: the dataset cannot name its world, so the caller must."""
    from synthsae.world.model import World

    try:
        return load_fingerprinted_world(out / WORLD_DIR, manifest.world_sha256)
    except (OSError, ValueError) as e:
        problem = e
    source = manifest.world_source or {}
    try:
        if "config" in source:
            from synthsae.world.config import WorldConfig

            config = WorldConfig.from_dict(source["config"])
            world = World(config, orthogonalization=source.get("orthogonalization", "gram"))
        elif "directory" in source:
            world = World.load(source["directory"])
        else:
            raise ConfigError("the manifest records no world_source to rebuild it from")
    except (OSError, TypeError, ValueError) as e:
        raise ConfigError(
            f"{out / WORLD_DIR}: {problem}; and the world cannot be rebuilt ({e}): "
            "pass --world to name the dataset's world"
        ) from None
    if world.fingerprint() != manifest.world_sha256:
        raise ConfigError(
            f"{out / WORLD_DIR}: {problem}, and the world rebuilt from the manifest's world_source is "
            "not this dataset's; pass --world to name it"
        )
    return world


def file_sha256(path: Path) -> str:
    """The sha256 of the regular file ``path`` (ValueError for a symbolic link, which is not followed)."""
    with _open_regular(path, "shards") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def write_shard(
    world: World, out: Path, shard: Shard, *, seed: int, hidden_dtype: str | None, num_threads: int | None
) -> Shard:
    """Samples the shard's rows, writes ``out / shard.file`` and then its record, each atomically;
    returns the entry with its sha256, nnz and size filled in. ValueError if the entry does not name
    the planned file, or if that file or ``records/`` is a symbolic link."""
    import torch
    from safetensors.torch import save_file

    target = shard_path(out, shard)
    _refuse_symlink(target, "shards")
    _refuse_symlink(out / RECORDS_DIR, f"shard records ({RECORDS_DIR}/)")
    features = world.sample_features(shard.rows, seed=seed, start=shard.start, num_threads=num_threads)
    tensors = {
        "indptr": torch.from_numpy(features.indptr),
        "indices": torch.from_numpy(features.indices),
        "values": torch.from_numpy(features.values),
    }
    if hidden_dtype is not None:
        hidden = world.hidden_from_features(features, num_threads=num_threads)
        tensors["hidden"] = hidden.to(getattr(torch, hidden_dtype))
    # One metadata key: safetensors writes a multi-key metadata map in arbitrary order.
    meta: dict[str, Any] = {"shard": shard.index, "start": shard.start, "stop": shard.stop, "seed": seed}
    meta |= {"world_sha256": world.fingerprint(), "rng_algorithm": _core.RNG_ALGORITHM, "format": FORMAT}
    digest: list[str] = []

    def write(tmp: Path) -> None:
        save_file(tensors, str(tmp), metadata={"synthsae": json.dumps(meta, sort_keys=True)})
        digest.append(file_sha256(tmp))

    atomic_write(target, write)
    done = replace(shard, sha256=digest[0], nnz=features.nnz, bytes=target.lstat().st_size)
    (out / RECORDS_DIR).mkdir(exist_ok=True)
    write_json(out / RECORDS_DIR / record_file(shard.index), asdict(done))
    return done


def read_shard(
    path: Path, num_features: int, rows: tuple[int, int] | None = None
) -> tuple[SparseBatch, torch.Tensor | None]:
    """A shard's features ``[rows, N]`` and hidden activations ``[rows, D]`` (None if not stored);
    ``rows=(lo, hi)`` reads only rows ``lo .. hi`` of the shard from disk. A symbolic link is refused
    (FileFormatError), not followed; so is a file that is not a readable shard."""
    from safetensors import safe_open

    _refuse_symlink(Path(path), "shards")
    try:
        with safe_open(str(path), framework="pt") as f:
            n = f.get_slice("indptr").get_shape()[0] - 1
            lo, hi = (0, n) if rows is None else rows
            if not 0 <= lo <= hi <= n:
                raise ConfigError(f"rows {rows} are outside the shard's {n} rows")
            indptr = f.get_slice("indptr")[lo : hi + 1]
            first, last = int(indptr[0]), int(indptr[-1])
            indices = f.get_slice("indices")[first:last]
            values = f.get_slice("values")[first:last]
            hidden = f.get_slice("hidden")[lo:hi] if "hidden" in f.keys() else None
        features = SparseBatch(
            (indptr - first).numpy(), indices.numpy(), values.numpy(), (hi - lo, num_features)
        )
    except Exception as e:
        raise FileFormatError(f"{path} is not a readable synthsae shard: {e}", path) from None
    return features, hidden


def stale_temporaries(out: Path, shards: Iterable[Shard]) -> list[Path]:
    """Temporary files beside written shards that a writer on this host left when it died (a writer
    that is still running, here or elsewhere, keeps its own)."""
    stale = []
    for s in shards:
        if s.sha256 is None:
            continue
        for path in out.glob(f".{s.file}.tmp-*"):
            host, pid, _ = path.name.removeprefix(f".{s.file}.tmp-").rsplit("-", 2)
            if host == HOST and pid.isdigit() and not writer_alive(int(pid)):
                stale.append(path)
    return stale


def writer_alive(pid: int) -> bool:
    """Whether process ``pid`` on this host can still write (a zombie cannot)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        pass
    # A killed process stays a zombie until its parent reaps it: it writes nothing any more.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no procfs here (then kill's answer stands), or it just went away
        return not Path("/proc").is_dir()
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def intact(out: Path, shards: list[Shard], num_threads: int | None = None) -> list[bool]:
    """For each shard: whether it has been recorded and its file, a regular file (a symbolic link is
    not followed, and never intact), has the recorded sha256 (files are hashed in parallel on
    ``num_threads`` threads)."""

    def check(s: Shard) -> bool:
        path = shard_path(out, s)
        return s.sha256 is not None and _is_regular_file(path) and file_sha256(path) == s.sha256

    with ThreadPoolExecutor(max_workers=num_threads or os.cpu_count() or 1) as pool:
        return list(pool.map(check, shards))


@dataclass
class VerifyReport:
    """What ``verify`` found. ``missing``: shards not written (or whose file is gone); ``corrupt``:
    shards whose file no longer matches its recorded sha256 (or is a symbolic link, which is not
    followed); ``world_ok``: ``world/`` loads and is the manifest's world."""

    path: Path
    num_shards: int
    rows: int
    good_rows: int
    missing: list[int]
    corrupt: list[int]
    world_ok: bool
    world_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.world_ok and not self.missing and not self.corrupt

    def __str__(self) -> str:
        good = self.num_shards - len(self.missing) - len(self.corrupt)
        lines = [
            f"{self.path}: {good}/{self.num_shards} shards intact, {self.good_rows:,}/{self.rows:,} rows"
        ]
        if not self.world_ok:
            lines.append(f"world/: {self.world_error}")
        for name, items in (("missing", self.missing), ("corrupt", self.corrupt)):
            if items:
                shown = ", ".join(map(str, items[:20])) + (", ..." if len(items) > 20 else "")
                lines.append(f"{name} shards ({len(items)}): {shown}")
        lines.append(
            "OK" if self.ok else "FAILED: rerun `synthsae generate` with the same arguments to repair"
        )
        return "\n".join(lines)


def verify(path: str | os.PathLike[str], *, num_threads: int | None = None) -> VerifyReport:
    """Re-hashes every shard of the dataset at ``path`` against its manifest and checks ``world/``.

    Returns a VerifyReport (``.ok``); raises FileNotFoundError/FileFormatError if ``path`` has no
    valid manifest.
    """
    from synthsae._validate import as_num_threads

    out = Path(path)
    num_threads = as_num_threads(num_threads)
    manifest = read_state(out)
    world_error = None
    try:
        load_fingerprinted_world(out / WORLD_DIR, manifest.world_sha256)
    except (OSError, ValueError) as e:
        world_error = str(e)
    status = intact(out, manifest.shards, num_threads)
    missing: list[int] = []
    corrupt: list[int] = []
    for s, good in zip(manifest.shards, status, strict=True):
        if not good:
            path = shard_path(out, s)
            present = _is_regular_file(path) or path.is_symlink()
            (corrupt if s.sha256 is not None and present else missing).append(s.index)
    return VerifyReport(
        path=out,
        num_shards=len(manifest.shards),
        rows=manifest.rows,
        good_rows=sum(s.rows for s, good in zip(manifest.shards, status, strict=True) if good),
        missing=missing,
        corrupt=corrupt,
        world_ok=world_error is None,
        world_error=world_error,
    )
