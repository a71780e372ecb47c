"""The shared base of every SAE: parameters, decoding, the training protocol, persistence.

Conventions (SAELens's, for all architectures): ``W_enc [d_in, d_sae]``, ``b_enc [d_sae]``,
``W_dec [d_sae, d_in]``, ``b_dec [d_in]`` (float32); the input is centred as ``x - b_dec`` before encoding
(SAELens ``apply_b_dec_to_input=True``); ``encode(x) -> z [b, d_sae]``, ``decode(z) -> x̂ = z·W_dec + b_dec
[b, d_in]``, ``forward = decode ∘ encode``. Initialisation: ``W_dec`` rows are random directions (uniform
on the sphere) scaled to ``decoder_init_norm``, ``W_enc = W_decᵀ``, biases 0.

**MSE** (every architecture, SAELens ``mse_loss``): ``mean_b Σ_d (x̂ - x)²`` — summed over the input
dimensions, *not* averaged over them.

Trainer protocol: ``out = sae.training_forward(x, dead_mask=...)``, ``out.loss.backward()``,
``optimizer.step()``, ``sae.after_step(out)``. ``after_step`` does the post-step work: decoder
renormalisation where configured, JumpReLU threshold projection, BatchTopK threshold EMA, L0 autotuner
updates, and the step counter (used by warm-ups). No gradient projection is needed before the step
(SAELens does none), so there is no ``before_step``. ``fold_decoder_norm()`` moves the decoder row norms
into the encoder (``W_enc``, ``b_enc`` ×‖W_dec_l‖, ``W_dec`` rows → unit norm) without changing
``forward`` beyond float rounding, as SAELens does when saving for inference.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import torch
from torch import nn

from synthsae._files import atomic_write, check_fresh_dir, read_json
from synthsae._validate import as_int, as_optional_seed, as_positive, check_memory
from synthsae.errors import ConfigError, ConfigTypeError
from synthsae.saes.registry import ARCHITECTURES, register

CONFIG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"

#: XOR-ed into SAE init seeds (see random_unit_rows).
_INIT_SALT = 0x5AE_1A17


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


def mse(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """SAELens MSE: squared error summed over dimensions, mean over the batch. Scalar."""
    return (x_hat - x).pow(2).sum(dim=-1).mean()


def batch_l0(latents: torch.Tensor) -> float:
    """Mean number of non-zero latents per row of ``latents [b, d_sae]``."""
    return float((latents != 0).sum(dim=-1, dtype=torch.float64).mean())


def random_unit_rows(rows: int, cols: int, seed: int | None) -> torch.Tensor:
    """``[rows, cols]`` float32 rows uniform on the unit sphere (CPU). The normals come from a generator
    seeded with ``seed`` XOR a salt, so an SAE seeded ``s`` never starts from the dictionary of a world
    seeded ``s`` (both would otherwise draw the same normals). ``seed=None`` draws the seed from torch's
    global generator (``torch.manual_seed`` still reproduces the init), never the normals themselves:
    under the common ``torch.manual_seed(s)`` those would repeat a world's dictionary drawn the same way."""
    if seed is None:
        seed = int(torch.randint(0, 2**63 - 1, (), dtype=torch.int64))
    generator = torch.Generator().manual_seed(seed ^ _INIT_SALT)
    w = torch.randn(rows, cols, generator=generator, dtype=torch.float32)
    return w / w.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def round_l0(architecture: str, l0: float) -> int:
    """``k = round(l0)`` for an architecture that keeps a whole number of latents per row;
    ``ValueError`` when that is 0."""
    k = round(l0)
    if k < 1:
        raise ConfigError(f"l0 must round to a positive k for {architecture!r}, got {l0}")
    return k


