"""World directories in SAELens's layout: ``synthetic_model_config.json``, ``synthetic_model.safetensors``
and ``hierarchy.json``, written atomically and read back with every tensor's shape checked."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from synthsae._files import atomic_write, check_fresh_dir, read_json
from synthsae.errors import FileFormatError
from synthsae.world.config import WorldConfig
from synthsae.world.hierarchy import Hierarchy

if TYPE_CHECKING:
    import torch

    from synthsae.world.model import World

CONFIG_FILE = "synthetic_model_config.json"
WEIGHTS_FILE = "synthetic_model.safetensors"
HIERARCHY_FILE = "hierarchy.json"
T = TypeVar("T")


def save_world(world: World, path: Path, *, overwrite: bool) -> None:
    """Writes ``world`` into directory ``path`` (see ``World.save``)."""
    from safetensors.torch import save_file

    check_fresh_dir(path, overwrite=overwrite, hint="pass overwrite=True to replace the world there")
    path.mkdir(parents=True, exist_ok=True)
    tensors = {
        "feature_vectors": world.feature_vectors,
        "bias": world.bias,
        "firing_probabilities": world.firing_probabilities,
    }
    if world.correlation_factor is not None and world.correlation_diag is not None:
        tensors["correlation_factor"] = world.correlation_factor
        tensors["correlation_diag"] = world.correlation_diag
    atomic_write(path / WEIGHTS_FILE, lambda tmp: save_file(tensors, str(tmp)))
    config = json.dumps(world.config.to_dict(), indent=2)
    atomic_write(path / CONFIG_FILE, lambda tmp: tmp.write_text(config))
    if world.hierarchy is not None:
        hierarchy = json.dumps(world.hierarchy.to_dict())
        atomic_write(path / HIERARCHY_FILE, lambda tmp: tmp.write_text(hierarchy))
    elif (path / HIERARCHY_FILE).exists():
        (path / HIERARCHY_FILE).unlink()


def read_world_files(path: Path) -> tuple[WorldConfig, dict[str, torch.Tensor], Hierarchy | None]:
    """The config, tensors and hierarchy (None if there is no ``hierarchy.json``) of world directory
    ``path``. Raises FileNotFoundError without the config or weights file, FileFormatError (a ValueError)
    for unreadable files and tensors whose shapes disagree with the config or each other."""
    from safetensors.torch import load_file

    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path} is not a world directory: {name} is missing")
    config = _read_json(path / CONFIG_FILE, WorldConfig.from_dict)
    try:
        tensors = load_file(str(path / WEIGHTS_FILE))
    except Exception as e:
        raise FileFormatError(
            f"{path / WEIGHTS_FILE} is not a readable safetensors file: {e}", path / WEIGHTS_FILE
        ) from None
    _check_tensors(path / WEIGHTS_FILE, tensors, config.num_features, config.hidden_dim)
    hierarchy = None
    if (path / HIERARCHY_FILE).is_file():
        hierarchy = _read_json(path / HIERARCHY_FILE, Hierarchy.from_dict)
        try:
            hierarchy.validate(config.num_features)
        except ValueError as e:
            raise FileFormatError(f"{path / HIERARCHY_FILE}: {e}", path / HIERARCHY_FILE) from None
    return config, tensors, hierarchy


def _read_json(file: Path, parse: Callable[[Any], T]) -> T:
    """``parse`` of the JSON in ``file``; any way the file is unreadable or malformed (bad UTF-8 or
    JSON, too deeply nested, wrong structure) is a FileFormatError starting with the file's path."""
    data = read_json(file)
    try:
        return parse(data)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError) as e:
        raise FileFormatError(f"{file}: {type(e).__name__}: {e}", file) from None


def _check_tensors(file: Path, tensors: dict[str, Any], n: int, d: int) -> None:
    expect = {"feature_vectors": (n, d), "bias": (d,), "firing_probabilities": (n,)}
    if ("correlation_factor" in tensors) != ("correlation_diag" in tensors):
        raise FileFormatError(f"{file}: correlation_factor and correlation_diag go together", file)
    if "correlation_factor" in tensors:
        expect["correlation_factor"] = (n, tensors["correlation_factor"].shape[-1])
        expect["correlation_diag"] = (n,)
    for key, shape in expect.items():
        if key not in tensors:
            raise FileFormatError(f"{file}: missing tensor {key!r}", file)
        if tuple(tensors[key].shape) != shape:
            raise FileFormatError(
                f"{file}: {key} has shape {tuple(tensors[key].shape)}, config says {shape}", file
            )
    for key, tensor in tensors.items():
        if key in expect and not tensor.is_floating_point():
            raise FileFormatError(f"{file}: {key} must be a floating-point tensor, got {tensor.dtype}", file)
        if key in expect and not bool(tensor.isfinite().all()):
            raise FileFormatError(f"{file}: {key} has NaN or infinite entries", file)
    p = tensors["firing_probabilities"].float()
    if not bool(((p >= 0) & (p <= 1)).all()):
        raise FileFormatError(f"{file}: firing_probabilities must be in [0, 1]", file)
    if "correlation_factor" in tensors:
        # C = F Fᵀ + diag(d) has a unit diagonal: |F_i|² + d_i = 1, with d_i > 0 (float32 rounding).
        norms = tensors["correlation_factor"].double().square().sum(dim=1)
        diag = tensors["correlation_diag"].double()
        bad = ((norms + diag - 1).abs() > 1e-4) | (diag <= 0)
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise FileFormatError(
                f"{file}: correlation_factor row {i} and correlation_diag[{i}] do not give a unit "
                f"diagonal (|F_i|² = {float(norms[i]):.6g}, d_i = {float(diag[i]):.6g}; "
                "need |F_i|² + d_i = 1 and d_i > 0)",
                file,
            )
