"""Worlds from the Hugging Face Hub: SAELens's ``SyntheticModel.from_pretrained`` layout, read with
``huggingface_hub`` (its cache, ``HF_HUB_OFFLINE``, ``HF_TOKEN`` and ``HF_HOME`` apply) and loaded as a
:class:`~synthsae.World` like any world directory (every tensor's shape checked, no code run).

A source is ``"owner/name"`` or ``"owner/name:path/in/repo"`` (SAELens's ``load_from_source`` syntax).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from synthsae.errors import ConfigError, ConfigTypeError, FileFormatError
from synthsae.world.io import CONFIG_FILE, HIERARCHY_FILE, WEIGHTS_FILE

#: Hub worlds whose config is a preset's: the bench uses that preset's protocol and compares with the
#: paper where the preset does. The Hub's dictionary was built on a GPU, so its bits differ from a
#: local build of the preset in rounding (the fingerprints differ).
HUB_PRESETS = {"decoderesearch/synth-sae-bench-16k-v2": "synthsaebench-16k"}

_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def is_hub_source(text: str) -> bool:
    """Whether ``text`` reads as a Hub source (``owner/name`` or ``owner/name:path``) rather than a
    local path: SAELens's rule (a local path starts with ``/``, ``./``, ``../`` or ``~``, or holds a
    backslash) plus the repository name's pattern."""
    if text.startswith(("/", "./", "../", "~")) or "\\" in text:
        return False
    return bool(_REPO.match(text.partition(":")[0]))


def split_source(source: str) -> tuple[str, str | None]:
    """``(repo_id, path in the repository or None)``; ``ValueError`` for a malformed source or a path
    that leaves the repository."""
    if not isinstance(source, str):
        raise ConfigTypeError(f"source must be a string 'owner/name[:path]', got {type(source).__name__}")
    repo_id, _, path = source.partition(":")
    if not _REPO.match(repo_id):
        raise ConfigError(f"source {source!r}: expected 'owner/name' or 'owner/name:path/in/repo'")
    if not path:
        return repo_id, None
    parts = PurePosixPath(path).parts
    if path.startswith("/") or "\\" in path or any(p in ("..", ".") for p in parts):
        raise ConfigError(f"source {source!r}: the path in the repository must be relative, without '..'")
    return repo_id, "/".join(parts)


def download(
    source: str,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    force_download: bool = False,
) -> Path:
    """The local folder of the world saved at Hub ``source`` (``owner/name[:path]``): downloads (or
    finds in the cache) ``synthetic_model_config.json``, ``synthetic_model.safetensors`` and, if the
    repository has it, ``hierarchy.json`` (:meth:`World.from_pretrained` then loads the folder).
    ``revision`` is a branch, tag or commit (default the main branch)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    repo_id, subfolder = split_source(source)

    def fetch(name: str) -> Path:
        return Path(
            hf_hub_download(
                repo_id,
                name,
                subfolder=subfolder,
                revision=revision,
                cache_dir=cache_dir,
                force_download=force_download,
            )
        )

    try:
        config = fetch(CONFIG_FILE)
        weights = fetch(WEIGHTS_FILE)
    except (EntryNotFoundError, LocalEntryNotFoundError) as e:
        raise ConfigError(f"{source}: no world there ({type(e).__name__}: {e})") from None
    if weights.parent != config.parent:
        raise FileFormatError(f"{source}: the Hub cache put the world's files in different folders", config)
    try:
        fetch(HIERARCHY_FILE)
    except (EntryNotFoundError, LocalEntryNotFoundError):
        pass  # a world without a hierarchy (or, offline, one whose hierarchy was never downloaded)
    return config.parent