class SAE(nn.Module):
    """Base class of the architectures: shared parameters, decoding, persistence.

    Subclasses implement ``encode``, ``training_forward`` and ``_hparams``; ``config()`` returns the
    JSON-serialisable constructor arguments plus ``"architecture"``; ``save``/``load`` use a directory
    holding ``cfg.json`` and ``sae_weights.safetensors`` (parameters and buffers: the full ``state_dict``).
    A new architecture is a subclass that sets a unique ``architecture`` name and defines
    :meth:`from_l0`: defining the class registers it (:mod:`synthsae.saes.registry`), so that
    :func:`~synthsae.saes.registry.create_sae`, :meth:`load` and the bench know it by name. A subclass
    that does not set ``architecture`` itself (a variant for tests, say) is not registered.
    """

    #: The name the class is registered under (``""``: not registered).
    architecture: ClassVar[str] = ""
    #: Whether the L0 given to :meth:`from_l0` is set directly (a ``k``) rather than reached by a
    #: controller steering a penalty coefficient during training.
    direct_l0: ClassVar[bool] = False
    #: Whether it is one of the paper's architectures (the bench's default protocol trains those).
    in_paper: ClassVar[bool] = False
    #: Where it comes in the bench's default lists: lower first, ties in registration order.
    bench_rank: ClassVar[float] = float("inf")
    tied_encoder: ClassVar[bool] = False
    #: Whether training gives the same parameters for any torch thread count (a checkpoint of an SAE
    #: that does not resumes only on the thread count it was written with).
    thread_invariant: ClassVar[bool] = False

    d_in: int
    d_sae: int
    n_steps: torch.Tensor

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "architecture" not in cls.__dict__:
            return
        # What a class declares for the bench is its own: a subclass of a paper architecture is not one.
        for name, default in (("direct_l0", False), ("in_paper", False), ("bench_rank", float("inf"))):
            if name not in cls.__dict__:
                setattr(cls, name, default)
        if cls.from_l0.__func__ is SAE.from_l0.__func__:  # type: ignore[attr-defined]
            raise ConfigTypeError(f"{cls.__qualname__} must define from_l0 (how an L0 maps to its settings)")
        register(cls)

    @classmethod
    def from_l0(cls, d_in: int, d_sae: int, l0: float, **kwargs: Any) -> Self:
        """An SAE aimed at L0 ``l0`` (positive): the constructor arguments that L0 maps to, plus
        ``kwargs`` (what :func:`~synthsae.saes.registry.create_sae` calls). Every registered
        architecture defines it."""
        raise NotImplementedError(f"{cls.__qualname__} does not define from_l0")

    @classmethod
    def bench_options(cls, steps: int, autotune_gain: float) -> dict[str, Any]:
        """Constructor options for a bench run of ``steps`` training steps, with ``autotune_gain`` the
        gain for an L0 controller if the architecture has one (none by default)."""
        return {}

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
        self.d_in = as_int("d_in", d_in, minimum=1)
        self.d_sae = as_int("d_sae", d_sae, minimum=1)
        # The initialisation holds two float32 [d_sae, d_in] matrices in host memory on any device (the
        # drawn directions and W_dec, then W_dec and W_enc); training adds gradients and Adam's moments.
        check_memory(
            "d_in" if self.d_in > self.d_sae else "d_sae",
            8 * self.d_in * self.d_sae,
            f"an SAE of {self.d_sae:,} latents in {self.d_in:,} dimensions (W_dec and W_enc, float32)",
        )
        self.decoder_init_norm = as_positive("decoder_init_norm", decoder_init_norm)
        self.seed = as_optional_seed(seed)
        w_dec = random_unit_rows(self.d_sae, self.d_in, self.seed) * self.decoder_init_norm
        self.W_dec = nn.Parameter(w_dec.to(device))
        if not self.tied_encoder:
            self.W_enc = nn.Parameter(w_dec.T.contiguous().to(device))
            self.b_enc = nn.Parameter(torch.zeros(self.d_sae, device=device))
        self.b_dec = nn.Parameter(torch.zeros(self.d_in, device=device))
        self.register_buffer("n_steps", torch.tensor(0, dtype=torch.int64, device=device))

    # -- forward ------------------------------------------------------------------------------------------

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise ConfigTypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 2 or x.shape[1] != self.d_in:
            raise ConfigError(f"x must have shape [batch, {self.d_in}], got {list(x.shape)}")
        return x.to(self.W_dec.dtype)

    def _check_dead_mask(self, dead_mask: torch.Tensor | None) -> torch.Tensor | None:
        if dead_mask is None:
            return None
        if not isinstance(dead_mask, torch.Tensor) or dead_mask.shape != (self.d_sae,):
            raise ConfigError(f"dead_mask must be a tensor of shape [{self.d_sae}] or None")
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

    def _reconstruct(
        self, x: torch.Tensor, dead_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The plain training pass of architectures without AuxK: checked ``x``, ``z = encode(x)``,
        ``x̂ = decode(z)`` (``dead_mask`` is checked and unused)."""
        x = self._check_input(x)
        self._check_dead_mask(dead_mask)
        z = self.encode(x)
        return x, z, self.decode(z)

    @torch.no_grad()
    def after_step(self, output: TrainOutput) -> None:
        """Post-optimiser-step hook (call once per step with that step's output)."""
        self.n_steps += 1

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Rescales ``W_dec`` rows to unit norm in place."""
        self.W_dec.div_(self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-12))

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
        check_fresh_dir(path, overwrite=overwrite, hint="pass overwrite=True to replace the SAE there")
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

        from synthsae.errors import FileFormatError

        path = Path(path)
        config = read_json(path / CONFIG_FILE)
        if not isinstance(config, dict):
            raise FileFormatError(
                f"{path / CONFIG_FILE}: must hold a JSON object, got {type(config).__name__}",
                path / CONFIG_FILE,
            )
        architecture = config.pop("architecture", None)
        if not isinstance(architecture, str) or architecture not in ARCHITECTURES:
            raise FileFormatError(
                f"{path / CONFIG_FILE}: unknown architecture {architecture!r}", path / CONFIG_FILE
            )
        target = ARCHITECTURES[architecture]
        if cls is not SAE and not issubclass(target, cls):
            raise FileFormatError(f"{path} holds a {architecture!r} SAE, not {cls.architecture!r}", path)
        with torch.random.fork_rng(devices=[]):  # building the module must not consume global RNG state
            try:
                sae = target(**config, device=device)
            except (TypeError, ValueError) as e:  # unknown, missing or invalid settings
                raise FileFormatError(f"{path / CONFIG_FILE}: {e}", path / CONFIG_FILE) from None
        try:
            state = load_file(str(path / WEIGHTS_FILE), device=str(sae.W_dec.device))
            sae.load_state_dict(state, strict=True)
        except Exception as e:  # unreadable file, or tensors that do not fit the config
            raise FileFormatError(
                f"{path / WEIGHTS_FILE}: {type(e).__name__}: {e}", path / WEIGHTS_FILE
            ) from None
        return sae


def load_sae(path: str | os.PathLike[str], device: torch.device | str | None = None) -> SAE:
    """Loads any saved SAE, dispatching on ``cfg.json``'s ``"architecture"``."""
    return SAE.load(path, device=device)
