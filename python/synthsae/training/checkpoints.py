"""Training checkpoints without pickle: one safetensors file holding the tensors (SAE, Adam's state,
dead-latent counters, orthogonality pairs), with the settings, history and optimizer hyperparameters as
JSON in its header. Loading one runs no code, whoever wrote it; anything malformed is a ``ValueError``
naming the file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthsae._files import atomic_write
from synthsae.errors import FileFormatError

if TYPE_CHECKING:
    import torch

#: The checkpoint's file name inside ``checkpoint_dir``.
CHECKPOINT_FILE = "checkpoint.safetensors"
#: The pickled checkpoints of earlier versions: refused, never loaded.
PICKLED_FILE = "checkpoint.pt"
_FORMAT = "synthsae-checkpoint/1"
_KEY = "synthsae"


@dataclass
class Checkpoint:
    """What a checkpoint holds: ``settings`` (everything that changes the result), the SAE's
    ``state_dict``, the optimizer's ``state_dict``, ``since_fired`` ``[d_sae]``, the history as a dict
    and the orthogonality ``pairs`` (``(latents, neighbours, weights)`` or None)."""

    settings: dict[str, Any]
    sae: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    since_fired: torch.Tensor
    history: dict[str, Any]
    pairs: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None


def _json_safe(value: Any) -> Any:
    """``value`` with tuples as lists and keys as strings, as JSON gives it back."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def save(path: Path, checkpoint: Checkpoint) -> None:
    """Writes ``checkpoint`` to ``path`` atomically."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for name, t in checkpoint.sae.items():
        tensors[f"sae/{name}"] = t
    optimizer_state: dict[str, dict[str, Any]] = {}
    for index, state in checkpoint.optimizer["state"].items():
        plain = {}
        for key, value in state.items():
            if hasattr(value, "detach"):
                tensors[f"optimizer/{index}/{key}"] = value
            else:
                plain[key] = value
        optimizer_state[str(index)] = plain
    tensors["since_fired"] = checkpoint.since_fired
    if checkpoint.pairs is not None:
        for name, t in zip(("latents", "neighbours", "weights"), checkpoint.pairs, strict=True):
            tensors[f"pairs/{name}"] = t
    header = {
        "format": _FORMAT,
        "settings": checkpoint.settings,
        "history": checkpoint.history,
        "optimizer": {"param_groups": checkpoint.optimizer["param_groups"], "state": optimizer_state},
    }
    text = json.dumps(_json_safe(header))  # NaN metrics stay NaN (Python's JSON reads them back)
    cpu = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    atomic_write(path, lambda tmp: save_file(cpu, str(tmp), metadata={_KEY: text}))


def load(path: Path, device: Any) -> Checkpoint:
    """Reads the checkpoint at ``path`` (tensors onto ``device``). ``FileFormatError`` (a ``ValueError``)
    naming the file when it is not a readable synthsae checkpoint."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
        header = json.loads(metadata[_KEY])
    except KeyError:
        raise FileFormatError(f"{path}: not a synthsae checkpoint (no {_KEY!r} header)", path) from None
    except Exception as e:  # truncated or corrupt file, bad header JSON
        raise FileFormatError(f"{path}: unreadable checkpoint: {type(e).__name__}: {e}", path) from None

    def need(container: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
        value = container.get(key) if isinstance(container, dict) else None
        if not isinstance(value, kind):
            raise FileFormatError(
                f"{path}: corrupt checkpoint: {where}{key!r} is missing or of the wrong type", path
            )
        return value

    if need(header, "format", str, "") != _FORMAT:
        raise FileFormatError(
            f"{path}: checkpoint format {header['format']!r}, this synthsae reads {_FORMAT!r}", path
        )
    settings = need(header, "settings", dict, "")
    history = need(header, "history", dict, "")
    optimizer = need(header, "optimizer", dict, "")
    groups = need(optimizer, "param_groups", list, "optimizer ")
    plain_state = need(optimizer, "state", dict, "optimizer ")
    for group in groups:
        if not isinstance(group, dict) or not isinstance(group.get("params"), list):
            raise FileFormatError(f"{path}: corrupt checkpoint: optimizer param_groups", path)
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
    state: dict[int, dict[str, Any]] = {}
    for index, plain in plain_state.items():
        if not index.isdigit() or not isinstance(plain, dict):
            raise FileFormatError(f"{path}: corrupt checkpoint: optimizer state {index!r}", path)
        state[int(index)] = dict(plain)
    sae: dict[str, torch.Tensor] = {}
    pairs: dict[str, torch.Tensor] = {}
    since_fired = None
    for name, t in tensors.items():
        kind, _, rest = name.partition("/")
        if kind == "sae":
            sae[rest] = t
        elif kind == "optimizer" and rest.partition("/")[0].isdigit():
            index, _, key = rest.partition("/")
            state.setdefault(int(index), {})[key] = t
        elif kind == "pairs" and rest in ("latents", "neighbours", "weights"):
            pairs[rest] = t
        elif name == "since_fired":
            since_fired = t
        else:
            raise FileFormatError(f"{path}: corrupt checkpoint: unexpected tensor {name!r}", path)
    if since_fired is None:
        raise FileFormatError(f"{path}: corrupt checkpoint: no since_fired tensor", path)
    if pairs and len(pairs) != 3:
        raise FileFormatError(f"{path}: corrupt checkpoint: incomplete orthogonality pairs", path)
    return Checkpoint(
        settings=settings,
        sae=sae,
        optimizer={"state": state, "param_groups": groups},
        since_fired=since_fired,
        history=history,
        pairs=(pairs["latents"], pairs["neighbours"], pairs["weights"]) if pairs else None,
    )


def differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The settings that differ between a checkpoint's and this call's, as ``"name saved -> now"``."""
    current = json.loads(json.dumps(_json_safe(current)))  # compare in the form it was saved
    out = []
    for key in sorted(set(saved) | set(current)):
        if saved.get(key) != current.get(key):
            out.append(f"{key} {_short(saved.get(key))} -> {_short(current.get(key))}")
    return out


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."
