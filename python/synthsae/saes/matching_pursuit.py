"""Matching-pursuit SAE (tied: ``W_enc`` is the property ``W_decᵀ`` and there is no ``b_enc``).

Greedy matching pursuit on ``r = x - b_dec`` for ``k`` iterations: ``l = argmax_l relu(r·W_dec_l)``,
``c = relu(r·W_dec_l)``, ``z_l += c``, ``r -= c·W_dec_l`` (positive inner products only; a latent may be
picked again and accumulates). Stops early per row when ``‖r‖ < residual_threshold`` (if > 0) or, with
``stop_on_duplicate_support``, after an iteration that leaves the support unchanged. Defaults are the
sweep's (``max_iterations = k``, ``residual_threshold = 0``, ``stop_on_duplicate_support = False``;
SAELens's own defaults are ``d_in``, 1e-2 and True). Loss = MSE, backpropagated through all iterations.
Like SAELens the decoder is not renormalised unless ``normalize_decoder=True``, and its rows start at unit
norm (SAELens forces ``decoder_init_norm = 1``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import torch

from synthsae._validate import as_bool, as_int, as_nonnegative
from synthsae.errors import ConfigError
from synthsae.saes.base import SAE, TrainOutput, mse, round_l0


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
    max_iterations = as_int("max_iterations", max_iterations)
    batch = residual.shape[0]
    d_sae = W_dec.shape[0]
    acts = residual.new_zeros(batch, d_sae)
    done = torch.zeros(batch, dtype=torch.bool, device=residual.device)
    support = torch.zeros(batch, d_sae, dtype=torch.bool, device=residual.device)
    use_threshold = residual_threshold > 0
    for _ in range(max_iterations):
        with torch.no_grad():
            index = (residual @ W_dec.T).relu().argmax(dim=1)
        # index_select, not W_dec[index]: the latter's backward (index_put_ with accumulate) sums
        # repeated rows in a thread-dependent order on CPU, so gradients would differ from call to call.
        atom = W_dec.index_select(0, index)  # [b, d_in]
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


class MatchingPursuitSAE(SAE):
    """Matching-pursuit SAE (tied encoder): ``encode`` runs ``k`` greedy MP iterations on
    ``x - b_dec`` over the rows of ``W_dec``; loss = MSE. See :func:`matching_pursuit`.

    ``normalize_decoder=True`` renormalises the decoder rows after every step (``renormalize_decoder``
    holds the setting; the method ``normalize_decoder()`` does it)."""

    architecture: ClassVar[str] = "mp"
    tied_encoder: ClassVar[bool] = True
    direct_l0: ClassVar[bool] = True
    in_paper: ClassVar[bool] = True
    bench_rank: ClassVar[float] = 6

    @classmethod
    def from_l0(cls, d_in: int, d_sae: int, l0: float, **kwargs: Any) -> Self:
        """``k = round(l0)`` pursuit iterations."""
        return cls(d_in, d_sae, round_l0(cls.architecture, l0), **kwargs)

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
            raise ConfigError("decoder_init_norm must be 1.0 for MatchingPursuitSAE (as in SAELens)")
        super().__init__(d_in, d_sae, decoder_init_norm=1.0, seed=seed, device=device)
        self.k = as_int("k", k, minimum=1, maximum=self.d_sae, maximum_name="d_sae")
        self.residual_threshold = as_nonnegative("residual_threshold", residual_threshold)
        self.stop_on_duplicate_support = as_bool("stop_on_duplicate_support", stop_on_duplicate_support)
        self.renormalize_decoder = as_bool("normalize_decoder", normalize_decoder)

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
        x, z, x_hat = self._reconstruct(x, dead_mask)
        loss_mse = mse(x_hat, x)
        return self._output(loss_mse, {"mse": loss_mse}, z, x_hat)

    def fold_decoder_norm(self) -> None:
        """Not supported: the encoder is tied, so the norms cannot move into it (as SAELens)."""
        raise NotImplementedError("fold_decoder_norm is not defined for a tied matching-pursuit SAE")

    @torch.no_grad()
    def after_step(self, output: TrainOutput) -> None:
        if self.renormalize_decoder:
            self.normalize_decoder()
        super().after_step(output)

    def _hparams(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "residual_threshold": self.residual_threshold,
            "stop_on_duplicate_support": self.stop_on_duplicate_support,
            "normalize_decoder": self.renormalize_decoder,
        }
