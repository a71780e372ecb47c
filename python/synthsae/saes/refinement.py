"""Leave-one-out refinement of an SAE's latents at inference, for any SAE with a linear decoder.

After encoding, each active latent ``l`` is scored by how much of the input it explains *with itself
left out*: with ``x̂ = decode(z)``, ``r = x − x̂`` and ``u_l = decode(e_l) − decode(0)`` (what one unit of
``l`` adds to the reconstruction; ``W_dec_l`` for ``z·W_dec + b``, the unit row for the TopK family's
rescaled decode),

    score_l = (r + z_l·u_l)·u_l = r·u_l + z_l·‖u_l‖²,

the projection on ``u_l`` of the residual the reconstruction would have without ``l``. A latent is kept
only where ``sign(z_l)·score_l > τ``; the others are set to 0 (one pass, all latents scored against
the same ``z``). For the usual non-negative latents that is the published rule ``score_l > τ``; a
negative latent (AbsTopK) is kept where the left-out residual points the other way, as far.
Described as an inference-time refinement for SynthSAEBench SAEs in a comment on "Letting Claude do
Autonomous Research to Improve SAEs" (LessWrong, 2026-03) and the bigsnarfdude gist (2026-03-15):
``proj = (x − x̂)·W_decᵀ + z·‖W_dec‖²``, keep where ``proj > τ``.

:class:`LeaveOneOutRefined` wraps an SAE so that ``encode`` refines (``evaluate`` scores the wrapped
SAE like any other).
"""

from __future__ import annotations

from typing import Any

import torch

from synthsae._validate import as_float
from synthsae.errors import ConfigTypeError


def effective_rows(sae: Any) -> torch.Tensor:
    """``u [d_sae, d_in]``: ``decode(e_l) − decode(0)`` for every latent (no gradient), in the
    decoder's dtype and device."""
    d_sae, device, dtype = sae.W_dec.shape[0], sae.W_dec.device, sae.W_dec.dtype
    with torch.no_grad():
        zero = sae.decode(torch.zeros(1, d_sae, device=device, dtype=dtype))
        rows = []
        for lo in range(0, d_sae, 1024):  # 1,024 unit latents decoded at a time
            n = min(1024, d_sae - lo)
            units = torch.zeros(n, d_sae, device=device, dtype=dtype)
            units[torch.arange(n), torch.arange(lo, lo + n)] = 1
            rows.append(sae.decode(units) - zero)
        return torch.cat(rows)


def leave_one_out_scores(
    x: torch.Tensor, z: torch.Tensor, x_hat: torch.Tensor, u: torch.Tensor
) -> torch.Tensor:
    """``score [b, d_sae]``: ``(x − x̂)·u_lᵀ + z_l·‖u_l‖²`` for inputs ``x [b, d_in]``, latents
    ``z [b, d_sae]``, their reconstruction ``x̂ [b, d_in]`` and effective rows ``u [d_sae, d_in]``
    (meaningful where ``z_l ≠ 0``)."""
    return (x - x_hat) @ u.T + z * u.square().sum(dim=-1)


def leave_one_out_refine(sae: Any, x: torch.Tensor, z: torch.Tensor, tau: float = 0.0) -> torch.Tensor:
    """``z`` with every active latent whose signed leave-one-out score ``sign(z_l)·score_l`` is
    ``≤ tau`` set to 0 ``[b, d_sae]``."""
    tau = as_float("tau", tau)
    u = effective_rows(sae)
    scores = leave_one_out_scores(x, z, sae.decode(z), u) * z.sign()
    return torch.where(scores > tau, z, torch.zeros_like(z))


class LeaveOneOutRefined(torch.nn.Module):
    """``sae`` whose ``encode`` applies :func:`leave_one_out_refine` at threshold ``tau``; ``decode``
    and ``W_dec`` are the SAE's. Inference only (the refinement has no gradient of its own)."""

    def __init__(self, sae: Any, tau: float = 0.0) -> None:
        super().__init__()
        for attr in ("encode", "decode", "W_dec"):
            if not hasattr(sae, attr):
                raise ConfigTypeError(f"sae must have encode(x), decode(z) and W_dec; it has no {attr!r}")
        self.sae = sae
        self.tau = as_float("tau", tau)

    @property
    def W_dec(self) -> torch.Tensor:
        """The wrapped SAE's decoder ``[d_sae, d_in]``."""
        w: torch.Tensor = self.sae.W_dec
        return w

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The SAE's latents of ``x [b, d_in]``, refined ``[b, d_sae]``."""
        return leave_one_out_refine(self.sae, x, self.sae.encode(x), self.tau)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The SAE's reconstruction of ``z [b, d_sae]``."""
        out: torch.Tensor = self.sae.decode(z)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
