"""The main job: build a world, train SAEs over architectures × L0, score each, write a report and plots."""

from __future__ import annotations

import datetime
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np

import synthsae
from synthsae._files import atomic_write, read_json, write_json
from synthsae._validate import U64_MAX, as_float, as_int, as_nonnegative
from synthsae.assignment import mean_max_abs_cos
from synthsae.config import WorldConfig
from synthsae.evaluation import EvalResult, evaluate
from synthsae.training import CHECKPOINT_FILE, TrainingDiverged, train
from synthsae.world import World

if TYPE_CHECKING:
    import torch

    from synthsae.saes.external import Factory

#: The paper's five architectures (SynthSAEBench's sweep), in its order.
PAPER_SAES = ("batchtopk", "matryoshka", "jumprelu", "relu", "mp")
#: Architectures whose L0 is fixed by k rather than reached by a coefficient controller.
DIRECT_L0_SAES = ("batchtopk", "matryoshka", "topk", "mp")


@dataclass
class Protocol:
    """Training and evaluation settings of a bench run."""

    saes: list[str] = field(default_factory=lambda: list(PAPER_SAES))
    l0s: list[float] = field(default_factory=lambda: [15.0, 25.0, 35.0])
    width: int = 4096
    samples: int = 10_000_000
    eval_samples: int = 500_000
    batch_size: int = 1024
    lr: float = 3e-4
    seeds: list[int] = field(default_factory=lambda: [0])
    #: Per architecture, an L0 autotuner gain in place of :func:`sae_options`'s scaled default.
    autotune_gains: dict[str, float] = field(default_factory=dict)
    #: Decoder-orthogonality penalty of :func:`~synthsae.training.train` (0: off) and its power.
    ortho_coef: float = 0.0
    ortho_power: float = 2.0


class PresetProtocol(NamedTuple):
    """A preset's default bench protocol and a note on what running it takes."""

    make: Callable[[], Protocol]
    note: str


#: Default protocols of the presets (names from ``synthsae.presets.PRESETS``). ``tiny``: the four
#: architectures whose L0 is set directly (ReLU and JumpReLU reach a target L0 through a slow coefficient
#: controller that needs far more than 1M rows), 256 latents, L0 6/8/10 (the L0 of its first 256 features
#: is 8, as the paper's 25 is that of the 16k world's first 4,096), 1M rows, lr 1e-3 — about 2 minutes on
#: 2 CPU cores. ``synthsaebench-16k``: the paper's protocol (4,096 latents, L0 15…45, 200M rows, 1M
#: evaluation rows, lr 3e-4).
PRESET_PROTOCOLS: dict[str, PresetProtocol] = {
    "tiny": PresetProtocol(
        lambda: Protocol(
            saes=list(DIRECT_L0_SAES),
            l0s=[6.0, 8.0, 10.0],
            width=256,
            samples=1_000_000,
            eval_samples=100_000,
            lr=1e-3,
        ),
        "minutes on a laptop CPU",
    ),
    "synthsaebench-cpu": PresetProtocol(
        lambda: Protocol(
            l0s=[6.0],
            width=1024,
            samples=5_000_000,
            eval_samples=200_000,
            # Measured on seed 0 (README): lr 2e-3 lifts every SAE over 1e-3 at this length,
            # Matryoshka most (MCC 0.685 -> 0.739 at 4M rows).
            lr=2e-3,
            seeds=[0, 1],
            # At ~4k steps the scaled default (0.015) leaves ReLU at L0 7.3 and JumpReLU at 5.0;
            # these reach 6 ± 10 %.
            autotune_gains={"relu": 0.045, "jumprelu": 0.005},
        ),
        "the paper's five SAEs at the scaled L0 25, two seeds; about 26 minutes on 2 CPU cores",
    ),
    "synthsaebench-16k": PresetProtocol(
        lambda: Protocol(
            l0s=[15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0],
            width=4096,
            samples=200_000_000,
            eval_samples=1_000_000,
        ),
        "the paper's protocol; use --device cuda",
    ),
}


