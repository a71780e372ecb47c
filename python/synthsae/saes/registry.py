"""The architectures by name: every :class:`~synthsae.saes.base.SAE` subclass that names an
``architecture`` registers itself here when its class is defined, and :func:`create_sae` builds one by
name.

This module imports no architecture (the base class imports it to register its subclasses); importing
:mod:`synthsae.saes` registers the built-in ones. A user's architecture is registered once its module is
imported (``synthsae bench --sae-module``). What a class declares for the registry:

* ``architecture`` — its unique name (``"topk"``);
* ``from_l0(d_in, d_sae, l0, **kwargs)`` — the SAE aimed at L0 ``l0``: how the L0 maps to its
  constructor arguments;
* ``direct_l0`` — whether that L0 is set directly (a ``k``) rather than reached by a controller that
  steers a penalty coefficient during training;
* ``in_paper`` — whether it is one of the paper's five architectures (the default protocol's SAEs);
* ``bench_rank`` — where it comes in the bench's default lists (lower first, ties in registration order);
* ``bench_options(steps, autotune_gain)`` — its constructor options for a bench run of ``steps`` steps.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from synthsae._validate import as_positive
from synthsae.errors import ConfigError

if TYPE_CHECKING:
    from synthsae.saes.base import SAE

#: Architecture name → class, in registration order (the built-ins first).
ARCHITECTURES: dict[str, type[SAE]] = {}


def register(cls: type[SAE]) -> type[SAE]:
    """Adds ``cls`` under ``cls.architecture`` (done for every subclass of
    :class:`~synthsae.saes.base.SAE` that sets ``architecture``). A name already taken by another class
    is refused with :class:`~synthsae.errors.ConfigError` (a ``ValueError``); the same class defined
    again (its module re-imported) replaces the earlier definition."""
    name = cls.architecture
    if not isinstance(name, str) or not name.strip() or name != name.strip() or "," in name:
        raise ConfigError(f"{cls.__qualname__}.architecture must be a name without commas, got {name!r}")
    earlier = ARCHITECTURES.get(name)
    if earlier is not None and earlier is not cls and not _same_definition(earlier, cls):
        raise ConfigError(
            f"SAE architecture {name!r} is already registered by "
            f"{earlier.__module__}.{earlier.__qualname__}; give {cls.__qualname__} another name"
        )
    ARCHITECTURES[name] = cls
    return cls


def _same_definition(a: type, b: type) -> bool:
    """Whether ``a`` and ``b`` are one class statement run twice (same name, same source file)."""

    def source(cls: type) -> str | None:
        return getattr(sys.modules.get(cls.__module__), "__file__", None)

    return a.__qualname__ == b.__qualname__ and (
        a.__module__ == b.__module__ or (source(a) is not None and source(a) == source(b))
    )


def architecture_class(architecture: str) -> type[SAE]:
    """The class registered as ``architecture``; :class:`~synthsae.errors.ConfigError` (a
    ``ValueError``) listing the names when there is none."""
    if not isinstance(architecture, str) or architecture not in ARCHITECTURES:
        raise ConfigError(f"architecture must be one of {sorted(ARCHITECTURES)}, got {architecture!r}")
    return ARCHITECTURES[architecture]


def bench_order() -> list[str]:
    """Every registered architecture, in the bench's order (``bench_rank``, then registration)."""
    ranked = sorted(enumerate(ARCHITECTURES.items()), key=lambda e: (e[1][1].bench_rank, e[0]))
    return [name for _, (name, _) in ranked]


def paper_saes() -> list[str]:
    """The paper's architectures (``in_paper``), in its sweep's order."""
    return [name for name in bench_order() if ARCHITECTURES[name].in_paper]


def direct_l0_saes() -> list[str]:
    """The architectures whose L0 is set directly (``direct_l0``), in the bench's order."""
    return [name for name in bench_order() if ARCHITECTURES[name].direct_l0]


def create_sae(architecture: str, d_in: int, d_sae: int, *, l0: float, **kwargs: Any) -> SAE:
    """Builds an SAE of ``architecture`` (a key of :data:`ARCHITECTURES`) aimed at L0 ``l0``: its class's
    ``from_l0(d_in, d_sae, l0, **kwargs)``.

    TopK, AbsTopK and MP use ``k = round(l0)``; BatchTopK and Matryoshka use ``k = l0`` (fractional allowed;
    Matryoshka ``widths`` default to :func:`~synthsae.saes.matryoshka.default_matryoshka_widths`);
    JumpReLU uses ``target_l0 = l0``. ReLU has no direct L0 knob — its L0 follows the L1 coefficient
    (``l1_coefficient``, default 2.0 as in the sweep); by default ``target_l0 = l0`` switches on the
    coefficient autotuner (pass ``target_l0=None`` to train with a fixed coefficient); Gated likewise
    through its sparsity coefficient. Other keyword
    arguments go to the constructor.
    """
    cls = architecture_class(architecture)
    return cls.from_l0(d_in, d_sae, as_positive("l0", l0), **kwargs)
