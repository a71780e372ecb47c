"""Parsers for command-line values: numbers checked with the library's own checks, lists of L0s,
seeds and SAE names. A bad value exits 2 with the check's message."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from synthsae._validate import U64_MAX, as_float, as_int, as_nonnegative, as_positive


def number_arg(parse: Callable[[str], Any], check: Callable[..., Any], **bounds: Any) -> Callable[[str], Any]:
    """An argparse type: ``parse`` the text (``_`` allowed as a digit separator), then ``check`` it with
    a :mod:`synthsae._validate` check and ``bounds``; a bad value exits 2 with the check's message."""

    def convert(text: str) -> Any:
        try:
            value = parse(text.replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        try:
            return check("value", value, **bounds)
        except (TypeError, ValueError) as e:
            raise argparse.ArgumentTypeError(str(e).removeprefix("value ")) from None

    return convert


positive_int = number_arg(int, as_int, minimum=1)


nonnegative_int = number_arg(int, as_int, minimum=0)


seed = number_arg(int, as_int, minimum=0, maximum=U64_MAX)


positive_float = number_arg(float, as_positive)


nonnegative_float = number_arg(float, as_nonnegative)


ortho_power = number_arg(float, as_float, minimum=1.0)


def l0_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"L0 values must be positive, got {text!r}")
    try:
        return [as_positive("L0", v) for v in values]
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def seed_list(text: str) -> list[int]:
    seeds = [seed(v.strip()) for v in text.split(",") if v.strip()]
    if not seeds:
        raise argparse.ArgumentTypeError(f"expected comma-separated seeds, got {text!r}")
    return seeds


def sae_list(text: str) -> list[str]:
    """``--saes``: comma-separated architecture names (checked by :func:`checking_saes` once every
    ``--sae-module`` is imported, wherever it stands on the command line)."""
    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated architectures, got {text!r}")
    return names


def sae_module(text: str) -> str:
    """``--sae-module``: imports a module (a name or a ``.py`` path) while the command line is parsed, so
    that the SAE architectures it defines register themselves; a module that cannot be imported or
    defines none exits 2."""
    from synthsae.saes.external import import_sae_module

    try:
        import_sae_module(text)
    except (TypeError, ValueError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def checking_saes(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``run`` after checking that ``--saes`` names only registered architectures (built-in, or defined
    in an ``--sae-module``): a usage error before any work when it does not."""

    def run_checked(args: argparse.Namespace) -> int:
        from synthsae.errors import UsageError
        from synthsae.saes.registry import ARCHITECTURES, bench_order

        bad = [n for n in args.saes or [] if n not in ARCHITECTURES]
        if bad:
            raise UsageError(
                f"--saes: unknown SAE(s) {bad}; choose from {','.join(bench_order())} "
                "(or define your own in a module and pass --sae-module)"
            )
        return run(args)

    return run_checked
