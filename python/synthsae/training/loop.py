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

    from synthsae.saes import SAE
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
    """
    import torch
    from tqdm.auto import tqdm

    from synthsae.saes import external, orthogonality

    external.check_trainable(sae, "sae")
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
    dead_window = as_int("dead_window", dead_window, minimum=1)
    log_every = as_int("log_every", log_every, minimum=1)
    ortho_coef = as_nonnegative("ortho_coef", ortho_coef)
    ortho_power = as_float("ortho_power", ortho_power, minimum=1.0)  # < 1: infinite slope at 0
    ortho_refresh = as_int("ortho_refresh", ortho_refresh, minimum=1)
    max_grad_norm = as_positive("max_grad_norm", max_grad_norm)
    adam_betas = _betas(adam_betas)
    resume = as_bool("resume", resume)
    log_to_wandb = as_bool("log_to_wandb", log_to_wandb)
    d_sae, d_in = (int(n) for n in cast("torch.Tensor", sae.W_dec).shape)
    if d_in != world.hidden_dim:
        raise ConfigError(
            f"the sae's d_in ({d_in}, from W_dec) must equal the world's hidden_dim ({world.hidden_dim})"
        )
    sae_config = external.config(sae)

    if device is not None:
        sae.to(device)
    device = sae.W_dec.device
    if torch_threads is not None:
        torch_threads = as_int("torch_threads", torch_threads, minimum=1, maximum=4096)
    torch_threads, num_threads = training_split(
        as_num_threads(num_threads), torch_threads, cpu=device.type == "cpu", sae_entries=d_sae * d_in
    )
    autocast = device.type == "cuda" if autocast is None else as_bool("autocast", autocast)
    optimizer = torch.optim.Adam(sae.parameters(), lr=lr, betas=adam_betas)
    since_fired = torch.zeros(d_sae, dtype=torch.int64, device=device)
    history = TrainHistory()
    pairs: orthogonality.NeighbourPairs | None = None

    def w_dec() -> torch.Tensor:
        return cast("torch.Tensor", sae.W_dec)

    settings: dict[str, Any] = {}  # what changes the result; only a checkpoint needs it
    if checkpoint_dir is not None:
        settings = {
            "sae": sae_config,
            "world_fingerprint": world.fingerprint(),
            "batch_size": batch_size,
            "seed": seed,
            "lr": lr,
            "lr_warmup_steps": warmup,
            "lr_decay_steps": decay,
            "lr_end": lr_end,
            "adam_betas": list(adam_betas),
            "max_grad_norm": max_grad_norm,
            "dead_window": dead_window,
            "ortho_coef": ortho_coef,
            "ortho_power": ortho_power,
            "ortho_refresh": ortho_refresh,
            "device": device.type,
            "autocast": autocast,
        }
        if decay:  # the decay's start depends on the length; without one a run may be extended
            settings["total_steps"] = total_steps
        if device.type == "cpu" and not getattr(sae, "thread_invariant", False):  # bits depend on threads
            settings["torch_threads"] = torch_threads or torch.get_num_threads()

    checkpoint = Path(checkpoint_dir) / checkpoints.CHECKPOINT_FILE if checkpoint_dir is not None else None
    if checkpoint is not None:
        pickled = checkpoint.with_name(checkpoints.PICKLED_FILE)
        if pickled.exists():
            raise ConfigError(
                f"{pickled} is a checkpoint in a pickle format, which synthsae does not load (loading "
                "it could run code); delete it to restart this run from its beginning"
            )
    if checkpoint is not None and checkpoint.exists():
        if not resume:
            raise FileExistsError(f"{checkpoint} exists; pass resume=True to continue from it")
        saved = checkpoints.load(checkpoint, device)
        diffs = checkpoints.differences(saved.settings, settings)
        if diffs:
            raise ConfigError(
                f"{checkpoint} was written with other settings ({'; '.join(diffs)}); use a new "
                "checkpoint_dir, or the same settings to resume"
            )
        try:
            sae.load_state_dict(saved.sae, strict=True)
            optimizer.load_state_dict(saved.optimizer)
            since_fired.copy_(saved.since_fired)
            history = history_from_dict(saved.history)
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise ConfigError(f"{checkpoint}: corrupt checkpoint: {type(e).__name__}: {e}") from None
        if saved.pairs is not None:
            pairs = orthogonality.NeighbourPairs(*saved.pairs)
        if history.steps > total_steps:
            raise ConfigError(
                f"{checkpoint} holds {history.steps} steps, more than total_samples asks for "
                f"({total_steps}); use a new checkpoint_dir"
            )

    def save_checkpoint() -> None:
        if checkpoint is None:
            return
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        state = checkpoints.Checkpoint(
            settings=settings,
            sae=sae.state_dict(),
            optimizer=optimizer.state_dict(),
            since_fired=since_fired,
            history=history_to_dict(history),
            pairs=None if pairs is None else (pairs.latents, pairs.neighbours, pairs.weights),
        )
        checkpoints.save(checkpoint, state)

    run = None
    if log_to_wandb:
        try:
            import wandb
        except ImportError:
            raise ImportError("log_to_wandb=True needs wandb: pip install 'synthsae[wandb]'") from None

        run = wandb.init(
            project=wandb_project, config={"sae": sae_config, "batch_size": batch_size, "lr": lr}
        )

    def run_eval(step: int) -> None:
        result = evaluate(
            sae,
            world,
            num_samples=eval_samples,
            batch_size=max(batch_size, 4096),
            seed=seed + 1,
            show_progress=False,
        )
        history.evals.append((step, result))
        if run is not None:
            run.log(result.to_log_dict("eval/"), step=step)

    start_step = history.steps
    stream = ActivationStream(
        world,
        batch_size,
        seed=seed,
        device=device,
        start_batch=start_step,
        num_batches=max(total_steps - start_step, 0),
        num_threads=num_threads,
    )
    sae.train()
    history.torch_threads = torch_threads or torch.get_num_threads()
    started = time.perf_counter() - history.seconds
    bar = tqdm(
        total=total_steps,
        initial=start_step,
        unit="step",
        desc=f"train {getattr(sae, 'architecture', type(sae).__name__)}",
        disable=not show_progress,
    )
    batches = iter(stream)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(bar.close)
        cleanup.callback(batches.close)
        cleanup.enter_context(using_torch_threads(torch_threads))
        for step, batch in enumerate(batches, start=start_step):
            x = cast("torch.Tensor", batch)  # hidden rows only: the stream has return_features=False
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(
                    step,
                    lr=lr,
                    total_steps=total_steps,
                    warmup_steps=warmup,
                    decay_steps=decay,
                    lr_end=lr_end,
                )
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                out = external.training_forward(sae, x, since_fired > dead_window)
            loss, ortho = out.loss, None
            if ortho_coef > 0:
                if pairs is None or step % ortho_refresh == 0:
                    pairs = orthogonality.nearest_pairs(w_dec())
                ortho = orthogonality.ortho_penalty(w_dec(), (out.latents != 0).any(0), pairs, ortho_power)
                loss = loss + ortho_coef * ortho
            loss.backward()
            torch.nn.utils.clip_grad_norm_(sae.parameters(), max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if hasattr(sae, "after_step"):
                cast("Any", sae).after_step(out)
            with torch.no_grad():
                fired = (out.latents != 0).any(0)
                since_fired.add_(1).masked_fill_(fired, 0)
            history.steps, history.samples = step + 1, (step + 1) * batch_size
            if (step + 1) % log_every == 0 or step + 1 == total_steps:
                l0, ev = _batch_stats(x, out.reconstruction, out.latents)
                record = {
                    "step": step + 1,
                    "samples": history.samples,
                    "lr": optimizer.param_groups[0]["lr"],
                    "loss": float(out.loss.detach()),
                    **{name: float(v) for name, v in out.losses.items()},
                    "l0": l0,
                    "explained_variance": ev,
                    "dead_latents": int((since_fired > dead_window).sum()),
                }
                if ortho is not None:
                    record["ortho"] = float(ortho.detach())
                    record["decoder_rho_mm"] = mean_max_abs_cos(w_dec())
                history.records.append(record)
                if not math.isfinite(record["loss"]):
                    raise TrainingDiverged(
                        f"training diverged: the loss is {record['loss']} at step {step + 1}"
                    )
                bar.set_postfix(loss=f"{record['loss']:.4g}", l0=f"{l0:.1f}", ev=f"{ev:.3f}")
                if run is not None:
                    run.log({f"train/{k}": v for k, v in record.items() if k != "step"}, step=step + 1)
            if eval_every is not None and (step + 1) % eval_every == 0 and step + 1 < total_steps:
                run_eval(step + 1)
            if checkpoint_every is not None and (step + 1) % checkpoint_every == 0:
                history.seconds = time.perf_counter() - started
                save_checkpoint()
            bar.update(1)
    if not all(bool(torch.isfinite(p).all()) for p in sae.parameters()):
        raise TrainingDiverged(f"training diverged: parameters are NaN or inf after step {history.steps}")
    if (
        eval_every is not None
        and history.steps == total_steps
        and not any(s == total_steps for s, _ in history.evals)
    ):
        run_eval(total_steps)
    history.seconds = time.perf_counter() - started
    save_checkpoint()
    if run is not None:
        run.finish()
    return history


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
