"""The main job: build a world, train SAEs over architectures × L0 × seeds, score each, write a report and
plots."""

from __future__ import annotations

import os
import platform
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np

from synthsae import _core
from synthsae._files import atomic_write, write_json
from synthsae._validate import U64_MAX, as_float, as_int, as_nonnegative
from synthsae.bench.protocol import Protocol, dead_window, sae_options
from synthsae.bench.records import (
    CEILING_FILE,
    CUSTOM_WEIGHTS_FILE,
    RUN_FILE,
    SWEEP_FILE,
    WORLD_DIR,
    header_differences,
    read_ceiling,
    read_header,
    read_run,
)
from synthsae.bench.report import build_report, write_report
from synthsae.bench.schema import SCHEMA
from synthsae.errors import ConfigError
from synthsae.evaluation.assignment import mean_max_abs_cos
from synthsae.evaluation.scoring import evaluate
from synthsae.training.loop import CHECKPOINT_FILE, TrainHistory, train_many
from synthsae.world.model import World

if TYPE_CHECKING:
    import torch

    from synthsae.saes.external import Factory


def _versions() -> dict[str, str]:
    import torch

    return {
        "synthsae": _core.__version__,
        "rng_algorithm": _core.RNG_ALGORITHM,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


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
    """Every run of ``protocol`` (its registered architectures, then ``custom`` ones; each over L0s, then
    seeds), or the ``shard_index``-th of ``num_shards`` interleaved shares of them."""
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
        "schema": SCHEMA,
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
        raise ConfigError(f"protocol.{name} lists {', '.join(map(str, twice))} more than once")


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
    group_size: int | None = None,
    client: Any = None,
    ceiling: bool = True,
    show_progress: bool = True,
    log: Any = print,
) -> dict[str, Any]:
    """Runs the sweep ``protocol`` describes on ``world`` in ``out`` and returns its report.

    Each run (:class:`RunSpec`) lives in ``out/runs/<arch>-l0-<L0>-seed-<s>/``: the checkpoint while it
    trains (written every tenth of training), then the SAE and ``run.json`` (training log and
    :class:`~synthsae.evaluation.scoring.EvalResult`). Calling again with the same ``out`` skips finished runs
    and resumes an unfinished one from its checkpoint, so a killed sweep loses at most a tenth of a run;
    ``out/bench.json`` records the world and protocol, and a different world or training setting in the
    same ``out`` is refused. ``protocol.saes`` names registered architectures: the built-in ones and any
    :class:`~synthsae.saes.SAE` subclass whose module has been imported (:mod:`synthsae.saes.registry`).
    ``saes`` adds users' SAEs built by factories: ``{"name": factory}`` with
    ``factory(d_in, d_sae, l0, seed) -> module`` (:mod:`synthsae.saes.external`). ``shard_index`` /
    ``num_shards`` run one interleaved share of the runs (merge the shares with :func:`build_report`).
    The runs of one seed train together (:func:`~synthsae.training.train_many`: each batch drawn once,
    every SAE stepped on it, each ending as if trained alone), at most ``group_size`` at a time (None:
    all; each member holds its parameters and Adam's two moments in memory). With ``client`` (a
    ``dask.distributed.Client`` whose workers see ``out``) each group is a task on the cluster; the
    world is saved to ``out/world/`` for the workers, and architectures registered by a module must be
    importable there. With ``ceiling`` the supervised probe ceiling of the ``protocol.width`` most
    frequent features (:func:`~synthsae.evaluation.ceiling.probe_ceiling`) is computed once per world
    and protocol and kept in ``out/ceiling.json``.
    Writes ``out/report.json`` and the plots from every finished run in ``out``."""
    from synthsae.saes.registry import ARCHITECTURES

    out = Path(out)
    saes = dict(saes or {})
    clash = sorted(set(saes) & set(ARCHITECTURES))
    if clash:
        raise ConfigError(f"saes names {clash} clash with registered architectures; rename them")
    for name in protocol.saes:
        if name not in ARCHITECTURES:
            raise ConfigError(
                f"protocol.saes: unknown architecture {name!r} (registered: {', '.join(ARCHITECTURES)}); "
                "import the module defining it, or pass a factory in saes="
            )
    for s in protocol.seeds:
        as_int("seeds", s, minimum=0, maximum=U64_MAX - 1)  # evaluation reads stream seed + 1
    if not protocol.seeds:
        raise ConfigError("protocol.seeds must name at least one seed")
    _no_repeats("saes", [*protocol.saes, *saes])
    _no_repeats("l0s", protocol.l0s)
    _no_repeats("seeds", protocol.seeds)
    as_nonnegative("protocol.ortho_coef", protocol.ortho_coef)
    as_float("protocol.ortho_power", protocol.ortho_power, minimum=1.0)
    if group_size is not None:
        group_size = as_int("group_size", group_size, minimum=1)
    header = _header(world, protocol, preset_name, list(saes))
    out.mkdir(parents=True, exist_ok=True)
    sweep = out / SWEEP_FILE
    if sweep.exists():
        diffs = header_differences(read_header(sweep), header)
        if diffs:
            raise ConfigError(f"{out} holds a sweep of another world or protocol: {'; '.join(diffs)}")
    write_json(sweep, header)
    pending = []
    for spec in plan(protocol, list(saes), shard_index, num_shards):
        run_dir = out / "runs" / spec.name
        if (run_dir / RUN_FILE).exists():
            earlier = read_run(run_dir / RUN_FILE)
            if earlier["name"] != spec.name:
                raise ConfigError(f"{run_dir / RUN_FILE}: records run {earlier['name']!r}, not {spec.name!r}")
            log(f"{spec.name}: {'failed' if 'failed' in earlier else 'finished'} earlier, skipped")
        else:
            pending.append(spec)
    todo = groups(pending, group_size)
    if client is not None:
        _run_dask(client, world, protocol, out, todo, saes, device, log)
    else:
        for group in todo:
            names = ", ".join(s.name for s in group)
            log(f"training {names} ({protocol.width} latents, {protocol.samples:,} rows)")
            _train_group(world, protocol, out, group, saes, device, show_progress, log)
    if ceiling:
        _ceiling(world, protocol, out, device, show_progress, log)
    report = build_report([out])
    report["plots"] = write_report(out, report, world.firing_probabilities.numpy())
    return report


