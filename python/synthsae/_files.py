"""Atomic file writes: every file the package writes goes to a temporary name and is renamed into place."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(target: Path, write: Callable[[Path], Any]) -> None:
    """Calls ``write(tmp)`` on a temporary path beside ``target``, then renames it to ``target``; on failure
    the temporary file is removed and ``target`` is untouched."""
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(target: Path, data: Any) -> None:
    """Writes ``data`` as indented JSON, atomically."""
    atomic_write(target, lambda tmp: tmp.write_text(json.dumps(data, indent=1)))
