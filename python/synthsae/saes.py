"""Sparse autoencoder architectures for SynthSAEBench (torch ``nn.Module``\\ s, SAELens conventions).

Six architectures, all sharing SAELens's parameter layout and conventions:
``W_enc [d_in, d_sae]``, ``b_enc [d_sae]``, ``W_dec [d_sae, d_in]``, ``b_dec [d_in]`` (float32), the input
is centred as ``x - b_dec`` before encoding (SAELens ``apply_b_dec_to_input=True``), ``encode(x) -> z
[b, d_sae]``, ``decode(z) -> x̂ = z·W_dec + b_dec [b, d_in]``, ``forward = decode ∘ encode``.
Initialisation: ``W_dec`` rows are random directions (uniform on the sphere) scaled to
``decoder_init_norm``, ``W_enc = W_decᵀ``, biases 0. The defaults follow SAELens 6.54.12 and the
SynthSAEBench sweep (``decoderesearch/synth-sae-bench-experiments``): norm 0.1 (SAELens's
``TrainingSAEConfig`` default) for ReLU and the TopK family, 0.5 for JumpReLU (sweep recipe), 1.0 for MP
(SAELens forces it).

Losses (``training_forward``; b = batch size, all per-sample terms are averaged over the batch):

* **MSE** (every architecture, SAELens ``mse_loss``): ``mean_b Σ_d (x̂ - x)²`` — summed over the input
  dimensions, *not* averaged over them.
* ``ReLUSAE`` (SAELens "standard"): ``z = relu(pre)``, ``pre = (x - b_dec)·W_enc + b_enc``;
  loss = MSE + ``λ_eff · mean_b Σ_l z_l·‖W_dec_l‖`` (SAELens ``l1_loss``, ``lp_norm=1``), where
  ``λ_eff = l1_coefficient · min(step / l1_warm_up_steps, 1) · multiplier``; the multiplier is 1 unless
  ``target_l0`` is given, in which case an :class:`L0Autotuner` adapts it (the sweep's
  ``XStandardTrainingSAE``). The decoder is not renormalised (the penalty is decoder-norm weighted).
* ``TopKSAE``: ``z = scatter(topk(pre·‖W_dec‖, k)).relu()``; loss = MSE + AuxK.
  With ``rescale_acts_by_decoder_norm=True`` (SAELens's training default) pre-activations are multiplied
  by the decoder row norms and ``decode`` divides by them: reconstruction uses unit decoder directions and
  each row's norm acts as an encoder gain, so no renormalisation is needed (SAELens does none; see
  ``fold_decoder_norm`` for an equivalent unit-norm parametrisation). With ``False`` the rows are
  renormalised to unit norm in ``after_step`` instead.
* **AuxK** (SAELens ``calculate_topk_aux_loss``, after Gao et al. 2024): with ``n_dead`` dead latents
  (``dead_mask`` from the trainer) and ``k_aux = d_in // 2``, take the top ``min(k_aux, n_dead)``
  *pre-activations* (not ReLU'd) among dead latents, decode them without ``b_dec`` and fit the detached
  residual ``e = x - x̂``: ``aux_coefficient · min(n_dead / k_aux, 1) · mean_b Σ_d (ê - e)²``.
  Zero when no latent is dead or ``dead_mask`` is None. ``aux_coefficient`` defaults to **1.0**, SAELens's
  default (OpenAI's paper used 1/32).
* ``BatchTopKSAE``: in training mode keep the ``int(k·b)`` largest ``relu(pre)`` over the whole batch;
  loss = MSE + AuxK. ``after_step`` updates ``topk_threshold ← (1 - lr)·θ + lr·min(positive kept
  activations)`` (float64, ``topk_threshold_lr = 0.01``). In eval mode ``encode`` is the JumpReLU that
  SAELens saves a BatchTopK SAE as: ``z = relu(pre)·[pre > θ]``.
* ``MatryoshkaBatchTopKSAE``: BatchTopK latents ``z``; for each prefix width ``w`` in ``widths`` (the last
  is ``d_sae``) reconstruct with ``z[:, :w]`` only: ``x̂_w = decode`` restricted to latents ``< w``. Loss =
  **Σ_w MSE(x̂_w)** (a sum, not a mean, as SAELens: the full-width MSE plus one ``inner_mse_loss`` per inner
  width) + AuxK. With ``use_matryoshka_aux_loss=True`` (the sweep's setting; SAELens's default is False)
  AuxK is computed per level segment ``[w_prev, w)``: that segment's dead latents fit the residual of the
  prefix-``w`` reconstruction, each term scaled by ``min(n_dead_segment / k_aux, 1)`` and summed.
* ``JumpReLUSAE`` (DeepMind/SAEBench recipe as in the sweep's ``XJumpReLUTrainingSAE``):
  ``z = relu(pre)·H(pre - θ)`` with a per-latent threshold ``θ ≥ 0`` (a ``threshold`` parameter, projected
  to ``≥ 0`` after each step, as SAELens 6.54.12 does; since θ ≥ 0 the ReLU is implied in training and
  applied explicitly in ``encode``). loss = MSE + ``λ_eff · mean_b Σ_l H(pre_l - θ_l)`` with
  ``λ_eff = l0_coefficient · multiplier`` (an :class:`L0Autotuner` drives the batch L0 to ``target_l0``).
  Gradients w.r.t. θ use straight-through estimators with the rectangle kernel ``K(u) = [|u| < ½]`` of
  width ``bandwidth`` ε: ``∂z/∂θ = -(θ/ε)·K((pre - θ)/ε)``, ``∂H/∂θ = -(1/ε)·K((pre - θ)/ε)``; ``∂z/∂pre``
  is ``H(pre - θ)`` and the L0 term sends no gradient to ``pre`` (DeepMind, ``ste_to_input=False``).
* ``MatchingPursuitSAE`` (tied: ``W_enc`` is the property ``W_decᵀ`` and there is no ``b_enc``): greedy
  matching pursuit on ``r = x - b_dec`` for ``k`` iterations: ``l = argmax_l relu(r·W_dec_l)``,
  ``c = relu(r·W_dec_l)``, ``z_l += c``, ``r -= c·W_dec_l`` (positive inner products only; a latent may
  be picked again and accumulates). Stops early per row when ``‖r‖ < residual_threshold`` (if > 0) or,
  with ``stop_on_duplicate_support``, after an iteration that leaves the support unchanged. Defaults are
  the sweep's (``max_iterations = k``, ``residual_threshold = 0``, ``stop_on_duplicate_support = False``;
  SAELens's own defaults are ``d_in``, 1e-2 and True). Loss = MSE, backpropagated through all
  iterations. Like SAELens the decoder is not renormalised unless ``normalize_decoder=True``.

Trainer protocol: ``out = sae.training_forward(x, dead_mask=...)``, ``out.loss.backward()``,
``optimizer.step()``, ``sae.after_step(out)``. ``after_step`` does the post-step work: decoder
renormalisation where configured, JumpReLU threshold projection, BatchTopK threshold EMA, L0 autotuner
updates, and the step counter (used by warm-ups). No gradient projection is needed before the step
(SAELens does none), so there is no ``before_step``. ``fold_decoder_norm()`` (not MP, and for the TopK
family only with rescaling) moves the decoder row norms into the encoder (``W_enc``, ``b_enc`` and the
JumpReLU threshold ×‖W_dec_l‖, ``W_dec`` rows → unit norm) without changing ``forward`` beyond float
rounding, as SAELens does when saving for inference (latents scale by the norms, except in the rescaling
TopK family, whose latents are already in unit-decoder units).
"""

