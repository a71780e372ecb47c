"""Training an SAE on fresh rows of a world: Adam, gradient clipping, LR warm-up/decay, dead-latent
tracking for AuxK, periodic evaluation, checkpoints that resume to the same result, optional wandb."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from synthsae._validate import (
    U64_MAX,
    as_bool,
    as_float,
    as_int,
    as_nonnegative,
    as_num_threads,
    as_positive,
    as_seed,
)
from synthsae.datasets.stream import ActivationStream
from synthsae.errors import ConfigError, ConfigTypeError, SynthSAEError
from synthsae.evaluation.assignment import mean_max_abs_cos
from synthsae.evaluation.scoring import EvalResult, evaluate
from synthsae.threads import torch_threads as using_torch_threads
from synthsae.threads import training_split
from synthsae.training import checkpoints

if TYPE_CHECKING:
    import torch

    from synthsae.saes import SAE, orthogonality
    from synthsae.world.model import World

#: File name of the checkpoint inside ``checkpoint_dir``.
CHECKPOINT_FILE = checkpoints.CHECKPOINT_FILE


class TrainingDiverged(SynthSAEError, RuntimeError):
    """The loss or the parameters became NaN or inf (a learning rate too high, for instance)."""


@dataclass
class TrainHistory:
    """What :func:`train` did: ``records`` (one dict per ``log_every`` steps: step, samples, lr, loss and
    its parts, batch L0, batch explained variance, dead latents) and ``evals`` ``(step, EvalResult)``."""

    steps: int = 0
    samples: int = 0
    seconds: float = 0.0
    #: torch's intra-op threads during the steps (ReLU's and MP's parameters depend on it).
    torch_threads: int = 0
    #: Why training stopped early (the loss or the parameters became NaN or inf), else None.
    diverged: str | None = None
    records: list[dict[str, float]] = field(default_factory=list)
    evals: list[tuple[int, EvalResult]] = field(default_factory=list)


def _betas(value: Any) -> tuple[float, float]:
    """Adam's ``(β1, β2)``, each in ``[0, 1)``."""
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ConfigTypeError(f"adam_betas must be a pair of floats, got {value!r}")
    betas = tuple(as_float("adam_betas", b, minimum=0.0) for b in value)
    if not all(b < 1 for b in betas):
        raise ConfigError(f"adam_betas must each be in [0, 1), got {value!r}")
    return betas[0], betas[1]


