"""SAE directories written by SAELens, told apart from synthsae's own, and loading either kind.

A synthsae directory (:meth:`synthsae.saes.SAE.save`) holds a ``cfg.json`` with exactly its SAE's
constructor arguments plus ``"architecture"``. SAELens's ``cfg.json`` (``SAE.save_model``,
``TrainingSAE.save_inference_model``, SAELens 5 and 6) also holds fields of SAELens's base config —
``dtype``, ``device``, ``apply_b_dec_to_input``, ``metadata``, ... (:data:`SAELENS_KEYS`) — that no
synthsae constructor takes. Its ``"architecture"`` may be a name synthsae uses too (``"topk"``,
``"jumprelu"``, which is also what a BatchTopK SAE saved for inference says), so the directory's format,
not its architecture, decides which loader reads it: SAELens's own (``sae_lens.SAE.load_from_disk``,
which needs sae-lens) or :func:`synthsae.saes.load_sae`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from synthsae._files import read_json
from synthsae.errors import ConfigError, FileFormatError
from synthsae.saes.base import CONFIG_FILE, WEIGHTS_FILE, load_sae

#: ``cfg.json`` fields SAELens writes and no synthsae SAE takes: its ``SAEConfig`` fields (SAELens 6) and
#: the model, hook and version fields of SAELens 5's configs.
SAELENS_KEYS = frozenset(
    {
        "dtype",
        "device",
        "apply_b_dec_to_input",
        "normalize_activations",
        "reshape_activations",
        "metadata",
        "model_name",
        "hook_name",
        "hook_point",
        "hook_layer",
        "activation_fn_str",
        "sae_lens_version",
        "sae_lens_training_version",
    }
)


def is_saelens_config(config: Mapping[str, Any]) -> bool:
    """Whether ``config`` (a ``cfg.json``'s contents) is SAELens's rather than synthsae's: whether it holds
    a field of :data:`SAELENS_KEYS`, whatever its ``"architecture"``."""
    return not SAELENS_KEYS.isdisjoint(config)


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON object in directory ``path``'s ``cfg.json``; ``FileNotFoundError`` naming ``path`` when it
    has none, ``FileFormatError`` (a ``ValueError``) naming the file when it is not a JSON object."""
    cfg_file = Path(path) / CONFIG_FILE
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{path}: no {CONFIG_FILE} there (not an SAE directory)")
    config = read_json(cfg_file)
    if not isinstance(config, dict):
        raise FileFormatError(f"{cfg_file}: must hold a JSON object, got {type(config).__name__}", cfg_file)
    return config


def load_any_sae(path: str | os.PathLike[str], device: torch.device | str | None = None) -> Any:
    """The SAE saved in directory ``path``, by synthsae or by SAELens (see the module docstring), on
    ``device`` (default CPU). Errors name the file at fault: ``FileNotFoundError`` for a missing
    ``cfg.json`` or weights file, ``FileFormatError`` for a config or weights file that cannot be loaded,
    ``ConfigError`` for a SAELens directory where sae-lens is not installed (both are ``ValueError``)."""
    path = Path(path)
    config = read_config(path)
    if is_saelens_config(config):
        return load_saelens(path, device, config=config)
    try:
        return load_sae(path, device=device)
    except ValueError as e:  # the constructor's own checks say which setting, not which file
        message = str(e)
        file = e.path if isinstance(e, FileFormatError) and e.path is not None else path / CONFIG_FILE
        raise FileFormatError(
            message if message.startswith(str(path)) else f"{path / CONFIG_FILE}: {message}", file
        ) from None


def load_saelens(
    path: str | os.PathLike[str],
    device: torch.device | str | None = None,
    *,
    config: Mapping[str, Any] | None = None,
) -> Any:
    """A SAELens SAE directory loaded by SAELens (``sae_lens.SAE.load_from_disk``; for an architecture
    SAELens only trains, such as ``"batchtopk"`` saved with ``save_model``, ``TrainingSAE.load_from_disk``)
    on ``device`` (default CPU). ``config`` is its ``cfg.json`` if already read. ``ConfigError`` when
    sae-lens is not installed; ``FileFormatError`` naming the weights file when it is unreadable
    (truncated, corrupt) or does not fit the config, and naming the config when SAELens rejects it."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        import sae_lens
        from sae_lens.registry import SAE_CLASS_REGISTRY, SAE_TRAINING_CLASS_REGISTRY
    except ImportError:
        raise ConfigError(
            f"{path}: a SAELens SAE directory; loading it needs sae-lens (pip install sae-lens)"
        ) from None
    cfg_file, weights = path / CONFIG_FILE, path / WEIGHTS_FILE
    if config is None:
        config = read_config(path)
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: no such file (a SAELens SAE directory needs its weights)")
    try:  # reads the header and checks that the file holds all the data it lists
        with safe_open(str(weights), framework="pt") as f:
            f.keys()
    except (SafetensorError, OSError) as e:
        raise FileFormatError(f"{weights}: unreadable ({type(e).__name__}: {e})", weights) from None
    architecture = config.get("architecture")
    loader = sae_lens.SAE
    if architecture not in SAE_CLASS_REGISTRY and architecture in SAE_TRAINING_CLASS_REGISTRY:
        loader = sae_lens.TrainingSAE
    where = "cpu" if device is None else str(device)
    try:
        return loader.load_from_disk(str(path), device=where)
    except SafetensorError as e:
        raise FileFormatError(f"{weights}: unreadable ({type(e).__name__}: {e})", weights) from None
    except RuntimeError as e:
        if "state_dict" not in str(e):  # not a weights/config mismatch: the device, memory, ...
            raise
        raise FileFormatError(f"{weights}: does not fit {cfg_file}: {e}", weights) from None
    except (KeyError, TypeError, ValueError) as e:  # SAELens's own complaints about the config
        version = getattr(sae_lens, "__version__", "?")
        raise FileFormatError(
            f"{cfg_file}: SAELens {version} cannot load it: {type(e).__name__}: {e}", cfg_file
        ) from None
