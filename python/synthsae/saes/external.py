"""Users' own SAEs: modules of :class:`~synthsae.saes.base.SAE` subclasses (registered architectures,
:func:`import_sae_module`), factories named ``module:callable``, the checks a trainable module must pass,
and what the trainer calls on modules that are not :class:`~synthsae.saes.base.SAE` subclasses.

A factory is called as ``factory(d_in, d_sae, l0, seed)`` and returns a ``torch.nn.Module`` with
``encode(x) -> z [b, d_sae]``, ``decode(z) -> x̂ [b, d_in]``, ``W_dec [d_sae, d_in]`` and either
``training_forward(x, dead_mask=...) -> TrainOutput`` (synthsae's protocol, with an optional
``after_step(out)``) or ``loss(x) -> scalar tensor``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from synthsae.errors import ConfigError, ConfigTypeError
from synthsae.saes.base import TrainOutput, round_l0

#: A user's SAE factory: ``(d_in, d_sae, l0, seed) -> module``.
Factory = Callable[[int, int, float, int], Any]


def load_factory(spec: str) -> tuple[str, Factory]:
    """``"module:callable"``, ``"path/to/file.py:callable"``, either prefixed by ``"name="`` →
    ``(name, factory)``; the name defaults to the callable's. Raises ``ValueError`` naming ``spec`` when
    it cannot be imported or is not callable."""
    if not isinstance(spec, str):
        raise ConfigTypeError(f"spec must be a str, got {type(spec).__name__}")
    name, _, target = spec.rpartition("=")
    module_name, colon, attr = target.rpartition(":")
    if not colon or not module_name or not attr:
        raise ConfigError(f"spec must be 'module:callable' or 'name=module:callable', got {spec!r}")
    try:
        module = _import(module_name)
    except (ImportError, OSError) as e:
        raise ConfigError(f"spec {spec!r}: cannot import {module_name!r} ({e})") from None
    factory: Any = module
    for part in attr.split("."):
        factory = getattr(factory, part, None)
    if not callable(factory):
        raise ConfigError(f"spec {spec!r}: {module_name!r} has no callable {attr!r}")
    return name or attr.split(".")[-1], factory


def import_sae_module(spec: str) -> list[str]:
    """Imports ``spec`` (a module name, or a path to a ``.py`` file) and returns the names of the SAE
    architectures it defines: the :class:`~synthsae.saes.base.SAE` subclasses that set ``architecture``
    register themselves as the module runs. ``ValueError`` naming ``spec`` when it cannot be imported
    or defines no architecture."""
    from synthsae.saes.registry import ARCHITECTURES

    if not isinstance(spec, str):
        raise ConfigTypeError(f"spec must be a str, got {type(spec).__name__}")
    try:
        module = _import(spec)
    except (ImportError, OSError) as e:
        raise ConfigError(f"cannot import {spec!r} ({e})") from None
    names = [name for name, cls in ARCHITECTURES.items() if cls.__module__ == module.__name__]
    if not names:
        raise ConfigError(
            f"{spec!r} defines no SAE architecture (a subclass of synthsae.saes.SAE that sets architecture)"
        )
    return names


def _import(module_name: str) -> Any:
    """A module by name, or a ``.py`` file by path (loaded under its stem)."""
    if not module_name.endswith(".py"):
        return importlib.import_module(module_name)
    path = Path(module_name)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None or not path.is_file():
        raise ImportError(f"no Python file at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # so its classes pickle and dataclasses resolve
    spec.loader.exec_module(module)
    return module


def build(name: str, factory: Factory, d_in: int, d_sae: int, l0: float, seed: int) -> torch.nn.Module:
    """``factory(d_in, d_sae, l0, seed)``, checked by :func:`check_trainable`."""
    sae = factory(d_in, d_sae, l0, seed)
    check_trainable(sae, name)
    if tuple(sae.W_dec.shape) != (d_sae, d_in):
        raise ConfigError(f"SAE {name!r}: W_dec must be [{d_sae}, {d_in}], got {list(sae.W_dec.shape)}")
    return sae


def check_trainable(sae: Any, name: str) -> None:
    """``TypeError`` naming ``name`` and everything ``sae`` lacks to be trained and scored."""
    if not isinstance(sae, torch.nn.Module):
        raise ConfigTypeError(f"SAE {name!r} must be a torch.nn.Module, got {type(sae).__name__}")
    missing = [a for a in ("encode", "decode", "W_dec") if not hasattr(sae, a)]
    if not hasattr(sae, "training_forward") and not callable(getattr(sae, "loss", None)):
        missing.append("training_forward(x, dead_mask=...) or loss(x)")
    if missing:
        raise ConfigTypeError(f"SAE {name!r} lacks {', '.join(missing)}")


def training_forward(sae: Any, x: torch.Tensor, dead_mask: torch.Tensor) -> TrainOutput:
    """One training forward: the module's own ``training_forward``, else its ``loss(x)`` with the
    latents and reconstruction from ``encode``/``decode`` (without gradients) for the trainer's logs."""
    if hasattr(sae, "training_forward"):
        return sae.training_forward(x, dead_mask=dead_mask)
    loss = sae.loss(x)
    with torch.no_grad():
        z = sae.encode(x)
        x_hat = sae.decode(z)
    return TrainOutput(loss=loss, losses={}, latents=z, reconstruction=x_hat)