from __future__ import annotations

import itertools
import json
import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from synthsae._files import atomic_write

__all__ = [
    "ARCHITECTURES",
    "SAE",
    "BatchTopKSAE",
    "JumpReLUSAE",
    "L0Autotuner",
    "MatchingPursuitSAE",
    "MatryoshkaBatchTopKSAE",
    "ReLUSAE",
    "TopKSAE",
    "TrainOutput",
    "create_sae",
    "default_matryoshka_widths",
    "load_sae",
    "matching_pursuit",
]

CONFIG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"


# ---------------------------------------------------------------------------------------------- validation


def _int_arg(name: str, value: Any, *, low: int = 1, high: int | None = None, high_name: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high_name or high} ({high}), got {value}")
    return value


def _float_arg(
    name: str,
    value: Any,
    *,
    positive: bool = False,
    nonnegative: bool = False,
    high: float | None = None,
    high_name: str = "",
) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if nonnegative and value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high_name or high} ({high}), got {value}")
    return value


def _unit_interval(name: str, value: Any, *, open_low: bool = True) -> float:
    value = _float_arg(name, value)
    if not ((value > 0 if open_low else value >= 0) and value <= 1):
        raise ValueError(f"{name} must be in {'(0' if open_low else '[0'}, 1], got {value}")
    return value


def _seed_arg(seed: Any) -> int | None:
    if seed is None:
        return None
    return _int_arg("seed", seed, low=0)


def _bool_arg(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


# ---------------------------------------------------------------------------------------------- helpers


@dataclass
class TrainOutput:
    """Result of :meth:`SAE.training_forward`.

    ``loss``: differentiable scalar; ``losses``: its named parts, detached scalars (``"mse"`` always,
    plus ``"l1"``, ``"l0"``, ``"auxk"``, ``"mse_<width>"`` by architecture); ``latents``: the
    training-mode latents ``[b, d_sae]`` (detached); ``reconstruction``: ``x̂ [b, d_in]`` (detached).
    """

    loss: torch.Tensor
    losses: dict[str, torch.Tensor]
    latents: torch.Tensor
    reconstruction: torch.Tensor


def _mse(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """SAELens MSE: squared error summed over dimensions, mean over the batch. Scalar."""
    return (x_hat - x).pow(2).sum(dim=-1).mean()


def _batch_l0(latents: torch.Tensor) -> float:
    return float((latents != 0).sum(dim=-1, dtype=torch.float64).mean())


#: XOR-ed into SAE init seeds (see _random_unit_rows).
_INIT_SALT = 0x5AE_1A17


def _random_unit_rows(rows: int, cols: int, seed: int | None) -> torch.Tensor:
    """``[rows, cols]`` float32 rows uniform on the unit sphere (CPU; seeded generator if ``seed``). The seed
    is salted so that an SAE seeded ``s`` never starts from the dictionary of a world seeded ``s`` (both
    would otherwise draw the same normals)."""
    generator = None if seed is None else torch.Generator().manual_seed(seed ^ _INIT_SALT)
    w = torch.randn(rows, cols, generator=generator, dtype=torch.float32)
    return w / w.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _rectangle(u: torch.Tensor) -> torch.Tensor:
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


class _JumpReLUFn(torch.autograd.Function):
    """``x·[x > θ]`` with the rectangle-kernel STE for θ (DeepMind JumpReLU)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, threshold: torch.Tensor, bandwidth: float) -> torch.Tensor:
        ctx.save_for_backward(x, threshold)
        ctx.bandwidth = bandwidth
        return x * (x > threshold).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        x, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_threshold = (-(threshold / eps) * _rectangle((x - threshold) / eps) * grad).sum(dim=0)
        grad_x = (x > threshold).to(grad.dtype) * grad
        return grad_x, grad_threshold, None


class _StepFn(torch.autograd.Function):
    """Heaviside ``[x > θ]`` with the rectangle-kernel STE for θ only (no gradient to x)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, threshold: torch.Tensor, bandwidth: float) -> torch.Tensor:
        ctx.save_for_backward(x, threshold)
        ctx.bandwidth = bandwidth
        return (x > threshold).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor, None]:
        x, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_threshold = (-(1.0 / eps) * _rectangle((x - threshold) / eps) * grad).sum(dim=0)
        return None, grad_threshold, None


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
        self.target_l0 = _float_arg("target_l0", target_l0, positive=True)
        self.start_step = _int_arg("autotune_start_step", start_step, low=0)
        self.gain = _float_arg("autotune_gain", gain, nonnegative=True)
        self.smoothing = _unit_interval("autotune_smoothing", smoothing, open_low=False)
        self.rate_smoothing = _unit_interval("rate_smoothing", rate_smoothing, open_low=False)
        self.gain_scale = _float_arg("gain_scale", gain_scale, positive=True)
        self.convergence_gain = _float_arg("convergence_gain", convergence_gain, nonnegative=True)
        self.min_multiplier = _float_arg("min_multiplier", min_multiplier, positive=True)
        self.max_multiplier = _float_arg("max_multiplier", max_multiplier, positive=True)
        if self.min_multiplier > self.max_multiplier:
            raise ValueError("min_multiplier must be <= max_multiplier")
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

    def settings(self) -> dict[str, Any]:
        """Constructor keyword arguments (for configs), prefixed ``autotune_`` where the SAE takes them."""
        return {
            "autotune_start_step": self.start_step,
            "autotune_gain": self.gain,
            "autotune_smoothing": self.smoothing,
        }


