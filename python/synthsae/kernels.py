"""Which build of synthsae this is, and which vector kernel its sampler runs.

Every kernel gives the same bits; they differ in speed only. The widest the CPU runs is chosen at
import, unless the environment variable ``SYNTHSAE_KERNEL`` names another (for benchmarks).
"""

from __future__ import annotations

import os
from typing import Any

from synthsae import _core
from synthsae.errors import ConfigError, ConfigTypeError

ENV_VAR = "SYNTHSAE_KERNEL"


def build_info() -> dict[str, Any]:
    """This build and this CPU: ``version``, ``rng`` (the RNG algorithm id, as in dataset manifests),
    ``kernel`` (the one in use), ``kernels`` (those this CPU runs, narrowest first) and ``target``
    (architecture and OS the extension was built for)."""
    return {
        "version": _core.__version__,
        "rng": _core.RNG_ALGORITHM,
        "kernel": _core.kernel(),
        "kernels": _core.kernels(),
        "target": _core.TARGET,
    }


def set_kernel(name: str | None) -> None:
    """Runs the kernel called ``name`` from now on, in every thread (``None``: the widest this CPU
    runs). One of ``"portable"``, ``"avx2"``, ``"avx512"``, ``"avx512-vnni"``; a kernel the CPU
    lacks is refused with ``ValueError``."""
    if name is not None and not isinstance(name, str):
        raise ConfigTypeError(f"name must be a str or None, got {type(name).__name__}")
    _core.set_kernel(name)


def apply_environment() -> None:
    """Applies ``SYNTHSAE_KERNEL`` when it is set and not empty (a ``ValueError`` naming it otherwise)."""
    name = os.environ.get(ENV_VAR, "")
    if not name:
        return
    try:
        _core.set_kernel(name)
    except ValueError as e:
        raise ConfigError(f"environment variable {ENV_VAR}={name!r}: {e}") from None