def config(sae: Any) -> dict[str, Any]:
    """What identifies the module's setup in a checkpoint: its ``config()``, else its class and parameter
    shapes."""
    if hasattr(sae, "config"):
        return sae.config()
    cls = type(sae)
    shapes = {k: list(v.shape) for k, v in sae.state_dict().items()}
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "shapes": shapes}


class SAELensTrainer(torch.nn.Module):
    """A SAELens training SAE (``sae_lens.TrainingSAE``) driven by synthsae's trainer: each step calls
    its ``training_forward_pass`` with its coefficients at their full values (warm-ups are SAELens
    trainer settings and are not applied) and the trainer's dead-latent mask."""

    def __init__(self, sae: Any) -> None:
        super().__init__()
        self.sae = sae
        self.steps = 0

    @property
    def W_dec(self) -> torch.Tensor:
        return self.sae.W_dec

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.sae.encode(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.sae.decode(z)

    def training_forward(self, x: torch.Tensor, *, dead_mask: torch.Tensor | None = None) -> TrainOutput:
        from sae_lens.saes.sae import TrainStepInput

        coefficients = {k: float(getattr(v, "value", v)) for k, v in self.sae.get_coefficients().items()}
        step = TrainStepInput(
            sae_in=x,
            coefficients=coefficients,
            dead_neuron_mask=dead_mask,
            n_training_steps=self.steps,
            is_logging_step=False,
        )
        out = self.sae.training_forward_pass(step)
        self.steps += 1
        return TrainOutput(
            loss=out.loss,
            losses={k: v.detach() for k, v in out.losses.items()},
            latents=out.feature_acts.detach(),
            reconstruction=out.sae_out.detach(),
        )


def saelens_factory(class_name: str) -> Factory:
    """A factory building ``sae_lens.<class_name>``, initialised under ``torch.manual_seed(seed)`` and
    wrapped in :class:`SAELensTrainer`, for the training SAEs whose L0 it can set:

    * a training SAE whose config takes ``k`` (``BatchTopKTrainingSAE``, ``TopKTrainingSAE``, ...):
      ``k = l0`` (an integer when ``l0`` is whole); ``AbsTopKTrainingSAE`` (per-row, whole ``k``):
      ``k = round(l0)``, as :class:`~synthsae.saes.abstopk.AbsTopKSAE`;
    * ``GatedTrainingSAE``: its L0 follows its L1 coefficient, which
      :class:`~synthsae.saes.gated.GatedSAE` steers to the target with an L0 autotuner that SAELens's
      class lacks, so it trains with SAELens's default ``l1_coefficient`` (1.0) fixed, whatever ``l0``
      (the run's L0 is whatever that coefficient gives).

    ``ValueError`` naming ``class_name`` when sae-lens is missing or the class is neither."""
    import inspect

    try:
        import sae_lens
    except ImportError:
        raise ConfigError(f"--saelens {class_name}: needs sae-lens (pip install sae-lens)") from None
    cls = getattr(sae_lens, class_name, None)
    config_cls = getattr(sae_lens, f"{class_name}Config", None)
    if cls is None or config_cls is None or not class_name.endswith("TrainingSAE"):
        raise ConfigError(f"--saelens {class_name}: not a sae_lens training SAE with a {class_name}Config")

    def derives(base_name: str) -> bool:  # (a class that this sae-lens version lacks derives nothing)
        base = getattr(sae_lens, base_name, None)
        return isinstance(cls, type) and isinstance(base, type) and issubclass(cls, base)

    gated, per_row = derives("GatedTrainingSAE"), derives("AbsTopKTrainingSAE")
    if not gated and "k" not in inspect.signature(config_cls).parameters:
        raise ConfigError(
            f"--saelens {class_name}: its config has no k "
            "(only TopK-style SAEs and GatedTrainingSAE are supported)"
        )

    def make(d_in: int, d_sae: int, l0: float, seed: int) -> SAELensTrainer:
        settings: dict[str, Any] = {}
        if per_row:
            settings["k"] = round_l0(class_name, l0)
        elif not gated:
            settings["k"] = int(l0) if float(l0).is_integer() else l0
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return SAELensTrainer(cls(config_cls(d_in=d_in, d_sae=d_sae, **settings)))

    make.__name__ = class_name
    return make
