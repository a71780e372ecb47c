"""The exceptions synthsae raises on purpose. Every one is a :class:`SynthSAEError`; each also derives
from the built-in exception that code written before these classes catches (``ValueError`` or
``TypeError``), so ``except ValueError`` keeps working.

The Rust core raises the same class objects (it imports them from this module), so ``except
ConfigError`` catches a value rejected by the core and one rejected in Python alike.

Anything else that escapes synthsae (a ``KeyError``, an ``AssertionError``, a ``ValueError`` raised by
a third-party library) is a bug, not a message meant for users. See ``docs/errors.md``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "ConfigError",
    "ConfigTypeError",
    "FileFormatError",
    "ResourceError",
    "SynthSAEError",
    "UsageError",
]


class SynthSAEError(Exception):
    """Base class of the errors synthsae raises deliberately; its message is written for users."""


class ConfigError(SynthSAEError, ValueError):
    """An argument or configuration value outside its domain (a negative count, an unknown name, a
    probability above 1). The message names the argument; a value read from a file also names the file."""


class ConfigTypeError(SynthSAEError, TypeError):
    """An argument of the wrong type (a string where a number belongs, an integer array where a
    floating-point one belongs). The message names the argument."""


class FileFormatError(SynthSAEError, ValueError):
    """A file that cannot be used: corrupt, truncated, not valid JSON, written by another program, or
    of an incompatible format version. The message starts with or names the file; ``path`` holds it
    (``None`` when the caller did not pass one)."""

    path: Path | None

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else Path(path)

    def __reduce__(self) -> tuple[type[FileFormatError], tuple[str, Path | None]]:
        return type(self), (str(self), self.path)


class ResourceError(SynthSAEError, ValueError):
    """A request that is valid but that this machine cannot serve: it would need more memory than the
    machine has, or the system refused an allocation or threads. It is refused before the work starts,
    and the message names the argument that sized the request (the number of rows, of features).

    It is a ``ValueError``, not a ``MemoryError``: the request is refused before anything is allocated,
    the interpreter is not short of memory, and the fix is a smaller argument."""


class UsageError(SynthSAEError):
    """A command-line invocation that cannot run as given: flags that conflict, an output path that
    exists without ``--overwrite``. The ``synthsae`` command exits with status 2."""