def matching_pursuit(
    residual: torch.Tensor,
    W_dec: torch.Tensor,
    max_iterations: int,
    *,
    residual_threshold: float = 0.0,
    stop_on_duplicate_support: bool = False,
) -> torch.Tensor:
    """Greedy (positive) matching pursuit of centred inputs ``residual [b, d_in]`` over the rows of
    ``W_dec [d_sae, d_in]``; returns the coefficients ``[b, d_sae]`` (differentiable in both inputs).

    Each iteration picks ``argmax_l relu(r·W_dec_l)``, adds ``c = relu(r·W_dec_l)`` to that latent and
    sets ``r ← r - c·W_dec_l``. A row stops when ``‖r‖ < residual_threshold`` (if the threshold is > 0)
    or, with ``stop_on_duplicate_support``, when an iteration leaves its support unchanged.
    """
    max_iterations = _int_arg("max_iterations", max_iterations, low=0)
    batch = residual.shape[0]
    d_sae = W_dec.shape[0]
    acts = residual.new_zeros(batch, d_sae)
    done = torch.zeros(batch, dtype=torch.bool, device=residual.device)
    support = torch.zeros(batch, d_sae, dtype=torch.bool, device=residual.device)
    use_threshold = residual_threshold > 0
    for _ in range(max_iterations):
        with torch.no_grad():
            index = (residual @ W_dec.T).relu().argmax(dim=1)
        atom = W_dec[index]  # [b, d_in]
        coef = (residual * atom).sum(dim=-1).relu() * (~done).to(residual.dtype)
        acts = acts.scatter_add(1, index[:, None], coef[:, None])
        residual = residual - coef[:, None] * atom
        if stop_on_duplicate_support or use_threshold:
            with torch.no_grad():
                if stop_on_duplicate_support:
                    new_support = acts != 0
                    done = done | (new_support == support).all(dim=1)
                    support = new_support
                if use_threshold:
                    done = done | (residual.norm(dim=-1) < residual_threshold)
                if bool(done.all()):
                    break
    return acts


# ---------------------------------------------------------------------------------------------- base class


