"""The ``synthsae`` command line: ``bench`` (the main job), ``report``, ``world``, ``sample``, ``generate``,
``verify``, ``eval``, ``demo``. Exit codes: 0 done, 2 a usage error, 1 a failed run."""

from __future__ import annotations

import sys

from synthsae.cli.commands import UsageError
from synthsae.cli.parser import build_parser

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (UsageError, ValueError, TypeError, FileNotFoundError, FileExistsError) as e:
        parser.exit(2, f"synthsae {args.command}: error: {e}\n")
    except (OSError, RuntimeError) as e:  # the run itself failed: disk full, permissions, lost workers
        parser.exit(1, f"synthsae {args.command}: failed: {e}\n")


if __name__ == "__main__":
    sys.exit(main())
