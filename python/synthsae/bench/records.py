"""A sweep's files: the header (``bench.json``), each run's record (``run.json``), reading them back
checked, and clearing a sweep for ``--overwrite``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthsae._files import read_json
from synthsae.bench.protocol import Protocol
from synthsae.errors import ConfigError
from synthsae.evaluation.scoring import EvalResult
from synthsae.training.loop import CHECKPOINT_FILE
from synthsae.world.io import CONFIG_FILE, HIERARCHY_FILE, WEIGHTS_FILE

#: A sweep's header (world, protocol, versions) and each run's finished record.
SWEEP_FILE = "bench.json"


RUN_FILE = "run.json"


#: The sweep's supervised probe ceiling (:func:`synthsae.evaluation.ceiling.probe_ceiling`).
CEILING_FILE = "ceiling.json"


#: The protocol fields that say *how* runs train and are scored; sweeps may merge only when these agree
#: (``saes``, ``l0s`` and ``seeds`` only say *which* runs there are).
TRAINING_KEYS = (
    "width",
    "samples",
    "eval_samples",
    "batch_size",
    "lr",
    "autotune_gains",
    "ortho_coef",
    "ortho_power",
)


def header_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """What makes two sweep headers incomparable: the world, or a training setting."""
    diffs = []
    default = Protocol().__dict__  # a key an older sweep lacks had its default
    if a["world_fingerprint"] != b["world_fingerprint"]:
        diffs.append(f"world fingerprint {a['world_fingerprint'][:12]}… vs {b['world_fingerprint'][:12]}…")
    for key in TRAINING_KEYS:
        x, y = (h["protocol"].get(key, default[key]) for h in (a, b))
        if key == "autotune_gains":  # only the gains of architectures both sweeps train matter
            both = set(a["protocol"].get("saes", [])) & set(b["protocol"].get("saes", []))
            x, y = ({k: v for k, v in gains.items() if k in both} for gains in (x, y))
        if x != y:
            diffs.append(f"protocol {key} {x!r} vs {y!r}")
    return diffs


#: A user's SAE module's parameters and buffers, in ``runs/<name>/sae/``.
CUSTOM_WEIGHTS_FILE = "state_dict.safetensors"


#: What a run directory may hold: files, and the ``sae`` directory's files (any of them may also be
#: a temporary of an interrupted atomic write, ``.<name>.tmp-*``).
_RUN_FILES = frozenset({RUN_FILE, CHECKPOINT_FILE, "checkpoint.pt"})


_SAE_FILES = frozenset({"cfg.json", "sae_weights.safetensors", CUSTOM_WEIGHTS_FILE, "state_dict.pt"})


#: Where a sweep on Dask saves its world for the workers, and the files there.
WORLD_DIR = "world"
_WORLD_FILES = frozenset({CONFIG_FILE, WEIGHTS_FILE, HIERARCHY_FILE})


def clear_sweep(out: Path) -> None:
    """Deletes what :func:`run` wrote in ``out`` (header, report, plots, run directories, the world
    saved for Dask workers), leaving
    anything else. Refuses (``ValueError``, before deleting anything) a directory without a valid
    sweep header, a symbolic link where bench writes (never followed), and a run directory holding
    files bench does not write."""
    from synthsae.bench.plots import PLOT_FILES

    def ours(entry: Path, names: frozenset[str]) -> Path:
        temporary = entry.name.startswith(".") and ".tmp-" in entry.name
        if entry.is_symlink() or not entry.is_file() or not (entry.name in names or temporary):
            raise ConfigError(f"{entry} was not written by bench; move it before overwriting")
        return entry

    def check_dir(d: Path) -> None:
        if d.is_symlink() or not d.is_dir():
            raise ConfigError(f"{d} is not a directory bench wrote (a link or a file); remove it yourself")

    if (out / SWEEP_FILE).is_symlink() or not (out / SWEEP_FILE).is_file():
        raise ConfigError(
            f"{out} is not a bench sweep (no {SWEEP_FILE}); overwrite replaces sweeps only: choose "
            "another output directory"
        )
    read_header(out / SWEEP_FILE)
    files = [out / n for n in (SWEEP_FILE, "report.json", CEILING_FILE, *PLOT_FILES) if (out / n).is_file()]
    dirs: list[Path] = []
    runs = out / "runs"
    if runs.exists() or runs.is_symlink():
        check_dir(runs)
        for run_dir in sorted(runs.iterdir()):
            check_dir(run_dir)
            for entry in sorted(run_dir.iterdir()):
                if entry.name == "sae" and not entry.is_symlink() and entry.is_dir():
                    files += [ours(e, _SAE_FILES) for e in sorted(entry.iterdir())]
                    dirs.append(entry)
                else:
                    files.append(ours(entry, _RUN_FILES))
            dirs.append(run_dir)
        dirs.append(runs)
    world = out / WORLD_DIR
    if world.exists() or world.is_symlink():
        check_dir(world)
        files += [ours(e, _WORLD_FILES) for e in sorted(world.iterdir())]
        dirs.append(world)
    for f in files:
        f.unlink()
    for d in dirs:
        d.rmdir()


def _malformed(path: Path, what: str, problem: str) -> ValueError:
    """The error for a file at ``path`` that is not a valid ``what``: a FileFormatError naming it."""
    from synthsae.errors import FileFormatError

    return FileFormatError(
        f"{path}: not a synthsae {what} ({problem}); it may be corrupt or from another tool", path
    )


def read_header(path: Path) -> dict[str, Any]:
    """A sweep's ``bench.json``, checked: ``ValueError`` naming the file when it is not one."""
    header = read_json(path)
    if not isinstance(header, dict):
        raise _malformed(path, "sweep header", f"a JSON {type(header).__name__}, not an object")
    for key, kind in (
        ("schema", int),
        ("world_fingerprint", str),
        ("world_config", dict),
        ("protocol", dict),
    ):
        if not isinstance(header.get(key), kind):
            raise _malformed(path, "sweep header", f"{key!r} missing or not a {kind.__name__}")
    return header