def learning_rate(
    step: int, *, lr: float, total_steps: int, warmup_steps: int, decay_steps: int, lr_end: float
) -> float:
    """LR of ``step`` (0-based): linear warm-up from lr/warmup to lr over ``warmup_steps``, constant, then a
    linear decay to ``lr_end`` over the last ``decay_steps`` (SAELens's constant schedule with warm-up and
    decay)."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    decay_start = total_steps - decay_steps
    if decay_steps and step >= decay_start:
        return lr + (lr_end - lr) * (step - decay_start + 1) / decay_steps
    return lr


def _batch_stats(x: torch.Tensor, x_hat: torch.Tensor, latents: torch.Tensor) -> tuple[float, float]:
    """(mean L0, explained variance) of one batch (pooled, about the batch mean)."""
    x, x_hat = x.float(), x_hat.float()
    var = (x - x.mean(0)).pow(2).sum()
    ev = 1.0 - float((x - x_hat).pow(2).sum() / var) if float(var) > 0 else 0.0
    return float((latents != 0).sum(-1).float().mean()), ev


@dataclass(frozen=True)
class _Settings:
    """The checked settings of one training run (shared by every SAE trained together)."""

    batch_size: int
    total_steps: int
    seed: int
    lr: float
    lr_end: float
    warmup: int
    decay: int
    eval_every: int | None
    eval_samples: int
    checkpoint_every: int | None
    dead_window: int
    log_every: int
    ortho_coef: float
    ortho_power: float
    ortho_refresh: int
    max_grad_norm: float
    adam_betas: tuple[float, float]


class _Trainer:
    """One SAE's training state: its optimiser, dead-latent counters, history and checkpoint."""

    def __init__(
        self,
        sae: Any,
        world: World,
        s: _Settings,
        *,
        device: torch.device,
        autocast: bool,
        torch_threads: int | None,
        checkpoint_dir: str | os.PathLike[str] | None,
        resume: bool,
        run: Any,
    ) -> None:
        import torch

        from synthsae.saes import external

        self.sae, self.world, self.s, self.device, self.autocast, self.run = (
            sae,
            world,
            s,
            device,
            autocast,
            run,
        )
        self.name = str(getattr(sae, "architecture", type(sae).__name__))
        self.d_sae = int(cast("torch.Tensor", sae.W_dec).shape[0])
        self.optimizer = torch.optim.Adam(sae.parameters(), lr=s.lr, betas=s.adam_betas)
        self.since_fired = torch.zeros(self.d_sae, dtype=torch.int64, device=device)
        self.history = TrainHistory()
        self.pairs: orthogonality.NeighbourPairs | None = None
        self.settings: dict[str, Any] = {}  # what changes the result; only a checkpoint needs it
        if checkpoint_dir is not None:
            self.settings = {
                "sae": external.config(sae),
                "world_fingerprint": world.fingerprint(),
                "batch_size": s.batch_size,
                "seed": s.seed,
                "lr": s.lr,
                "lr_warmup_steps": s.warmup,
                "lr_decay_steps": s.decay,
                "lr_end": s.lr_end,
                "adam_betas": list(s.adam_betas),
                "max_grad_norm": s.max_grad_norm,
                "dead_window": s.dead_window,
                "ortho_coef": s.ortho_coef,
                "ortho_power": s.ortho_power,
                "ortho_refresh": s.ortho_refresh,
                "device": device.type,
                "autocast": autocast,
            }
            if s.decay:  # the decay's start depends on the length; without one a run may be extended
                self.settings["total_steps"] = s.total_steps
            if device.type == "cpu" and not getattr(sae, "thread_invariant", False):  # bits depend on threads
                self.settings["torch_threads"] = torch_threads or torch.get_num_threads()
        self.checkpoint = (
            Path(checkpoint_dir) / checkpoints.CHECKPOINT_FILE if checkpoint_dir is not None else None
        )
        if self.checkpoint is not None:
            pickled = self.checkpoint.with_name(checkpoints.PICKLED_FILE)
            if pickled.exists():
                raise ConfigError(
                    f"{pickled} is a checkpoint in a pickle format, which synthsae does not load (loading "
                    "it could run code); delete it to restart this run from its beginning"
                )
            if self.checkpoint.exists():
                if not resume:
                    raise FileExistsError(f"{self.checkpoint} exists; pass resume=True to continue from it")
                self._resume(self.checkpoint)

    def _resume(self, checkpoint: Path) -> None:
        saved = checkpoints.load(checkpoint, self.device)
        diffs = checkpoints.differences(saved.settings, self.settings)
        if diffs:
            raise ConfigError(
                f"{checkpoint} was written with other settings ({'; '.join(diffs)}); use a new "
                "checkpoint_dir, or the same settings to resume"
            )
        try:
            self.sae.load_state_dict(saved.sae, strict=True)
            self.optimizer.load_state_dict(saved.optimizer)
            self.since_fired.copy_(saved.since_fired)
            self.history = history_from_dict(saved.history)
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise ConfigError(f"{checkpoint}: corrupt checkpoint: {type(e).__name__}: {e}") from None
        if saved.pairs is not None:
            from synthsae.saes import orthogonality

            self.pairs = orthogonality.NeighbourPairs(*saved.pairs)
        if self.history.steps > self.s.total_steps:
            raise ConfigError(
                f"{checkpoint} holds {self.history.steps} steps, more than total_samples asks for "
                f"({self.s.total_steps}); use a new checkpoint_dir"
            )

    @property
    def active(self) -> bool:
        """Still training: not diverged and steps left."""
        return self.history.diverged is None and self.history.steps < self.s.total_steps

    def save_checkpoint(self) -> None:
        if self.checkpoint is None:
            return
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        pairs = self.pairs
        state = checkpoints.Checkpoint(
            settings=self.settings,
            sae=self.sae.state_dict(),
            optimizer=self.optimizer.state_dict(),
            since_fired=self.since_fired,
            history=history_to_dict(self.history),
            pairs=None if pairs is None else (pairs.latents, pairs.neighbours, pairs.weights),
        )
        checkpoints.save(self.checkpoint, state)

    def run_eval(self, step: int) -> None:
        result = evaluate(
            self.sae,
            self.world,
            num_samples=self.s.eval_samples,
            batch_size=max(self.s.batch_size, 4096),
            seed=self.s.seed + 1,
            show_progress=False,
        )
        self.history.evals.append((step, result))
        if self.run is not None:
            self.run.log(result.to_log_dict("eval/"), step=step)

    def step(self, step: int, x: torch.Tensor) -> dict[str, float] | None:
        """One optimiser step on batch ``x`` (the stream's batch ``step``); returns the log record when
        one is written. A non-finite loss stops this SAE (its history's ``diverged``)."""
        import torch

        from synthsae.saes import external, orthogonality

        s, sae = self.s, self.sae
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(
                step,
                lr=s.lr,
                total_steps=s.total_steps,
                warmup_steps=s.warmup,
                decay_steps=s.decay,
                lr_end=s.lr_end,
            )
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            out = external.training_forward(sae, x, self.since_fired > s.dead_window)
        loss, ortho = out.loss, None
        if s.ortho_coef > 0:
            w_dec = cast("torch.Tensor", sae.W_dec)
            if self.pairs is None or step % s.ortho_refresh == 0:
                self.pairs = orthogonality.nearest_pairs(w_dec)
            ortho = orthogonality.ortho_penalty(w_dec, (out.latents != 0).any(0), self.pairs, s.ortho_power)
            loss = loss + s.ortho_coef * ortho
        loss.backward()
        torch.nn.utils.clip_grad_norm_(sae.parameters(), s.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if hasattr(sae, "after_step"):
            cast("Any", sae).after_step(out)
        with torch.no_grad():
            fired = (out.latents != 0).any(0)
            self.since_fired.add_(1).masked_fill_(fired, 0)
        history = self.history
        history.steps, history.samples = step + 1, (step + 1) * s.batch_size
        record = None
        if (step + 1) % s.log_every == 0 or step + 1 == s.total_steps:
            l0, ev = _batch_stats(x, out.reconstruction, out.latents)
            record = {
                "step": step + 1,
                "samples": history.samples,
                "lr": self.optimizer.param_groups[0]["lr"],
                "loss": float(out.loss.detach()),
                **{name: float(v) for name, v in out.losses.items()},
                "l0": l0,
                "explained_variance": ev,
                "dead_latents": int((self.since_fired > s.dead_window).sum()),
            }
            if ortho is not None:
                record["ortho"] = float(ortho.detach())
                record["decoder_rho_mm"] = mean_max_abs_cos(cast("torch.Tensor", sae.W_dec))
            history.records.append(record)
            if not math.isfinite(record["loss"]):
                self.history.diverged = f"training diverged: the loss is {record['loss']} at step {step + 1}"
                return record
            if self.run is not None:
                self.run.log({f"train/{k}": v for k, v in record.items() if k != "step"}, step=step + 1)
        if s.eval_every is not None and (step + 1) % s.eval_every == 0 and step + 1 < s.total_steps:
            self.run_eval(step + 1)
        if s.checkpoint_every is not None and (step + 1) % s.checkpoint_every == 0:
            self.save_checkpoint()
        return record

    def finish(self) -> None:
        """After the last step: the parameter check, the final evaluation and checkpoint."""
        import torch

        if self.history.diverged is not None:
            return
        if not all(bool(torch.isfinite(p).all()) for p in self.sae.parameters()):
            self.history.diverged = (
                f"training diverged: parameters are NaN or inf after step {self.history.steps}"
            )
            return
        s, history = self.s, self.history
        if (
            s.eval_every is not None
            and history.steps == s.total_steps
            and not any(step == s.total_steps for step, _ in history.evals)
        ):
            self.run_eval(s.total_steps)
        self.save_checkpoint()
        if self.run is not None:
            self.run.finish()


def train(
    sae: SAE | torch.nn.Module,
    world: World,
    *,
    total_samples: int,
    batch_size: int = 1024,
    lr: float = 3e-4,
    seed: int = 0,
    device: Any = None,
    autocast: bool | None = None,
    eval_every: int | None = None,
    eval_samples: int = 100_000,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    resume: bool = True,
    log_to_wandb: bool = False,
    wandb_project: str = "synthsae",
    lr_warmup_steps: int = 0,
    lr_decay_steps: int = 0,
    lr_end: float | None = None,
    adam_betas: tuple[float, float] = (0.9, 0.999),
    max_grad_norm: float = 1.0,
    dead_window: int = 1000,
    ortho_coef: float = 0.0,
    ortho_power: float = 2.0,
    ortho_refresh: int = 10,
    log_every: int = 100,
    show_progress: bool = True,
    num_threads: int | None = None,
    torch_threads: int | None = None,
) -> TrainHistory:
    """Trains ``sae`` (a :mod:`synthsae.saes` module, or any module :mod:`synthsae.saes.external`
    accepts) for ``total_samples // batch_size`` steps on batches ``0, 1, ...`` of the world's stream
    ``seed`` (:class:`ActivationStream`, prefetched).

    Each step: ``sae.training_forward(x, dead_mask=...)`` (or ``sae.loss(x)``), backward, gradient
    clipping to ``max_grad_norm``, Adam (``adam_betas``) at :func:`learning_rate`, then
    ``sae.after_step`` if it has one (decoder norms, thresholds, coefficient controllers). A latent is
    dead for AuxK once it has not fired for ``dead_window`` steps. ``autocast`` (default: on for CUDA)
    runs the forward in bfloat16.

    ``ortho_coef`` > 0 adds the decoder-orthogonality penalty (:mod:`synthsae.saes.orthogonality`):
    ``ortho_coef`` times the mean, over latents that fired in the batch, of ``|cos|^ortho_power`` to
    their nearest decoder row, found again every ``ortho_refresh`` steps. The log then records the
    penalty (``ortho``) and the decoder's mean max ``|cos|`` (``decoder_rho_mm``). 0 (the default)
    trains exactly as without it.

    ``eval_every`` steps (and after the last step) :func:`evaluate` scores the SAE on ``eval_samples``
    rows of stream ``seed + 1`` (never the training rows). With ``checkpoint_dir``, a checkpoint (SAE,
    optimiser, step, dead-latent counters, history) is written atomically every ``checkpoint_every``
    steps and at the end; a later call with the same directory resumes from it (``resume=False``
    refuses to touch an existing one) and gives the same parameters as an uninterrupted run.

    Threads (:mod:`synthsae.threads`): on the CPU the sampler (``num_threads``) and torch
    (``torch_threads``) share the cores: by default the sampler gets a quarter of
    :func:`synthsae.threads.budget` (at least one) and torch the rest, at least two (one for an SAE
    below :data:`synthsae.threads.SMALL_SAE_ENTRIES`); torch's count is restored after.

    Raises :class:`TrainingDiverged` when the loss or the parameters become NaN or inf.
    :func:`train_many` trains several SAEs on one stream.
    """
    history = train_many(
        [sae],
        world,
        total_samples=total_samples,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        autocast=autocast,
        eval_every=eval_every,
        eval_samples=eval_samples,
        checkpoint_dirs=None if checkpoint_dir is None else [checkpoint_dir],
        checkpoint_every=checkpoint_every,
        resume=resume,
        log_to_wandb=log_to_wandb,
        wandb_project=wandb_project,
        lr_warmup_steps=lr_warmup_steps,
        lr_decay_steps=lr_decay_steps,
        lr_end=lr_end,
        adam_betas=adam_betas,
        max_grad_norm=max_grad_norm,
        dead_window=dead_window,
        ortho_coef=ortho_coef,
        ortho_power=ortho_power,
        ortho_refresh=ortho_refresh,
        log_every=log_every,
        show_progress=show_progress,
        num_threads=num_threads,
        torch_threads=torch_threads,
    )[0]
    if history.diverged is not None:
        raise TrainingDiverged(history.diverged)
    return history


def train_many(
    saes: list[SAE | torch.nn.Module],
    world: World,
    *,
    total_samples: int,
    batch_size: int = 1024,
    lr: float = 3e-4,
    seed: int = 0,
    device: Any = None,
    autocast: bool | None = None,
    eval_every: int | None = None,
    eval_samples: int = 100_000,
    checkpoint_dirs: list[str | os.PathLike[str]] | None = None,
    checkpoint_every: int | None = None,
    resume: bool = True,
    log_to_wandb: bool = False,
    wandb_project: str = "synthsae",
    lr_warmup_steps: int = 0,
    lr_decay_steps: int = 0,
    lr_end: float | None = None,
    adam_betas: tuple[float, float] = (0.9, 0.999),
    max_grad_norm: float = 1.0,
    dead_window: int = 1000,
    ortho_coef: float = 0.0,
    ortho_power: float = 2.0,
    ortho_refresh: int = 10,
    log_every: int = 100,
    show_progress: bool = True,
    num_threads: int | None = None,
    torch_threads: int | None = None,
) -> list[TrainHistory]:
    """Trains every SAE of ``saes`` on one stream: each batch of stream ``seed`` is drawn once and every
    SAE steps on it, so each ends exactly as :func:`train` with the same arguments would leave it (its
    own optimiser, dead-latent counters, schedule, evaluations and checkpoint in
    ``checkpoint_dirs[i]``). The arguments are :func:`train`'s; ``log_to_wandb`` takes one SAE.

    A killed run resumes from each SAE's checkpoint (the stream restarts at the earliest one; an SAE
    that is further along waits for it). An SAE whose loss or parameters become NaN or inf stops (its
    history's ``diverged`` says why) while the others go on. Returns the histories in ``saes``' order;
    each one's ``seconds`` is its share of the wall time (its own steps, and an equal share of waiting
    for batches).
    """
    import torch
    from tqdm.auto import tqdm

    from synthsae.saes import external

    if not isinstance(saes, list | tuple) or not saes:
        raise ConfigTypeError(f"saes must be a non-empty list of SAEs, got {type(saes).__name__}")
    for i, sae in enumerate(saes):
        external.check_trainable(sae, "sae" if len(saes) == 1 else f"saes[{i}]")
    if len({id(sae) for sae in saes}) != len(saes):
        raise ConfigError("saes lists the same SAE more than once")
    if checkpoint_dirs is not None:
        if not isinstance(checkpoint_dirs, list | tuple) or len(checkpoint_dirs) != len(saes):
            raise ConfigError(f"checkpoint_dirs must list one directory per SAE ({len(saes)})")
        if len({Path(d).resolve() for d in checkpoint_dirs}) != len(saes):
            raise ConfigError("checkpoint_dirs must differ: each SAE has its own checkpoint")
    batch_size = as_int("batch_size", batch_size, minimum=1)
    total_steps = as_int("total_samples", total_samples, minimum=0) // batch_size
    seed = as_seed(seed)
    lr = as_positive("lr", lr)
    lr_end = lr / 10 if lr_end is None else as_nonnegative("lr_end", lr_end)
    warmup = as_int("lr_warmup_steps", lr_warmup_steps, minimum=0)
    decay = as_int("lr_decay_steps", lr_decay_steps, minimum=0)
    if eval_every is not None:
        eval_every = as_int("eval_every", eval_every, minimum=1)
        # Evaluation reads stream seed + 1.
        seed = as_int("seed", seed, maximum=U64_MAX - 1, maximum_name="2**64 - 2 with eval_every")
    eval_samples = as_int("eval_samples", eval_samples, minimum=0)
    if checkpoint_every is not None:
        checkpoint_every = as_int("checkpoint_every", checkpoint_every, minimum=1)
    settings = _Settings(
        batch_size=batch_size,
        total_steps=total_steps,
        seed=seed,
        lr=lr,
        lr_end=lr_end,
        warmup=warmup,
        decay=decay,
        eval_every=eval_every,
        eval_samples=eval_samples,
        checkpoint_every=checkpoint_every,
        dead_window=as_int("dead_window", dead_window, minimum=1),
        log_every=as_int("log_every", log_every, minimum=1),
        ortho_coef=as_nonnegative("ortho_coef", ortho_coef),
        ortho_power=as_float("ortho_power", ortho_power, minimum=1.0),  # < 1: infinite slope at 0
        ortho_refresh=as_int("ortho_refresh", ortho_refresh, minimum=1),
        max_grad_norm=as_positive("max_grad_norm", max_grad_norm),
        adam_betas=_betas(adam_betas),
    )
    resume = as_bool("resume", resume)
    log_to_wandb = as_bool("log_to_wandb", log_to_wandb)
    if log_to_wandb and len(saes) > 1:
        raise ConfigError("log_to_wandb logs one SAE: train the SAEs one at a time to log each")
    entries = 0
    for i, sae in enumerate(saes):
        d_sae, d_in = (int(n) for n in cast("torch.Tensor", sae.W_dec).shape)
        if d_in != world.hidden_dim:
            name = "sae" if len(saes) == 1 else f"saes[{i}]"
            raise ConfigError(
                f"the {name}'s d_in ({d_in}, from W_dec) must equal the world's hidden_dim "
                f"({world.hidden_dim})"
            )
        entries = max(entries, d_sae * d_in)
    if device is not None:
        for sae in saes:
            sae.to(device)
    devices = {cast("torch.Tensor", sae.W_dec).device for sae in saes}
    if len(devices) > 1:
        raise ConfigError(f"the SAEs are on different devices ({sorted(map(str, devices))}); pass device=")
    dev = devices.pop()
    if torch_threads is not None:
        torch_threads = as_int("torch_threads", torch_threads, minimum=1, maximum=4096)
    torch_threads, num_threads = training_split(
        as_num_threads(num_threads), torch_threads, cpu=dev.type == "cpu", sae_entries=entries
    )
    autocast = dev.type == "cuda" if autocast is None else as_bool("autocast", autocast)

    run = None
    if log_to_wandb:
        try:
            import wandb
        except ImportError:
            raise ImportError("log_to_wandb=True needs wandb: pip install 'synthsae[wandb]'") from None

        run = wandb.init(
            project=wandb_project,
            config={"sae": external.config(saes[0]), "batch_size": batch_size, "lr": lr},
        )
    trainers = [
        _Trainer(
            sae,
            world,
            settings,
            device=dev,
            autocast=autocast,
            torch_threads=torch_threads,
            checkpoint_dir=None if checkpoint_dirs is None else checkpoint_dirs[i],
            resume=resume,
            run=run,
        )
        for i, sae in enumerate(saes)
    ]
    start_step = min(t.history.steps for t in trainers)
    stream = ActivationStream(
        world,
        batch_size,
        seed=seed,
        device=dev,
        start_batch=start_step,
        num_batches=max(total_steps - start_step, 0),
        num_threads=num_threads,
    )
    for sae in saes:
        sae.train()
    threads_used = torch_threads or torch.get_num_threads()
    for t in trainers:
        t.history.torch_threads = threads_used
    names = [t.name for t in trainers]
    bar = tqdm(
        total=total_steps,
        initial=start_step,
        unit="step",
        desc=f"train {names[0]}" if len(names) == 1 else f"train {len(names)} SAEs",
        disable=not show_progress,
    )
    batches = iter(stream)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(bar.close)
        cleanup.callback(batches.close)
        cleanup.enter_context(using_torch_threads(torch_threads))
        waited = time.perf_counter()
        for step, batch in enumerate(batches, start=start_step):
            x = cast("torch.Tensor", batch)  # hidden rows only: the stream has return_features=False
            stepping = [t for t in trainers if t.active and t.history.steps == step]
            if not any(t.active for t in trainers):
                break
            wait = (time.perf_counter() - waited) / max(len(stepping), 1)
            for t in stepping:
                t0 = time.perf_counter()
                record = t.step(step, x)
                t.history.seconds += time.perf_counter() - t0 + wait
                if record is not None and t.history.diverged is None and show_progress:
                    bar.set_postfix(_postfix(trainers))
            waited = time.perf_counter()
            bar.update(1)
    for t in trainers:
        t.finish()
    return [t.history for t in trainers]


def _postfix(trainers: list[_Trainer]) -> dict[str, str]:
    """The progress bar's figures: loss, L0 and explained variance of one SAE, the L0s of several."""
    logged = [(t.name, t.history.records[-1]) for t in trainers if t.history.records]
    if len(trainers) == 1 and logged:
        r = logged[0][1]
        return {"loss": f"{r['loss']:.4g}", "l0": f"{r['l0']:.1f}", "ev": f"{r['explained_variance']:.3f}"}
    return {"l0": " ".join(f"{r['l0']:.1f}" for _, r in logged)}


def history_to_dict(history: TrainHistory) -> dict[str, Any]:
    """``history`` as JSON-serialisable data (EvalResults via ``to_dict``)."""
    out = dataclasses.asdict(dataclasses.replace(history, evals=[]))
    out["evals"] = [{"step": step, **result.to_dict()} for step, result in history.evals]
    return out


def history_from_dict(data: dict[str, Any]) -> TrainHistory:
    """The inverse of :func:`history_to_dict`; ``ValueError`` for anything else."""
    if not isinstance(data, dict):
        raise ConfigError(f"a training history must be a dict, got {type(data).__name__}")
    try:
        evals = [(int(e.pop("step")), EvalResult.from_dict(e)) for e in map(dict, data["evals"])]
        records = [{str(k): float(v) for k, v in r.items()} for r in data["records"]]
        return TrainHistory(
            steps=int(data["steps"]),
            samples=int(data["samples"]),
            seconds=float(data["seconds"]),
            torch_threads=int(data.get("torch_threads", 0)),
            records=records,
            evals=evals,
        )
    except (KeyError, TypeError, AttributeError) as e:
        raise ConfigError(f"not a training history: {type(e).__name__}: {e}") from None