class SAE(nn.Module):
    """Base class of the six architectures: shared parameters, decoding, persistence.

    Subclasses implement ``encode`` and ``training_forward``; ``config()`` returns the JSON-serialisable
    constructor arguments plus ``"architecture"``; ``save``/``load`` use a directory holding ``cfg.json``
    and ``sae_weights.safetensors`` (parameters and buffers, i.e. the full ``state_dict``).
    """

    architecture: ClassVar[str] = ""
    tied_encoder: ClassVar[bool] = False

    d_in: int
    d_sae: int
    n_steps: torch.Tensor

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        *,
        decoder_init_norm: float,
        seed: int | None,
        device: torch.device | str | None,
    ) -> None:
        super().__init__()
        self.d_in = _int_arg("d_in", d_in)
        self.d_sae = _int_arg("d_sae", d_sae)
        self.decoder_init_norm = _float_arg("decoder_init_norm", decoder_init_norm, positive=True)
        self.seed = _seed_arg(seed)
        w_dec = _random_unit_rows(self.d_sae, self.d_in, self.seed) * self.decoder_init_norm
        self.W_dec = nn.Parameter(w_dec.to(device))
        if not self.tied_encoder:
            self.W_enc = nn.Parameter(w_dec.T.contiguous().to(device))
            self.b_enc = nn.Parameter(torch.zeros(self.d_sae, device=device))
        self.b_dec = nn.Parameter(torch.zeros(self.d_in, device=device))
        self.register_buffer("n_steps", torch.tensor(0, dtype=torch.int64, device=device))

    # -- forward ------------------------------------------------------------------------------------------

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 2 or x.shape[1] != self.d_in:
            raise ValueError(f"x must have shape [batch, {self.d_in}], got {list(x.shape)}")
        return x.to(self.W_dec.dtype)

    def _check_dead_mask(self, dead_mask: torch.Tensor | None) -> torch.Tensor | None:
        if dead_mask is None:
            return None
        if not isinstance(dead_mask, torch.Tensor) or dead_mask.shape != (self.d_sae,):
            raise ValueError(f"dead_mask must be a tensor of shape [{self.d_sae}] or None")
        return dead_mask.to(device=self.W_dec.device, dtype=torch.bool)

    def hidden_pre(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activations ``(x - b_dec)·W_enc + b_enc`` ``[b, d_sae]``."""
        x = self._check_input(x)
        return (x - self.b_dec) @ self.W_enc + self.b_enc

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latents ``z [b, d_sae]`` of inputs ``x [b, d_in]``."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``z·W_dec + b_dec`` ``[b, d_in]`` of latents ``z [b, d_sae]``."""
        return z @ self.W_dec + self.b_dec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``decode(encode(x))`` ``[b, d_in]``."""
        return self.decode(self.encode(x))

    def training_forward(self, x: torch.Tensor, *, dead_mask: torch.Tensor | None = None) -> TrainOutput:
        """Training-mode forward pass on ``x [b, d_in]``: loss, its parts, latents and reconstruction.

        ``dead_mask`` (bool ``[d_sae]``) marks latents the trainer considers dead (used by AuxK)."""
        raise NotImplementedError

    @torch.no_grad()
    def after_step(self, output: TrainOutput) -> None:
        """Post-optimiser-step hook (call once per step with that step's output)."""
        self.n_steps += 1

    @torch.no_grad()
    def fold_decoder_norm(self) -> None:
        """Rescales ``W_dec`` rows to unit norm and multiplies ``W_enc`` columns and ``b_enc`` by the old
        norms (SAELens ``fold_W_dec_norm``); ``forward`` is unchanged, latents scale by the norms."""
        norms = self.W_dec.norm(dim=-1).clamp_min(1e-8)
        self.W_dec.div_(norms[:, None])
        self.W_enc.mul_(norms)
        self.b_enc.mul_(norms)

    def _output(
        self, loss: torch.Tensor, losses: dict[str, torch.Tensor], z: torch.Tensor, x_hat: torch.Tensor
    ) -> TrainOutput:
        return TrainOutput(
            loss=loss,
            losses={name: value.detach() for name, value in losses.items()},
            latents=z.detach(),
            reconstruction=x_hat.detach(),
        )

    # -- config and persistence ---------------------------------------------------------------------------

    def _hparams(self) -> dict[str, Any]:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments plus ``"architecture"``."""
        return {
            "architecture": self.architecture,
            "d_in": self.d_in,
            "d_sae": self.d_sae,
            **self._hparams(),
            "decoder_init_norm": self.decoder_init_norm,
            "seed": self.seed,
        }

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "architecture")

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Writes ``cfg.json`` and ``sae_weights.safetensors`` into directory ``path`` (each through a
        temporary file renamed into place); refuses a non-empty directory unless ``overwrite``."""
        from safetensors.torch import save_file

        path = Path(path)
        if path.exists() and not path.is_dir():
            raise FileExistsError(f"path {path} exists and is not a directory")
        if path.is_dir() and any(path.iterdir()) and not overwrite:
            raise FileExistsError(f"path {path} is not empty; pass overwrite=True to replace the SAE there")
        path.mkdir(parents=True, exist_ok=True)
        tensors = {name: t.detach().cpu().contiguous() for name, t in self.state_dict().items()}
        text = json.dumps(self.config(), indent=2)
        atomic_write(path / WEIGHTS_FILE, lambda tmp: save_file(tensors, str(tmp)))
        atomic_write(path / CONFIG_FILE, lambda tmp: tmp.write_text(text))

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: torch.device | str | None = None) -> SAE:
        """Loads an SAE saved by :meth:`save` (on ``device``; CPU by default). On a subclass the saved
        architecture must match it; on ``SAE`` itself it dispatches on ``cfg.json``'s architecture."""
        from safetensors.torch import load_file

        path = Path(path)
        config = json.loads((path / CONFIG_FILE).read_text())
        architecture = config.pop("architecture", None)
        if architecture not in ARCHITECTURES:
            raise ValueError(f"{path / CONFIG_FILE}: unknown architecture {architecture!r}")
        target = ARCHITECTURES[architecture]
        if cls is not SAE and not issubclass(target, cls):
            raise ValueError(f"{path} holds a {architecture!r} SAE, not {cls.architecture!r}")
        with torch.random.fork_rng(devices=[]):  # building the module must not consume global RNG state
            sae = target(**config, device=device)
        state = load_file(str(path / WEIGHTS_FILE), device=str(sae.W_dec.device))
        sae.load_state_dict(state, strict=True)
        return sae


# ---------------------------------------------------------------------------------------------- ReLU + L1


class ReLUSAE(SAE):
    """SAELens "standard" SAE: ``z = relu(pre)``; loss = MSE + ``λ·mean_b Σ_l z_l·‖W_dec_l‖``.

    ``l1_coefficient`` sets λ (linearly warmed up over ``l1_warm_up_steps``). L0 is controlled only
    through λ: with ``target_l0`` an :class:`L0Autotuner` (sweep recipe) multiplies λ to reach it.
    """

    architecture: ClassVar[str] = "relu"

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        l1_coefficient: float,
        *,
        l1_warm_up_steps: int = 0,
        target_l0: float | None = None,
        autotune_start_step: int = 0,
        autotune_gain: float = 3e-4,
        autotune_smoothing: float = 0.99,
        decoder_init_norm: float = 0.1,
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(d_in, d_sae, decoder_init_norm=decoder_init_norm, seed=seed, device=device)
        self.l1_coefficient = _float_arg("l1_coefficient", l1_coefficient, nonnegative=True)
        self.l1_warm_up_steps = _int_arg("l1_warm_up_steps", l1_warm_up_steps, low=0)
        self._autotune_settings = {
            "autotune_start_step": _int_arg("autotune_start_step", autotune_start_step, low=0),
            "autotune_gain": _float_arg("autotune_gain", autotune_gain, nonnegative=True),
            "autotune_smoothing": _unit_interval("autotune_smoothing", autotune_smoothing, open_low=False),
        }
        self.autotuner: L0Autotuner | None = None
        if target_l0 is not None:
            target = _float_arg("target_l0", target_l0, positive=True, high=self.d_sae, high_name="d_sae")
            tuner = L0Autotuner(
                target, start_step=autotune_start_step, gain=autotune_gain, smoothing=autotune_smoothing
            )
            self.autotuner = tuner.to(device)

    @property
    def effective_l1_coefficient(self) -> float:
        """λ used at the current step: coefficient × warm-up factor × autotuner multiplier."""
        step = int(self.n_steps)
        warm = 1.0 if self.l1_warm_up_steps == 0 else min(step / self.l1_warm_up_steps, 1.0)
        multiplier = 1.0 if self.autotuner is None else self.autotuner.value
        return self.l1_coefficient * warm * multiplier

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden_pre(x).relu()

    def training_forward(self, x: torch.Tensor, *, dead_mask: torch.Tensor | None = None) -> TrainOutput:
        x = self._check_input(x)
        self._check_dead_mask(dead_mask)
        z = self.encode(x)
        x_hat = self.decode(z)
        mse = _mse(x_hat, x)
        l1 = self.effective_l1_coefficient * (z * self.W_dec.norm(dim=-1)).sum(dim=-1).mean()
        return self._output(mse + l1, {"mse": mse, "l1": l1}, z, x_hat)

    @torch.no_grad()
    def after_step(self, output: TrainOutput) -> None:
        if self.autotuner is not None:
            self.autotuner.update(_batch_l0(output.latents), int(self.n_steps))
        super().after_step(output)

    def _hparams(self) -> dict[str, Any]:
        return {
            "l1_coefficient": self.l1_coefficient,
            "l1_warm_up_steps": self.l1_warm_up_steps,
            "target_l0": None if self.autotuner is None else self.autotuner.target_l0,
            **self._autotune_settings,
        }


# ---------------------------------------------------------------------------------------------- TopK family


class _TopKFamily(SAE):
    """Shared machinery of TopK, BatchTopK and Matryoshka: decoder-norm rescaling and AuxK."""

    k: float

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        *,
        aux_coefficient: float,
        rescale_acts_by_decoder_norm: bool,
        decoder_init_norm: float,
        seed: int | None,
        device: torch.device | str | None,
    ) -> None:
        super().__init__(d_in, d_sae, decoder_init_norm=decoder_init_norm, seed=seed, device=device)
        self.aux_coefficient = _float_arg("aux_coefficient", aux_coefficient, nonnegative=True)
        self.rescale_acts_by_decoder_norm = _bool_arg(
            "rescale_acts_by_decoder_norm", rescale_acts_by_decoder_norm
        )
        self.k_aux = max(self.d_in // 2, 1)

    def scaled_pre(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activations, times ``‖W_dec_l‖`` when ``rescale_acts_by_decoder_norm`` ``[b, d_sae]``."""
        pre = self.hidden_pre(x)
        if self.rescale_acts_by_decoder_norm:
            pre = pre * self.W_dec.norm(dim=-1)
        return pre

    def _unit_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Latents in units of the decoder's rows as used: divided by the row norms when rescaling."""
        return z / self.W_dec.norm(dim=-1) if self.rescale_acts_by_decoder_norm else z

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(z / ‖W_dec_l‖)·W_dec + b_dec`` when rescaling (unit directions), else ``z·W_dec + b_dec``."""
        return self._unit_latents(z) @ self.W_dec + self.b_dec

    def _auxk_term(
        self,
        x: torch.Tensor,
        x_hat: torch.Tensor,
        pre: torch.Tensor,
        dead_mask: torch.Tensor,
        lo: int,
        hi: int,
    ) -> torch.Tensor | None:
        """One AuxK term for latents ``lo..hi`` (unscaled by ``aux_coefficient``); None if none dead."""
        dead = dead_mask[lo:hi]
        num_dead = int(dead.sum())
        if num_dead == 0:
            return None
        k_aux = min(self.k_aux, num_dead)
        scale = min(num_dead / self.k_aux, 1.0)
        residual = (x - x_hat).detach()
        candidates = pre[:, lo:hi].masked_fill(~dead, -math.inf)
        values, indices = candidates.topk(k_aux, dim=-1, sorted=False)
        acts = torch.zeros_like(candidates).scatter(-1, indices, values)
        w = self.W_dec[lo:hi]
        if self.rescale_acts_by_decoder_norm:
            acts = acts / w.norm(dim=-1)
        return scale * _mse(acts @ w, residual)

    def _auxk(
        self, x: torch.Tensor, x_hat: torch.Tensor, pre: torch.Tensor, dead_mask: torch.Tensor | None
    ) -> torch.Tensor:
        if dead_mask is None:
            return x_hat.new_zeros(())
        term = self._auxk_term(x, x_hat, pre, dead_mask, 0, self.d_sae)
        return x_hat.new_zeros(()) if term is None else self.aux_coefficient * term

    @torch.no_grad()
    def fold_decoder_norm(self) -> None:
        """Like :meth:`SAE.fold_decoder_norm`; with rescaling both latents and ``forward`` are unchanged.
        Without rescaling it would change the top-k selection, so it raises (as SAELens)."""
        if not self.rescale_acts_by_decoder_norm:
            raise NotImplementedError("fold_decoder_norm needs rescale_acts_by_decoder_norm=True")
        super().fold_decoder_norm()

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Rescales ``W_dec`` rows to unit norm in place."""
        self.W_dec.div_(self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-12))

    @torch.no_grad()
    def after_step(self, output: TrainOutput) -> None:
        if not self.rescale_acts_by_decoder_norm:
            self.normalize_decoder()
        super().after_step(output)

    def _family_hparams(self) -> dict[str, Any]:
        return {
            "aux_coefficient": self.aux_coefficient,
            "rescale_acts_by_decoder_norm": self.rescale_acts_by_decoder_norm,
        }


class TopKSAE(_TopKFamily):
    """TopK SAE: keep the ``k`` largest (decoder-norm-scaled) pre-activations per row, then ReLU.
    Loss = MSE + AuxK."""

    architecture: ClassVar[str] = "topk"

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        k: int,
        *,
        aux_coefficient: float = 1.0,
        rescale_acts_by_decoder_norm: bool = True,
        decoder_init_norm: float = 0.1,
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(
            d_in,
            d_sae,
            aux_coefficient=aux_coefficient,
            rescale_acts_by_decoder_norm=rescale_acts_by_decoder_norm,
            decoder_init_norm=decoder_init_norm,
            seed=seed,
            device=device,
        )
        self.k = _int_arg("k", k, high=self.d_sae, high_name="d_sae")

    def _topk(self, pre: torch.Tensor) -> torch.Tensor:
        values, indices = pre.topk(int(self.k), dim=-1, sorted=False)
        return torch.zeros_like(pre).scatter(-1, indices, values.relu())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self._topk(self.scaled_pre(x))

    def training_forward(self, x: torch.Tensor, *, dead_mask: torch.Tensor | None = None) -> TrainOutput:
        x = self._check_input(x)
        dead_mask = self._check_dead_mask(dead_mask)
        pre = self.scaled_pre(x)
        z = self._topk(pre)
        x_hat = self.decode(z)
        mse = _mse(x_hat, x)
        auxk = self._auxk(x, x_hat, pre, dead_mask)
        return self._output(mse + auxk, {"mse": mse, "auxk": auxk}, z, x_hat)

    def _hparams(self) -> dict[str, Any]:
        return {"k": self.k, **self._family_hparams()}


class BatchTopKSAE(_TopKFamily):
    """BatchTopK SAE: in training keep the ``int(k·b)`` largest ``relu(pre)`` over the batch; in eval
    mode ``z = relu(pre)·[pre > topk_threshold]``. Loss = MSE + AuxK. ``k`` may be fractional."""

    architecture: ClassVar[str] = "batchtopk"
    topk_threshold: torch.Tensor

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        k: float,
        *,
        topk_threshold_lr: float = 0.01,
        aux_coefficient: float = 1.0,
        rescale_acts_by_decoder_norm: bool = True,
        decoder_init_norm: float = 0.1,
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(
            d_in,
            d_sae,
            aux_coefficient=aux_coefficient,
            rescale_acts_by_decoder_norm=rescale_acts_by_decoder_norm,
            decoder_init_norm=decoder_init_norm,
            seed=seed,
            device=device,
        )
        if isinstance(k, numbers.Integral) and not isinstance(k, bool):
            self.k = _int_arg("k", k, high=self.d_sae, high_name="d_sae")
        else:
            self.k = _float_arg("k", k, positive=True, high=self.d_sae, high_name="d_sae")
        self.topk_threshold_lr = _unit_interval("topk_threshold_lr", topk_threshold_lr)
        self.register_buffer("topk_threshold", torch.tensor(0.0, dtype=torch.float64, device=device))

    def _batch_topk(self, pre: torch.Tensor) -> torch.Tensor:
        acts = pre.relu()
        flat = acts.flatten()
        values, indices = flat.topk(int(self.k * pre.shape[0]), sorted=False)
        return torch.zeros_like(flat).scatter(-1, indices, values).reshape(acts.shape)

    def _threshold_activation(self, pre: torch.Tensor) -> torch.Tensor:
        return pre.relu() * (pre > self.topk_threshold.to(pre.dtype)).to(pre.dtype)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Batch top-k latents in training mode; the inference threshold in eval mode."""
        pre = self.scaled_pre(x)
        return self._batch_topk(pre) if self.training else self._threshold_activation(pre)

    def training_forward(self, x: torch.Tensor, *, dead_mask: torch.Tensor | None = None) -> TrainOutput:
        x = self._check_input(x)
        dead_mask = self._check_dead_mask(dead_mask)
        pre = self.scaled_pre(x)
        z = self._batch_topk(pre)
        x_hat = self.decode(z)
        mse = _mse(x_hat, x)
        auxk = self._auxk(x, x_hat, pre, dead_mask)
        return self._output(mse + auxk, {"mse": mse, "auxk": auxk}, z, x_hat)

    @torch.no_grad()
    def update_threshold(self, latents: torch.Tensor) -> None:
        """EMA of the smallest positive kept activation: ``θ ← (1 - lr)·θ + lr·min(z > 0)``."""
        smallest = torch.where(latents > 0, latents, math.inf).min().double()  # inf if none is positive
        lr = self.topk_threshold_lr
        updated = (1 - lr) * self.topk_threshold + lr * smallest
        self.topk_threshold.copy_(torch.where(torch.isfinite(smallest), updated, self.topk_threshold))

    @torch.no_grad()
    def after_step(self, output: TrainOutput) -> None:
        self.update_threshold(output.latents)
        super().after_step(output)

    def _hparams(self) -> dict[str, Any]:
        return {"k": self.k, "topk_threshold_lr": self.topk_threshold_lr, **self._family_hparams()}


def default_matryoshka_widths(d_sae: int) -> list[int]:
    """The sweep's prefixes: those of 128, 512, 2048 below ``d_sae``, then ``d_sae`` (so
    ``[128, 512, 2048, 4096]`` at 4096). For ``d_sae <= 128``: ``[d_sae // 8, d_sae // 2, d_sae]``
    keeping only positive, strictly increasing values."""
    d_sae = _int_arg("d_sae", d_sae)
    inner = [w for w in (128, 512, 2048) if w < d_sae]
    if not inner:
        inner = sorted({w for w in (d_sae // 8, d_sae // 2) if 0 < w < d_sae})
    return [*inner, d_sae]


class MatryoshkaBatchTopKSAE(BatchTopKSAE):
    """Matryoshka BatchTopK SAE: BatchTopK latents; loss = Σ over prefix widths ``w`` of the MSE of the
    reconstruction from latents ``[:w]`` (the full width included), + AuxK (per level by default)."""

    architecture: ClassVar[str] = "matryoshka"

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        k: float,
        widths: Sequence[int],
        *,
        use_matryoshka_aux_loss: bool = True,
        topk_threshold_lr: float = 0.01,
        aux_coefficient: float = 1.0,
        rescale_acts_by_decoder_norm: bool = True,
        decoder_init_norm: float = 0.1,
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(
            d_in,
            d_sae,
            k,
            topk_threshold_lr=topk_threshold_lr,
            aux_coefficient=aux_coefficient,
            rescale_acts_by_decoder_norm=rescale_acts_by_decoder_norm,
            decoder_init_norm=decoder_init_norm,
            seed=seed,
            device=device,
        )
        self.widths = self._check_widths(widths)
        self.use_matryoshka_aux_loss = _bool_arg("use_matryoshka_aux_loss", use_matryoshka_aux_loss)

    def _check_widths(self, widths: Sequence[int]) -> list[int]:
        if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
            raise TypeError(f"widths must be a sequence of ints, got {type(widths).__name__}")
        checked = [_int_arg("widths", w, high=self.d_sae, high_name="d_sae") for w in widths]
        if not checked:
            raise ValueError("widths must not be empty")
        if any(b <= a for a, b in itertools.pairwise(checked)):
            raise ValueError(f"widths must be strictly increasing, got {checked}")
        if checked[-1] != self.d_sae:
            checked.append(self.d_sae)
        return checked

    def prefix_reconstructions(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Reconstructions ``z[:, :w]·W_dec[:w] + b_dec`` for each width ``w`` (last = ``decode(z)``)."""
        unit = self._unit_latents(z)
        out = []
        current = self.b_dec.expand(z.shape[0], self.d_in)
        lo = 0
        for width in self.widths:
            current = current + unit[:, lo:width] @ self.W_dec[lo:width]
            out.append(current)
            lo = width
        return out

    def training_forward(self, x: torch.Tensor, *, dead_mask: torch.Tensor | None = None) -> TrainOutput:
        x = self._check_input(x)
        dead_mask = self._check_dead_mask(dead_mask)
        pre = self.scaled_pre(x)
        z = self._batch_topk(pre)
        recons = self.prefix_reconstructions(z)
        x_hat = recons[-1]
        losses: dict[str, torch.Tensor] = {"mse": _mse(x_hat, x)}
        for width, inner in zip(self.widths[:-1], recons[:-1], strict=True):
            losses[f"mse_{width}"] = _mse(inner, x)
        if self.use_matryoshka_aux_loss:
            auxk = self._matryoshka_auxk(x, recons, pre, dead_mask)
        else:
            auxk = self._auxk(x, x_hat, pre, dead_mask)
        loss = torch.stack(list(losses.values())).sum() + auxk
        losses["auxk"] = auxk
        return self._output(loss, losses, z, x_hat)

    def _matryoshka_auxk(
        self, x: torch.Tensor, recons: list[torch.Tensor], pre: torch.Tensor, dead_mask: torch.Tensor | None
    ) -> torch.Tensor:
        total = x.new_zeros(())
        if dead_mask is None:
            return total
        lo = 0
        for width, partial in zip(self.widths, recons, strict=True):
            term = self._auxk_term(x, partial, pre, dead_mask, lo, width)
            if term is not None:
                total = total + term
            lo = width
        return self.aux_coefficient * total

    def _hparams(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "widths": list(self.widths),
            "use_matryoshka_aux_loss": self.use_matryoshka_aux_loss,
            "topk_threshold_lr": self.topk_threshold_lr,
            **self._family_hparams(),
        }


# ---------------------------------------------------------------------------------------------- JumpReLU


class JumpReLUSAE(SAE):
    """JumpReLU SAE with an L0 penalty whose coefficient is autotuned to reach ``target_l0``.

    ``z = relu(pre)·H(pre - θ)``; loss = MSE + ``l0_coefficient · multiplier · mean_b Σ_l H(pre_l - θ_l)``
    with rectangle-kernel STEs (width ``bandwidth``) for θ. Set ``autotune_gain=0`` to fix the coefficient.
    """

    architecture: ClassVar[str] = "jumprelu"

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        target_l0: float,
        *,
        l0_coefficient: float = 1.0,
        bandwidth: float = 1.0,
        init_threshold: float = 1.0,
        autotune_start_step: int = 0,
        autotune_gain: float = 3e-4,
        autotune_smoothing: float = 0.99,
        decoder_init_norm: float = 0.5,
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(d_in, d_sae, decoder_init_norm=decoder_init_norm, seed=seed, device=device)
        target = _float_arg("target_l0", target_l0, positive=True, high=self.d_sae, high_name="d_sae")
        self.l0_coefficient = _float_arg("l0_coefficient", l0_coefficient, nonnegative=True)
        self.bandwidth = _float_arg("bandwidth", bandwidth, positive=True)
        self.init_threshold = _float_arg("init_threshold", init_threshold, nonnegative=True)
        self.threshold = nn.Parameter(torch.full((self.d_sae,), self.init_threshold, device=device))
        tuner = L0Autotuner(
            target, start_step=autotune_start_step, gain=autotune_gain, smoothing=autotune_smoothing
        )
        self.autotuner = tuner.to(device)

    @property
    def target_l0(self) -> float:
        return self.autotuner.target_l0

    @property
    def effective_l0_coefficient(self) -> float:
        """``l0_coefficient × autotuner multiplier``."""
        return self.l0_coefficient * self.autotuner.value

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.hidden_pre(x)
        return pre.relu() * (pre > self.threshold).to(pre.dtype)

    def training_forward(self, x: torch.Tensor, *, dead_mask: torch.Tensor | None = None) -> TrainOutput:
        x = self._check_input(x)
        self._check_dead_mask(dead_mask)
        pre = self.hidden_pre(x)
        z = _JumpReLUFn.apply(pre, self.threshold, self.bandwidth)
        x_hat = self.decode(z)
        mse = _mse(x_hat, x)
        l0 = _StepFn.apply(pre, self.threshold, self.bandwidth).sum(dim=-1).mean()
        l0_loss = self.effective_l0_coefficient * l0
        return self._output(mse + l0_loss, {"mse": mse, "l0": l0_loss}, z, x_hat)

    @torch.no_grad()
    def fold_decoder_norm(self) -> None:
        norms = self.W_dec.norm(dim=-1).clamp_min(1e-8)
        super().fold_decoder_norm()
        self.threshold.mul_(norms)

    @torch.no_grad()
    def after_step(self, output: TrainOutput) -> None:
        self.threshold.clamp_(min=0.0)
        self.autotuner.update(_batch_l0(output.latents), int(self.n_steps))
        super().after_step(output)

    def _hparams(self) -> dict[str, Any]:
        return {
            "target_l0": self.target_l0,
            "l0_coefficient": self.l0_coefficient,
            "bandwidth": self.bandwidth,
            "init_threshold": self.init_threshold,
            **self.autotuner.settings(),
        }


# ---------------------------------------------------------------------------------------------- MP


class MatchingPursuitSAE(SAE):
    """Matching-pursuit SAE (tied encoder): ``encode`` runs ``k`` greedy MP iterations on
    ``x - b_dec`` over the rows of ``W_dec``; loss = MSE. See :func:`matching_pursuit`."""

    architecture: ClassVar[str] = "mp"
    tied_encoder: ClassVar[bool] = True

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        k: int,
        *,
        residual_threshold: float = 0.0,
        stop_on_duplicate_support: bool = False,
        normalize_decoder: bool = False,
        seed: int | None = None,
        device: torch.device | str | None = None,
        decoder_init_norm: float = 1.0,
    ) -> None:
        if decoder_init_norm != 1.0:
            raise ValueError("decoder_init_norm must be 1.0 for MatchingPursuitSAE (as in SAELens)")
        super().__init__(d_in, d_sae, decoder_init_norm=1.0, seed=seed, device=device)
        self.k = _int_arg("k", k, high=self.d_sae, high_name="d_sae")
        self.residual_threshold = _float_arg("residual_threshold", residual_threshold, nonnegative=True)
        self.stop_on_duplicate_support = _bool_arg("stop_on_duplicate_support", stop_on_duplicate_support)
        self.normalize_decoder = _bool_arg("normalize_decoder", normalize_decoder)

    @property
    def W_enc(self) -> torch.Tensor:  # type: ignore[override]
        """The tied encoder ``W_decᵀ`` ``[d_in, d_sae]`` (not a separate parameter)."""
        return self.W_dec.T

    def hidden_pre(self, x: torch.Tensor) -> torch.Tensor:
        """Inner products ``(x - b_dec)·W_decᵀ`` ``[b, d_sae]`` (first MP step's scores)."""
        return (self._check_input(x) - self.b_dec) @ self.W_dec.T

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check_input(x)
        return matching_pursuit(
            x - self.b_dec,
            self.W_dec,
            self.k,
            residual_threshold=self.residual_threshold,
            stop_on_duplicate_support=self.stop_on_duplicate_support,
        )

    def training_forward(self, x: torch.Tensor, *, dead_mask: torch.Tensor | None = None) -> TrainOutput:
        x = self._check_input(x)
        self._check_dead_mask(dead_mask)
        z = self.encode(x)
        x_hat = self.decode(z)
        mse = _mse(x_hat, x)
        return self._output(mse, {"mse": mse}, z, x_hat)

    def fold_decoder_norm(self) -> None:
        """Not supported: the encoder is tied, so the norms cannot move into it (as SAELens)."""
        raise NotImplementedError("fold_decoder_norm is not defined for a tied matching-pursuit SAE")

    @torch.no_grad()
    def after_step(self, output: TrainOutput) -> None:
        if self.normalize_decoder:
            self.W_dec.div_(self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-12))
        super().after_step(output)

    def _hparams(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "residual_threshold": self.residual_threshold,
            "stop_on_duplicate_support": self.stop_on_duplicate_support,
            "normalize_decoder": self.normalize_decoder,
        }


