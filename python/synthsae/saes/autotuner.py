"""The L0 autotuner: a controller that drives a sparsity coefficient until the batch L0 hits a target."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from synthsae._validate import as_fraction, as_int, as_nonnegative, as_positive
from synthsae.errors import ConfigError


class L0Autotuner(nn.Module):
    """Adapts a sparsity-coefficient multiplier so that the batch L0 reaches ``target_l0``.

    The rate-damped multiplicative integral controller of the SynthSAEBench sweep
    (``saes/components/coefficient_autotuner.py``): per step, ``s ← α·s + (1-α)·L0`` (EMA, first value
    taken as is), ``ṡ ← β·ṡ + (1-β)·Δs``; from ``start_step`` on, with ``e = s - target``,
    ``a = gain · g · tanh(|e| / target · gain_scale)`` where ``g = convergence_gain`` if the error is
    shrinking (``e·ṡ < 0``) else 1, and ``multiplier ← multiplier · (1 ± a)`` (``+`` when L0 is too
    high), clamped to ``[min_multiplier, max_multiplier]``. State lives in float64 buffers (saved).
    """

    multiplier: torch.Tensor
    smoothed_l0: torch.Tensor
    l0_rate: torch.Tensor
    initialized: torch.Tensor

    def __init__(
        self,
        target_l0: float,
        *,
        start_step: int = 0,
        gain: float = 3e-4,
        smoothing: float = 0.99,
        rate_smoothing: float = 0.95,
        gain_scale: float = 10.0,
        convergence_gain: float = 0.01,
        min_multiplier: float = 0.01,
        max_multiplier: float = 100.0,
    ) -> None:
        super().__init__()
        self.target_l0 = as_positive("target_l0", target_l0)
        self.start_step = as_int("autotune_start_step", start_step)
        self.gain = as_nonnegative("autotune_gain", gain)
        self.smoothing = as_fraction("autotune_smoothing", smoothing, allow_zero=True)
        self.rate_smoothing = as_fraction("rate_smoothing", rate_smoothing, allow_zero=True)
        self.gain_scale = as_positive("gain_scale", gain_scale)
        self.convergence_gain = as_nonnegative("convergence_gain", convergence_gain)
        self.min_multiplier = as_positive("min_multiplier", min_multiplier)
        self.max_multiplier = as_positive("max_multiplier", max_multiplier)
        if self.min_multiplier > self.max_multiplier:
            raise ConfigError("min_multiplier must be <= max_multiplier")
        f64 = torch.float64
        self.register_buffer("multiplier", torch.tensor(1.0, dtype=f64))
        self.register_buffer("smoothed_l0", torch.tensor(0.0, dtype=f64))
        self.register_buffer("l0_rate", torch.tensor(0.0, dtype=f64))
        self.register_buffer("initialized", torch.tensor(False))

    @property
    def value(self) -> float:
        """The current multiplier."""
        return float(self.multiplier)

    @torch.no_grad()
    def update(self, batch_l0: float, step: int) -> float:
        """Feeds one batch L0 observed at training step ``step`` (0-based); returns the new multiplier."""
        batch_l0 = float(batch_l0)
        if not bool(self.initialized):
            self.smoothed_l0.fill_(batch_l0)
            self.l0_rate.zero_()
            self.initialized.fill_(True)
        else:
            previous = float(self.smoothed_l0)
            smoothed = self.smoothing * previous + (1 - self.smoothing) * batch_l0
            self.smoothed_l0.fill_(smoothed)
            beta = self.rate_smoothing
            self.l0_rate.fill_(beta * float(self.l0_rate) + (1 - beta) * (smoothed - previous))
        if step < self.start_step:
            return self.value
        error = float(self.smoothed_l0) - self.target_l0
        if error == 0:
            return self.value
        gain = self.convergence_gain if error * float(self.l0_rate) < 0 else 1.0
        adjustment = self.gain * gain * math.tanh(abs(error) / self.target_l0 * self.gain_scale)
        new = self.value * (1 + adjustment if error > 0 else 1 - adjustment)
        self.multiplier.fill_(min(self.max_multiplier, max(self.min_multiplier, new)))
        return self.value


@dataclass(frozen=True)
class AutotuneSettings:
    """The autotuner options an SAE takes as ``autotune_*`` constructor arguments (checked on creation),
    kept whether or not the SAE has a target L0, so that its config round-trips."""

    start_step: int = 0
    gain: float = 3e-4
    smoothing: float = 0.99

    def __post_init__(self) -> None:
        object.__setattr__(self, "start_step", as_int("autotune_start_step", self.start_step))
        object.__setattr__(self, "gain", as_nonnegative("autotune_gain", self.gain))
        smoothing = as_fraction("autotune_smoothing", self.smoothing, allow_zero=True)
        object.__setattr__(self, "smoothing", smoothing)

    def build(self, target_l0: Any, d_sae: int, device: torch.device | str | None) -> L0Autotuner:
        """An :class:`L0Autotuner` for ``target_l0`` (in ``(0, d_sae]``) on ``device``."""
        target = as_positive("target_l0", target_l0, maximum=d_sae, maximum_name="d_sae")
        tuner = L0Autotuner(target, start_step=self.start_step, gain=self.gain, smoothing=self.smoothing)
        return tuner.to(device)

    def config(self) -> dict[str, Any]:
        """The constructor keyword arguments these settings came from."""
        return {
            "autotune_start_step": self.start_step,
            "autotune_gain": self.gain,
            "autotune_smoothing": self.smoothing,
        }