def read_ceiling(path: Path) -> dict[str, Any] | None:
    """A sweep's ``ceiling.json`` checked against its model (None when there is none): ``ValueError``
    naming the file when it is not one."""
    from pydantic import ValidationError

    from synthsae.bench.schema import Ceiling

    if not path.is_file():
        return None
    data = read_json(path)
    try:
        Ceiling.model_validate(data)
    except ValidationError as e:
        raise _malformed(path, "probe ceiling", f"{e.error_count()} invalid field(s)") from None
    checked: dict[str, Any] = data
    return checked


def read_run(path: Path) -> dict[str, Any]:
    """A run's ``run.json``, checked: ``ValueError`` naming the file when it is not one (a run that
    failed holds ``failed``, the reason, instead of a result). A record from an older synthsae reads:
    its result may lack the fields added since (:meth:`EvalResult.from_dict`), and keys this version
    does not know are kept as they are."""
    record = read_json(path)
    if not isinstance(record, dict):
        raise _malformed(path, "run record", f"a JSON {type(record).__name__}, not an object")
    need: dict[str, type | tuple[type, ...]] = {"name": str, "architecture": str, "l0": (int, float)}
    need["seed"] = int
    need.update({"failed": str} if "failed" in record else {"result": dict})
    for key, kind in need.items():
        if not isinstance(record.get(key), kind) or isinstance(record.get(key), bool):
            raise _malformed(path, "run record", f"{key!r} missing or of the wrong type")
    if "failed" not in record:
        try:
            EvalResult.from_dict(record["result"])
        except (ValueError, TypeError) as e:
            raise _malformed(path, "run record", f"its result: {e}") from None
    return record
