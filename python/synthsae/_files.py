"""Atomic file writes: every file the package writes goes to a temporary name and is renamed into place."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synthsae.errors import FileFormatError

# The process umask, read once at import (os.umask can only be read by setting it).
_UMASK = os.umask(0o022)
os.umask(_UMASK)
HOST = socket.gethostname()


def atomic_write(target: Path, write: Callable[[Path], Any]) -> None:
    """Calls ``write(tmp)`` on a temporary path beside ``target``, then renames it to ``target``; on failure
    the temporary file is removed and ``target`` is untouched. The file gets the permissions a new file
    gets under the umask (safetensors writes 0600)."""
    # Unique per host, process and thread: writers may share a filesystem across machines.
    tmp = target.with_name(f".{target.name}.tmp-{HOST}-{os.getpid()}-{threading.get_ident()}")
    try:
        tmp.unlink(missing_ok=True)  # anything left there, a link included, is removed, never written through
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(target: Path, data: Any) -> None:
    """Writes ``data`` as indented JSON, atomically."""
    atomic_write(target, lambda tmp: tmp.write_text(json.dumps(data, indent=1)))


def read_json(file: Path) -> Any:
    """The JSON in ``file``; bad UTF-8, bad JSON or nesting too deep for Python is a
    :class:`~synthsae.errors.FileFormatError` starting with the file's path."""
    try:
        return json.loads(Path(file).read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise FileFormatError(f"{file}: {type(e).__name__}: {e}", file) from None


def check_fresh_dir(
    path: Path, *, overwrite: bool, hint: str = "pass overwrite=True to replace its contents"
) -> None:
    """The one rule for output directories: ``path`` may be missing or an empty directory; a non-empty one
    only with ``overwrite``. Raises ``FileExistsError`` (naming ``path``, ending with ``hint``) otherwise,
    and for a ``path`` that exists and is not a directory."""
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(f"{path} exists and is not empty; {hint}")