def default_protocol(preset_name: str | None, num_features: int) -> Protocol:
    """The preset's protocol (:data:`PRESET_PROTOCOLS`); for other worlds N/4 latents, L0 15/25/35,
    10M rows."""
    if preset_name in PRESET_PROTOCOLS:
        return PRESET_PROTOCOLS[preset_name].make()
    return Protocol(width=max(num_features // 4, 1))


def describe_protocols() -> str:
    """Each preset's default protocol, and the rule for other worlds (for ``synthsae bench --help``)."""

    def summary(p: Protocol, width: str) -> str:
        l0s = ",".join(f"{v:g}" for v in p.l0s)
        seeds = ",".join(map(str, p.seeds))
        return f"SAEs {','.join(p.saes)}, {width} latents, L0 {l0s}, seeds {seeds}, {p.samples:,} rows"

    lines = []
    for name, default in PRESET_PROTOCOLS.items():
        protocol = default.make()
        lines.append(f"{name} = {summary(protocol, str(protocol.width))} ({default.note})")
    lines.append(f"other worlds = {summary(Protocol(), 'N/4')}")
    return "; ".join(lines)


def sae_options(architecture: str, steps: int, gain: float | None = None) -> dict[str, Any]:
    """Constructor options for a run of ``steps`` steps. The L0 autotuner's ``gain`` defaults to the
    sweep's 3e-4 scaled to the sweep's 195,312 steps (capped at 0.05); ReLU's L1 warm-up and autotuner
    start at a third of training, as in the sweep."""
    if gain is None:
        gain = min(0.05, 3e-4 * 195_312 / max(steps, 1))
    if architecture == "relu":
        return {"l1_warm_up_steps": steps // 3, "autotune_start_step": steps // 3, "autotune_gain": gain}
    if architecture == "jumprelu":
        return {"autotune_gain": gain}
    return {}


def dead_window(steps: int) -> int:
    """AuxK's dead-latent window: SAELens's 1,000 steps, or a tenth of a shorter run (at least 10)."""
    return max(10, min(1000, steps // 10))


def _versions() -> dict[str, str]:
    import torch

    return {
        "synthsae": synthsae.__version__,
        "rng_algorithm": synthsae.RNG_ALGORITHM,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


#: Version of the layout of ``report.json`` and ``bench.json`` (README, "Report schema").
REPORT_SCHEMA = 2
#: A sweep's header (world, protocol, versions) and each run's finished record.
SWEEP_FILE = "bench.json"
RUN_FILE = "run.json"
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


class RunSpec(NamedTuple):
    """One run of a sweep: an architecture (built-in or a user's) at one L0 and seed."""

    architecture: str
    l0: float
    seed: int

    @property
    def name(self) -> str:
        """The run's directory name, ``<arch>-l0-<L0>-seed-<seed>``, one per distinct L0 (``6`` for
        6.0, all the digits when fewer would name another value)."""
        short = f"{self.l0:g}"
        return (
            f"{self.architecture}-l0-{short if float(short) == self.l0 else repr(self.l0)}-seed-{self.seed}"
        )


def plan(
    protocol: Protocol, custom: list[str] | None = None, shard_index: int = 0, num_shards: int = 1
) -> list[RunSpec]:
    """Every run of ``protocol`` (built-in architectures, then ``custom`` ones; each over L0s, then seeds),
    or the ``shard_index``-th of ``num_shards`` interleaved shares of them."""
    num_shards = as_int("num_shards", num_shards, minimum=1)
    shard_index = as_int("shard_index", shard_index, maximum=num_shards - 1, maximum_name="num_shards - 1")
    runs = [
        RunSpec(a, l0, s)
        for a in [*protocol.saes, *(custom or [])]
        for l0 in protocol.l0s
        for s in protocol.seeds
    ]
    return runs[shard_index::num_shards]


def _header(world: World, protocol: Protocol, preset_name: str | None, custom: list[str]) -> dict[str, Any]:
    return {
        "schema": REPORT_SCHEMA,
        "world_fingerprint": world.fingerprint(),
        "preset": preset_name,
        "world_config": world.config.to_dict(),
        "protocol": {**protocol.__dict__, "custom_saes": list(custom)},
        "versions": _versions(),
    }


def _no_repeats(name: str, values: list[Any]) -> None:
    """``ValueError`` when ``protocol.<name>`` lists a value twice (both would be one run)."""
    twice = sorted({v for v in values if values.count(v) > 1}, key=str)
    if twice:
        raise ValueError(f"protocol.{name} lists {', '.join(map(str, twice))} more than once")


def _differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """What makes two sweep headers incomparable: the world, or a training setting."""
    diffs = []
    default = Protocol().__dict__  # a key an older sweep lacks had its default
    if a["world_fingerprint"] != b["world_fingerprint"]:
        diffs.append(f"world fingerprint {a['world_fingerprint'][:12]}… vs {b['world_fingerprint'][:12]}…")
    for key in TRAINING_KEYS:
        x, y = (h["protocol"].get(key, default[key]) for h in (a, b))
        if x != y:
            diffs.append(f"protocol {key} {x!r} vs {y!r}")
    return diffs


def run(
    world: World,
    protocol: Protocol,
    out: str | os.PathLike[str],
    *,
    preset_name: str | None = None,
    saes: dict[str, Factory] | None = None,
    device: Any = None,
    shard_index: int = 0,
    num_shards: int = 1,
    show_progress: bool = True,
    log: Any = print,
) -> dict[str, Any]:
    """Runs the sweep ``protocol`` describes on ``world`` in ``out`` and returns its report.

    Each run (:class:`RunSpec`) lives in ``out/runs/<arch>-l0-<L0>-seed-<s>/``: the checkpoint while it
    trains (written every tenth of training), then the SAE and ``run.json`` (training log and
    :class:`~synthsae.evaluation.EvalResult`). Calling again with the same ``out`` skips finished runs
    and resumes an unfinished one from its checkpoint, so a killed sweep loses at most a tenth of a run;
    ``out/bench.json`` records the world and protocol, and a different world or training setting in the
    same ``out`` is refused. ``saes`` adds users' SAEs: ``{"name": factory}`` with
    ``factory(d_in, d_sae, l0, seed) -> module`` (:mod:`synthsae.saes.external`). ``shard_index`` /
    ``num_shards`` run one interleaved share of the runs (merge the shares with :func:`build_report`).
    Writes ``out/report.json`` and the plots from every finished run in ``out``."""
    from synthsae import saes as builtin
    from synthsae.saes import external

    out = Path(out)
    saes = dict(saes or {})
    clash = sorted(set(saes) & set(builtin.ARCHITECTURES))
    if clash:
        raise ValueError(f"saes names {clash} clash with built-in architectures; rename them")
    for name in protocol.saes:
        if name not in builtin.ARCHITECTURES:
            raise ValueError(f"protocol.saes: unknown architecture {name!r}; pass a factory in saes=")
    for s in protocol.seeds:
        as_int("seeds", s, minimum=0, maximum=U64_MAX - 1)  # evaluation reads stream seed + 1
    if not protocol.seeds:
        raise ValueError("protocol.seeds must name at least one seed")
    _no_repeats("saes", [*protocol.saes, *saes])
    _no_repeats("l0s", protocol.l0s)
    _no_repeats("seeds", protocol.seeds)
    as_nonnegative("protocol.ortho_coef", protocol.ortho_coef)
    as_float("protocol.ortho_power", protocol.ortho_power, minimum=1.0)
    header = _header(world, protocol, preset_name, list(saes))
    out.mkdir(parents=True, exist_ok=True)
    sweep = out / SWEEP_FILE
    if sweep.exists():
        diffs = _differences(read_header(sweep), header)
        if diffs:
            raise ValueError(f"{out} holds a sweep of another world or protocol: {'; '.join(diffs)}")
    write_json(sweep, header)
    steps = protocol.samples // protocol.batch_size
    for spec in plan(protocol, list(saes), shard_index, num_shards):
        run_dir = out / "runs" / spec.name
        if (run_dir / RUN_FILE).exists():
            earlier = read_run(run_dir / RUN_FILE)
            if earlier["name"] != spec.name:
                raise ValueError(f"{run_dir / RUN_FILE}: records run {earlier['name']!r}, not {spec.name!r}")
            log(f"{spec.name}: {'failed' if 'failed' in earlier else 'finished'} earlier, skipped")
            continue
        if spec.architecture in saes:
            sae = external.build(
                spec.architecture,
                saes[spec.architecture],
                world.hidden_dim,
                protocol.width,
                spec.l0,
                spec.seed,
            )
        else:
            sae = builtin.create_sae(
                spec.architecture,
                world.hidden_dim,
                protocol.width,
                l0=spec.l0,
                seed=spec.seed,
                **sae_options(spec.architecture, steps, protocol.autotune_gains.get(spec.architecture)),
            )
        log(f"training {spec.name} ({protocol.width} latents, {protocol.samples:,} rows)")
        identity = {"name": spec.name, "architecture": spec.architecture, "l0": spec.l0, "seed": spec.seed}
        try:
            history = train(
                sae,
                world,
                total_samples=protocol.samples,
                batch_size=protocol.batch_size,
                lr=protocol.lr,
                seed=spec.seed,
                device=device,
                log_every=max(steps // 20, 1),
                dead_window=dead_window(steps),
                ortho_coef=protocol.ortho_coef,
                ortho_power=protocol.ortho_power,
                checkpoint_dir=run_dir,
                checkpoint_every=max(steps // 10, 1),
                show_progress=show_progress,
            )
        except TrainingDiverged as e:
            log(f"{spec.name}: failed: {e}")
            run_dir.mkdir(parents=True, exist_ok=True)
            write_json(run_dir / RUN_FILE, {**identity, "width": protocol.width, "failed": str(e)})
            (run_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
            continue
        t0 = time.perf_counter()
        result = evaluate(
            sae,
            world,
            num_samples=protocol.eval_samples,
            seed=spec.seed + 1,
            device=device,
            show_progress=show_progress,
        )
        eval_seconds = time.perf_counter() - t0
        _save_sae(sae, run_dir / "sae")
        record = {
            **identity,
            "width": protocol.width,
            "torch_threads": history.torch_threads,
            "train_seconds": history.seconds,
            "train_rows_per_second": history.samples / max(history.seconds, 1e-9),
            "eval_seconds": eval_seconds,
            "decoder_rho_mm": mean_max_abs_cos(cast("torch.Tensor", sae.W_dec)),
            "training_log": history.records,
            "result": result.to_dict(),
        }
        write_json(run_dir / RUN_FILE, record)
        (run_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
    report = build_report([out])
    report["plots"] = write_report(out, report, world.firing_probabilities.numpy())
    return report


#: A user's SAE module's parameters and buffers, in ``runs/<name>/sae/``.
CUSTOM_WEIGHTS_FILE = "state_dict.safetensors"


def _save_sae(sae: Any, path: Path) -> None:
    """A built-in SAE in its SAELens-style layout; a user's module's ``state_dict`` as safetensors
    (atomically; load it with ``safetensors.torch.load_file`` and ``module.load_state_dict``)."""
    from safetensors.torch import save_file

    if hasattr(sae, "save"):
        sae.save(path, overwrite=True)
        return
    path.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().cpu().contiguous() for name, t in sae.state_dict().items()}
    atomic_write(path / CUSTOM_WEIGHTS_FILE, lambda tmp: save_file(tensors, str(tmp)))


def build_report(dirs: list[str | os.PathLike[str]]) -> dict[str, Any]:
    """The report of the finished runs in sweep directories ``dirs`` (each with ``bench.json``): the
    first's header, every run once (a run in several directories counts once), sorted by architecture,
    L0 and seed, and per (architecture, L0) the mean and std over seeds. Raises ``ValueError`` when the
    sweeps' worlds or training settings differ (naming the difference)."""
    if not dirs:
        raise ValueError("dirs must name at least one sweep directory")
    header: dict[str, Any] | None = None
    runs: dict[str, dict[str, Any]] = {}
    for d in map(Path, dirs):
        if not (d / SWEEP_FILE).is_file():
            raise ValueError(f"{d} is not a sweep directory (no {SWEEP_FILE})")
        h = read_header(d / SWEEP_FILE)
        if h.get("schema") != REPORT_SCHEMA:
            raise ValueError(f"{d}: report schema {h.get('schema')!r}, this synthsae reads {REPORT_SCHEMA}")
        if header is None:
            header = h
        elif diffs := _differences(header, h):
            raise ValueError(
                f"{dirs[0]} and {d} are sweeps of different worlds or protocols: {'; '.join(diffs)}"
            )
        for f in sorted((d / "runs").glob(f"*/{RUN_FILE}")):
            record = read_run(f)
            runs.setdefault(record["name"], record)
    assert header is not None
    order = sorted(runs.values(), key=lambda r: (r["architecture"], r["l0"], r["seed"]))
    finished = [r for r in order if "failed" not in r]
    return {
        **header,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "runs": finished,
        "failed": [
            {k: r[k] for k in ("name", "architecture", "l0", "seed", "failed")}
            for r in order
            if "failed" in r
        ],
        "summary": summarize(finished),
    }


#: What a run directory may hold: files, and the ``sae`` directory's files (any of them may also be
#: a temporary of an interrupted atomic write, ``.<name>.tmp-*``).
_RUN_FILES = frozenset({RUN_FILE, CHECKPOINT_FILE, "checkpoint.pt"})
_SAE_FILES = frozenset({"cfg.json", "sae_weights.safetensors", CUSTOM_WEIGHTS_FILE, "state_dict.pt"})


def clear_sweep(out: Path) -> None:
    """Deletes what :func:`run` wrote in ``out`` (header, report, plots, run directories), leaving
    anything else. Refuses (``ValueError``, before deleting anything) a directory without a valid
    sweep header, a symbolic link where bench writes (never followed), and a run directory holding
    files bench does not write."""
    from synthsae.plots import PLOT_FILES

    def ours(entry: Path, names: frozenset[str]) -> Path:
        temporary = entry.name.startswith(".") and ".tmp-" in entry.name
        if entry.is_symlink() or not entry.is_file() or not (entry.name in names or temporary):
            raise ValueError(f"{entry} was not written by bench; move it before overwriting")
        return entry

    def check_dir(d: Path) -> None:
        if d.is_symlink() or not d.is_dir():
            raise ValueError(f"{d} is not a directory bench wrote (a link or a file); remove it yourself")

    if (out / SWEEP_FILE).is_symlink() or not (out / SWEEP_FILE).is_file():
        raise ValueError(
            f"{out} is not a bench sweep (no {SWEEP_FILE}); overwrite replaces sweeps only: choose "
            "another output directory"
        )
    read_header(out / SWEEP_FILE)
    files = [out / n for n in (SWEEP_FILE, "report.json", *PLOT_FILES) if (out / n).is_file()]
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
    for f in files:
        f.unlink()
    for d in dirs:
        d.rmdir()


def _malformed(path: Path, what: str, problem: str) -> ValueError:
    return ValueError(f"{path}: not a synthsae {what} ({problem}); it may be corrupt or from another tool")


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


def read_run(path: Path) -> dict[str, Any]:
    """A run's ``run.json``, checked: ``ValueError`` naming the file when it is not one (a run that
    failed holds ``failed``, the reason, instead of a result)."""
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


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (architecture, L0): the seeds and ``[mean, std]`` (population std; 0 for one seed) of every
    table column's metric."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["architecture"], r["l0"]), []).append(r)
    out = []
    for (architecture, l0), members in groups.items():
        metrics = {}
        for header, get, _, _ in _COLUMNS:
            values = np.array([float(get(m)) for m in members])
            metrics[header] = [float(values.mean()), float(values.std())]
        out.append(
            {
                "architecture": architecture,
                "l0": l0,
                "seeds": [m["seed"] for m in members],
                "metrics": metrics,
            }
        )
    return out


def write_report(out: Path, report: dict[str, Any], firing_probabilities: Any = None) -> list[str]:
    """Writes ``out/report.json`` and the plots (every seed's result; error bars over seeds); returns the
    plot names. ``firing_probabilities`` ``[N]`` (default: rebuilt from the report's world config)."""
    from synthsae.plots import write_plots

    results = [(r["architecture"], r["l0"], EvalResult.from_dict(r["result"])) for r in report["runs"]]
    probabilities = firing_probabilities
    if probabilities is None:
        config = WorldConfig.from_dict(report["world_config"])
        config.orthogonalization = None  # the firing probabilities do not depend on it
        probabilities = World(config).firing_probabilities.numpy()
    plots = write_plots(out, results, probabilities) if results else []
    write_json(out / "report.json", {**report, "plots": plots})
    return plots


def _field(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda run: run["result"][key]


def _recovery(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda run: run["result"].get("recovery", {}).get(key, float("nan"))


#: Table columns: header, value of a run record, width, format.
_COLUMNS: tuple[tuple[str, Callable[[dict[str, Any]], Any], int, str], ...] = (
    ("MCC", _field("mcc"), 7, ".4f"),
    ("F1", _field("f1"), 7, ".4f"),
    ("mF1", _field("matched_f1"), 7, ".4f"),
    ("rec@.5", _recovery("recovery/matched@0.5"), 7, ".4f"),
    ("rec@.9", _recovery("recovery/matched@0.9"), 7, ".4f"),
    ("absorb", _recovery("absorption/full_rate"), 7, ".4f"),
    ("a.frac", _recovery("absorption/fraction"), 7, ".4f"),
    ("unique", _field("uniqueness"), 7, ".4f"),
    ("expl.var", _field("explained_variance"), 8, ".4f"),
    ("SAE L0", _field("sae_l0"), 7, ".2f"),
    ("dead", _field("dead_latents"), 6, "d"),
    ("dec.ρmm", lambda run: run.get("decoder_rho_mm", float("nan")), 7, ".4f"),
)


def paper_results() -> dict[str, Any]:
    """The paper's published SynthSAEBench-16k numbers (``synthsae/data/paper_results.json``: per L0 and
    architecture, ``[mean, std]`` over 5 seeds of F1, MCC, uniqueness, explained variance, and the
    source)."""
    from importlib.resources import files

    data: dict[str, Any] = json.loads(files("synthsae").joinpath("data/paper_results.json").read_text())
    return data


#: Table column → the paper's metric name.
_PAPER_COLUMNS = {"MCC": "mcc", "F1": "f1", "unique": "uniqueness", "expl.var": "explained_variance"}


def _cell(mean: float, std: float, width: int, spec: str, seeds: int) -> str:
    """A table cell: the mean in the column's format, ``±std`` after it over several seeds."""
    if spec == "d":
        text = f"{mean:.0f}" if seeds == 1 else f"{mean:.1f}"
    else:
        text = f"{mean:{spec}}" + (f"±{std:.3f}" if seeds > 1 else "")
    return f"{text:>{width}}"


def table(report: dict[str, Any]) -> str:
    """The summary table of a report, one line per architecture × L0 (mean±std over seeds when there
    are several): SAELens's MCC and F1, the F1 through the MCC matching (mF1), the shares of features
    whose matched latent has |cos| >= 0.5 / 0.9, the full absorption rate and the absorption fraction,
    and last the SAE decoder's mean max |cos| between its own rows (dec.ρmm).
    For the 16k preset, the paper's value follows at its L0s (20 and 25); for other presets, the
    paper's L0-25 ranking of the architectures by MCC and F1 beside ours."""
    many = any(len(g["seeds"]) > 1 for g in report["summary"])
    widths = [w + (6 if many and spec != "d" else 0) for _, _, w, spec in _COLUMNS]
    name = max([12, *(len(g["architecture"]) for g in report["summary"])])
    head = " ".join(
        [f"{'architecture':<{name}}", f"{'L0':>5}", f"{'seeds':>5}"]
        + [f"{h:>{w}}" for (h, _, _, _), w in zip(_COLUMNS, widths, strict=True)]
    )
    lines = [head, "-" * len(head)]
    paper = paper_results()
    for g in report["summary"]:
        seeds = len(g["seeds"])
        cells = [f"{g['architecture']:<{name}}", f"{g['l0']:>5g}", f"{seeds:>5}"]
        cells += [
            _cell(g["metrics"][h][0], g["metrics"][h][1], w, spec, seeds)
            for (h, _, _, spec), w in zip(_COLUMNS, widths, strict=True)
        ]
        lines.append(" ".join(cells))
        published = paper["results"].get(f"{g['l0']:g}", {}).get(g["architecture"])
        if report.get("preset") == paper["world"] and published:
            cells = [f"{'  paper':<{name}}", f"{g['l0']:>5g}", f"{paper['seeds']:>5}"]
            for (h, _, _, spec), w in zip(_COLUMNS, widths, strict=True):
                value = published.get(_PAPER_COLUMNS.get(h, ""))
                cells.append(_cell(value[0], value[1], w, spec, 2) if value else f"{'':>{w}}")
            lines.append(" ".join(cells))
    for f in report.get("failed", []):
        lines.append(f"{f['name']}: failed ({f['failed']}); not in the table")
    if report.get("preset") in SMOKE_PRESETS:
        lines += [
            "",
            f"{report['preset']} is a smoke test: its numbers are not comparable to the paper's "
            "(run --preset synthsaebench-cpu for the paper's ranking on a CPU)",
        ]
    elif report.get("preset") != paper["world"]:
        lines += ["", *ranking_lines(report, paper)]
    lines.append(f"(paper: {paper['source']})")
    return "\n".join(lines)


#: Presets too small to rank architectures like the paper: the table says so instead of ranking.
SMOKE_PRESETS = ("tiny",)
#: A gap in the paper's value above this makes a pair's order part of the ranking to reproduce.
PAPER_GAP = 0.03


def ranking_lines(report: dict[str, Any], paper: dict[str, Any]) -> list[str]:
    """Per target L0 of the report, the architectures the paper also ran ranked by mean MCC, F1 and
    explained variance beside the paper's L0-25 ranking of the same architectures, and which pairs the
    paper separates by more than :data:`PAPER_GAP` keep their order here."""
    published = paper["results"]["25"]
    out = []
    for l0 in sorted({g["l0"] for g in report["summary"]}):
        ours = {
            g["architecture"]: g
            for g in report["summary"]
            if g["l0"] == l0 and g["architecture"] in published
        }
        if len(ours) < 2:
            continue
        for header, metric in (("MCC", "mcc"), ("F1", "f1"), ("expl.var", "explained_variance")):
            value = {a: g["metrics"][header][0] for a, g in ours.items()}
            mine = sorted(value, key=lambda a: -value[a])
            theirs = sorted(value, key=lambda a: -published[a][metric][0])
            pairs = [
                (a, b)
                for a in theirs
                for b in theirs
                if published[a][metric][0] - published[b][metric][0] > PAPER_GAP
            ]
            broken = [
                f"{a} > {b} ({value[a]:.4f} vs {value[b]:.4f})" for a, b in pairs if value[a] <= value[b]
            ]
            out.append(
                f"ranking by {header} at L0 {l0:g}: ours {' > '.join(mine)}; paper (16k, L0 25) "
                f"{' > '.join(theirs)}; {len(pairs) - len(broken)}/{len(pairs)} pairs the paper separates "
                f"by > {PAPER_GAP} hold" + (f", not {', '.join(broken)}" if broken else "")
            )
    return out
