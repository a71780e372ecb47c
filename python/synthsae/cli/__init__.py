"""The ``synthsae`` command line: ``bench`` (the main job), ``report``, ``world``, ``sample``, ``generate``,
``verify``, ``eval``, ``demo``.

Exit codes (see ``docs/errors.md``): 0 done; 2 a usage error, refused before any work (a bad flag or
value, a size this machine cannot hold, a missing input, an output that exists); 1 a failed run (an
unusable input file, a system error, training that diverged, lost workers); 3 an internal error (a
bug: the traceback is shown)."""

from __future__ import annotations

import sys
import traceback
from typing import NoReturn

from synthsae.cli.parser import build_parser
from synthsae.errors import (
    ConfigError,
    ConfigTypeError,
    FileFormatError,
    ResourceError,
    SynthSAEError,
    UsageError,
)

__all__ = ["EXIT_FAILED", "EXIT_INTERNAL", "EXIT_USAGE", "build_parser", "main"]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


# Usage errors: the command cannot run as given, and nothing was done. A missing input, an existing
# output, and a size this machine cannot hold (refused before anything is allocated: the fix is a
# smaller argument) are usage errors too.
_USAGE = (UsageError, ConfigError, ConfigTypeError, ResourceError, FileNotFoundError, FileExistsError)
# A failed run: the command was fine, but an input file, the system or the run itself was not.
_FAILED = (FileFormatError, OSError, RuntimeError)
# Bugs even though they are RuntimeErrors.
_BUGS = (NotImplementedError, RecursionError)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # a bad flag exits 2 here
    prefix = f"synthsae {args.command}"
    try:
        return args.run(args)
    except _USAGE as e:
        parser.exit(EXIT_USAGE, f"{prefix}: error: {e}\n")
    except _BUGS:
        _internal_error(prefix)
    except _FAILED as e:  # a corrupt file, disk full, permissions, lost workers, divergence
        parser.exit(EXIT_FAILED, f"{prefix}: failed: {e}\n")
    except SynthSAEError as e:
        parser.exit(EXIT_FAILED, f"{prefix}: failed: {e}\n")
    except Exception:
        _internal_error(prefix)
    except BaseException as e:  # a panic in the Rust core is a BaseException
        if type(e).__name__ == "PanicException":
            _internal_error(prefix)
        raise


def _internal_error(prefix: str) -> NoReturn:
    """Prints the traceback of the exception being handled and one line asking to report it; exits 3."""
    traceback.print_exc()
    sys.stderr.flush()
    sys.stderr.write(f"{prefix}: internal error; please report it with the traceback above\n")
    sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    sys.exit(main())
