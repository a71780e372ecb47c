"""How many threads synthsae's work uses, and how torch's OpenMP threads wait.

* **The budget**: the cores this process may run on (``os.sched_getaffinity``), or the environment
  variable ``SYNTHSAE_THREADS``.
* **Training on the CPU** runs two things at once: torch's step and the prefetch thread sampling the
  next batch in Rust. The sampler gets ``max(1, budget // 4)`` threads and torch the rest, at least two
  (on 2 cores they overlap: sampling is the lighter part); an SAE too small to gain from a second
  thread (:data:`SMALL_SAE_ENTRIES`) trains on one. On a GPU the sampler gets the whole budget and
  torch's CPU threads are left alone.
* **Evaluation and the world build** run one thing at a time: torch gets the whole budget.
* **Waiting**: ``import synthsae`` sets ``OMP_WAIT_POLICY=PASSIVE`` when it is unset and torch is not
  yet imported, so OpenMP threads sleep instead of spinning while they wait for each other; a spinning
  thread keeps the core that a descheduled one needs, which on a busy machine slows every small torch
  operation by a time slice. torch reads the variable once, when it loads: a program that imports torch
  first gets a one-time :class:`ThreadsWarning` when synthsae would run torch on several threads.

Overrides: ``SYNTHSAE_THREADS=N`` (the budget), ``OMP_NUM_THREADS`` (torch's threads: set, synthsae
leaves torch's count alone), ``OMP_WAIT_POLICY=ACTIVE`` (spinning, for a dedicated machine), and the
``num_threads`` / ``torch_threads`` arguments of :func:`synthsae.train`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator

from synthsae._validate import as_int
from synthsae.errors import ConfigError

#: The environment variable that sets the budget.
ENV_VAR = "SYNTHSAE_THREADS"
_WAIT = "OMP_WAIT_POLICY"


class ThreadsWarning(UserWarning):
    """torch was loaded before synthsae could choose how its threads wait."""


#: What import did about waiting: "set" (synthsae set it), "user" (set before), "late" (torch first).
_waiting = "user"
_warned = False


def prefer_passive_waiting() -> None:
    """Sets ``OMP_WAIT_POLICY=PASSIVE`` unless it is set or torch is already imported (called at import)."""
    global _waiting
    if _WAIT in os.environ:
        _waiting = "user"
    elif "torch" in sys.modules:
        _waiting = "late"
    else:
        os.environ[_WAIT] = "PASSIVE"
        _waiting = "set"


def budget() -> int:
    """Cores synthsae plans for: ``SYNTHSAE_THREADS`` when set, else the cores this process may run on."""
    text = os.environ.get(ENV_VAR, "").strip()
    if text:
        try:
            return as_int(ENV_VAR, int(text), minimum=1, maximum=4096)
        except ValueError:
            raise ConfigError(
                f"environment variable {ENV_VAR} must be a whole number >= 1, got {text!r}"
            ) from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


#: SAEs with fewer ``d_in · d_sae`` entries train on one torch thread: their operations on a batch take
#: microseconds, less than waking and joining a second thread (on 2 cores the ``tiny`` preset's 256 × 64
#: SAEs train faster on one thread, the CPU benchmark's 1,024 × 192 ones on two).
SMALL_SAE_ENTRIES = 2**16


def training_split(
    num_threads: int | None = None,
    torch_threads: int | None = None,
    *,
    cpu: bool = True,
    sae_entries: int = SMALL_SAE_ENTRIES,
) -> tuple[int | None, int]:
    """``(torch threads or None, sampler threads)`` for training an SAE of ``sae_entries`` = ``d_in ·
    d_sae``. Explicit values win. On the CPU the sampler gets ``max(1, budget // 4)`` threads and torch
    the rest of :func:`budget`, at least two (the sampler's share is light, so on 2 cores they
    overlap), or one for an SAE below :data:`SMALL_SAE_ENTRIES`. On another device the sampler gets
    the whole budget. ``None`` for torch: leave its count as it is (``OMP_NUM_THREADS`` set, or not
    on the CPU)."""
    total = budget()
    if not cpu:
        return torch_threads, num_threads or total
    sampler = num_threads or max(1, total // 4)
    if torch_threads is None and "OMP_NUM_THREADS" not in os.environ:
        torch_threads = 1 if sae_entries < SMALL_SAE_ENTRIES else min(total, max(2, total - sampler))
    return torch_threads, sampler


def sequential_threads() -> int | None:
    """torch threads for work that does not overlap with sampling (evaluation, the world build): the
    whole :func:`budget`, or None when ``OMP_NUM_THREADS`` is set."""
    return None if "OMP_NUM_THREADS" in os.environ else budget()


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` inside the block (None: unchanged), restored after."""
    import torch

    if n is not None and n > 1:
        _warn_if_spinning()
    old = torch.get_num_threads()
    if n is None or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _warn_if_spinning() -> None:
    global _warned
    if _waiting != "late" or _warned:
        return
    _warned = True
    warnings.warn(
        "torch was imported before synthsae, so its OpenMP threads spin while they wait; with other "
        "work on the machine that can slow training and evaluation many times over. Import synthsae "
        "before torch, or start Python with OMP_WAIT_POLICY=PASSIVE in the environment "
        "(OMP_WAIT_POLICY=ACTIVE keeps spinning and silences this).",
        ThreadsWarning,
        stacklevel=4,
    )


prefer_passive_waiting()