# ---------------------------------------------------------------------------------------------- registry

ARCHITECTURES: dict[str, type[SAE]] = {
    cls.architecture: cls
    for cls in (ReLUSAE, TopKSAE, BatchTopKSAE, JumpReLUSAE, MatryoshkaBatchTopKSAE, MatchingPursuitSAE)
}


def load_sae(path: str | os.PathLike[str], device: torch.device | str | None = None) -> SAE:
    """Loads any saved SAE, dispatching on ``cfg.json``'s ``"architecture"``."""
    return SAE.load(path, device=device)


def create_sae(architecture: str, d_in: int, d_sae: int, *, l0: float, **kwargs: Any) -> SAE:
    """Builds an SAE of ``architecture`` (a key of :data:`ARCHITECTURES`) aimed at L0 ``l0``.

    TopK and MP use ``k = round(l0)``; BatchTopK and Matryoshka use ``k = l0`` (fractional allowed;
    Matryoshka ``widths`` default to :func:`default_matryoshka_widths`); JumpReLU uses
    ``target_l0 = l0``. ReLU has no direct L0 knob — its L0 follows the L1 coefficient
    (``l1_coefficient``, default 2.0 as in the sweep); by default ``target_l0 = l0`` switches on the
    coefficient autotuner (pass ``target_l0=None`` to train with a fixed coefficient). Other keyword
    arguments go to the constructor.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {sorted(ARCHITECTURES)}, got {architecture!r}")
    l0 = _float_arg("l0", l0, positive=True)
    if architecture == "relu":
        l1_coefficient = kwargs.pop("l1_coefficient", 2.0)
        kwargs.setdefault("target_l0", l0)
        return ReLUSAE(d_in, d_sae, l1_coefficient, **kwargs)
    if architecture == "jumprelu":
        return JumpReLUSAE(d_in, d_sae, l0, **kwargs)
    if architecture in ("topk", "mp"):
        k = round(l0)
        if k < 1:
            raise ValueError(f"l0 must round to a positive k for {architecture!r}, got {l0}")
        if architecture == "topk":
            return TopKSAE(d_in, d_sae, k, **kwargs)
        return MatchingPursuitSAE(d_in, d_sae, k, **kwargs)
    k_batch: float = int(l0) if l0.is_integer() else l0
    if architecture == "batchtopk":
        return BatchTopKSAE(d_in, d_sae, k_batch, **kwargs)
    widths = kwargs.pop("widths", None)
    if widths is None:
        widths = default_matryoshka_widths(d_sae)
    return MatryoshkaBatchTopKSAE(d_in, d_sae, k_batch, widths, **kwargs)