def ceiling_settings(protocol: Protocol) -> dict[str, int]:
    """The probe ceiling's rows for ``protocol``: its width, a tenth of the SAEs' training rows but at
    least 2M (and at most all of them), thresholds tuned on up to 200,000 further rows (no more than it
    trained on), and the SAEs' evaluation rows."""
    train_rows = min(protocol.samples, max(2_000_000, protocol.samples // 10))
    return {
        "features": protocol.width,
        "train_rows": train_rows,
        "calibration_rows": min(200_000, train_rows),
        "eval_rows": protocol.eval_samples,
    }


def _ceiling(world: World, protocol: Protocol, out: Path, device: Any, show_progress: bool, log: Any) -> None:
    """Computes ``out/ceiling.json`` unless it holds this world's ceiling with these settings."""
    from synthsae.evaluation.ceiling import probe_ceiling

    settings = ceiling_settings(protocol)
    earlier = read_ceiling(out / CEILING_FILE)
    if earlier is not None and earlier["world_fingerprint"] == world.fingerprint():
        recorded = {**earlier, **earlier.get("settings", {})}
        if all(recorded.get(k) == v for k, v in settings.items()):
            return
    log(f"probe ceiling: {settings['features']} features, {settings['train_rows']:,} training rows")
    result = probe_ceiling(world, device=device, show_progress=show_progress, **settings)
    log(f"probe ceiling: F1 {result.f1:.4f} in {result.seconds:.0f} s")
    write_json(out / CEILING_FILE, result.to_dict())


def _build(spec: RunSpec, d_in: int, protocol: Protocol, saes: dict[str, Factory]) -> Any:
    """The untrained SAE of run ``spec``: a factory's module, or a registered architecture."""
    from synthsae.saes import external
    from synthsae.saes.registry import create_sae

    if spec.architecture in saes:
        return external.build(
            spec.architecture, saes[spec.architecture], d_in, protocol.width, spec.l0, spec.seed
        )
    steps = protocol.samples // protocol.batch_size
    return create_sae(
        spec.architecture,
        d_in,
        protocol.width,
        l0=spec.l0,
        seed=spec.seed,
        **sae_options(spec.architecture, steps, protocol.autotune_gains.get(spec.architecture)),
    )


def _train_group(
    world: World,
    protocol: Protocol,
    out: Path,
    group: list[RunSpec],
    saes: dict[str, Factory],
    device: Any,
    show_progress: bool,
    log: Any,
) -> None:
    """Trains the runs of ``group`` (one seed) together, then scores and records each."""
    steps = protocol.samples // protocol.batch_size
    models = [_build(spec, world.hidden_dim, protocol, saes) for spec in group]
    run_dirs = [out / "runs" / spec.name for spec in group]
    histories = train_many(
        models,
        world,
        total_samples=protocol.samples,
        batch_size=protocol.batch_size,
        lr=protocol.lr,
        seed=group[0].seed,
        device=device,
        log_every=max(steps // 20, 1),
        dead_window=dead_window(steps),
        ortho_coef=protocol.ortho_coef,
        ortho_power=protocol.ortho_power,
        checkpoint_dirs=list(run_dirs),
        checkpoint_every=max(steps // 10, 1),
        show_progress=show_progress,
    )
    for spec, sae, run_dir, history in zip(group, models, run_dirs, histories, strict=True):
        _finish_run(spec, sae, run_dir, history, world, protocol, device, show_progress, log)


def _run_dask(
    client: Any,
    world: World,
    protocol: Protocol,
    out: Path,
    todo: list[list[RunSpec]],
    saes: dict[str, Factory],
    device: Any,
    log: Any,
) -> None:
    """Each group as a task on ``client``'s workers (which must see ``out``): the world is saved to
    ``out/world/`` for them; a task lost with its worker is retried and resumes from its checkpoints."""
    from dask.distributed import as_completed

    fingerprint = world.fingerprint()
    world_dir = out / WORLD_DIR
    if not _holds_world(world_dir, fingerprint):
        world.save(world_dir, overwrite=world_dir.exists())
    futures = []
    for group in todo:
        names = ", ".join(s.name for s in group)
        log(f"submitting {names} ({protocol.width} latents, {protocol.samples:,} rows)")
        factories = {s.architecture: saes[s.architecture] for s in group if s.architecture in saes}
        futures.append(
            client.submit(
                _dask_group,
                str(world_dir),
                fingerprint,
                str(out),
                protocol,
                group,
                factories,
                device,
                key=f"synthsae-bench-{group[0].name}-{fingerprint[:8]}-{os.getpid()}-{time.time_ns()}",
                retries=2,
            )
        )
    failed = []
    try:
        for future in as_completed(futures):
            try:
                log(f"{', '.join(future.result())}: trained and scored on a Dask worker")
            except Exception as e:
                failed.append(f"{future.key}: {type(e).__name__}: {e}")
    finally:
        client.cancel(futures)
    if failed:
        raise RuntimeError(
            f"{len(failed)} of {len(futures)} groups failed on the cluster (finished runs are saved; rerun "
            "to finish):\n" + "\n".join(failed[:10])
        )


def _holds_world(path: Path, fingerprint: str) -> bool:
    from synthsae.datasets.shards import load_fingerprinted_world

    try:
        load_fingerprinted_world(path, fingerprint)
    except (OSError, ValueError):
        return False
    return True


_WORLDS: dict[str, World] = {}  # by fingerprint, per worker process
_WORLDS_LOCK = threading.Lock()


def _dask_group(
    world_dir: str,
    fingerprint: str,
    out: str,
    protocol: Protocol,
    group: list[RunSpec],
    saes: dict[str, Factory],
    device: Any,
) -> list[str]:
    """One group on a Dask worker (the world loaded from ``world_dir`` once per process)."""
    from synthsae.datasets.shards import load_fingerprinted_world

    with _WORLDS_LOCK:
        world = _WORLDS.get(fingerprint)
        if world is None:
            world = _WORLDS[fingerprint] = load_fingerprinted_world(Path(world_dir), fingerprint)
    _train_group(world, protocol, Path(out), group, saes, device, False, lambda *_: None)
    return [s.name for s in group]


def groups(runs: list[RunSpec], size: int | None) -> list[list[RunSpec]]:
    """``runs`` in groups that train together on one stream: the runs of one seed (in ``runs``' order),
    at most ``size`` per group (None: no limit)."""
    by_seed: dict[int, list[RunSpec]] = {}
    for spec in runs:
        by_seed.setdefault(spec.seed, []).append(spec)
    step = size or max(len(runs), 1)
    return [members[i : i + step] for members in by_seed.values() for i in range(0, len(members), step)]


def _finish_run(
    spec: RunSpec,
    sae: Any,
    run_dir: Path,
    history: TrainHistory,
    world: World,
    protocol: Protocol,
    device: Any,
    show_progress: bool,
    log: Any,
) -> None:
    """Scores a trained run and writes its SAE and ``run.json`` (or records why it failed)."""
    identity = {"name": spec.name, "architecture": spec.architecture, "l0": spec.l0, "seed": spec.seed}
    if history.diverged is not None:
        log(f"{spec.name}: failed: {history.diverged}")
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / RUN_FILE, {**identity, "width": protocol.width, "failed": history.diverged})
        (run_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
        return
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


def _save_sae(sae: Any, path: Path) -> None:
    """An :class:`~synthsae.saes.SAE` in its SAELens-style layout; a factory's module's ``state_dict`` as
    safetensors (atomically; load it with ``safetensors.torch.load_file`` and
    ``module.load_state_dict``)."""
    from safetensors.torch import save_file

    if hasattr(sae, "save"):
        sae.save(path, overwrite=True)
        return
    path.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().cpu().contiguous() for name, t in sae.state_dict().items()}
    atomic_write(path / CUSTOM_WEIGHTS_FILE, lambda tmp: save_file(tensors, str(tmp)))
