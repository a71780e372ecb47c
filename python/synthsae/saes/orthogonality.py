"""Decoder-orthogonality penalty (``train(ortho_coef=...)``): every latent that fired in the batch pays
``|cos|^P`` to its nearest decoder neighbour, so that a latent cannot sit on top of another one.

Neighbours are by ``|cos|`` over all other decoder rows, fired or not, and the gradient reaches both
rows: a rarely firing latent lying on an active one is pushed off it too. Ties share the penalty (the
mean over equally close neighbours). Finding the neighbours costs ``d_sae² · D``, so
:func:`nearest_pairs` runs every few steps (``ortho_refresh``) and the step itself only recomputes
the ``|cos|`` of the pairs it found, ``O(pairs · D)``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class NeighbourPairs(NamedTuple):
    """Latent ``latents[k]``'s nearest decoder row is ``neighbours[k]``, with weight ``weights[k]``
    (1 / its number of equally near rows); ``[pairs]`` each, every latent at least once."""

    latents: torch.Tensor
    neighbours: torch.Tensor
    weights: torch.Tensor


def unit_rows(w_dec: torch.Tensor) -> torch.Tensor:
    """The rows of ``w_dec`` ``[d_sae, D]`` scaled to unit norm (half precision as float32; zero rows
    stay zero)."""
    w = w_dec.float() if w_dec.dtype in (torch.float16, torch.bfloat16) else w_dec
    return w / w.norm(dim=1, keepdim=True).clamp_min(1e-12)


def nearest_pairs(w_dec: torch.Tensor, chunk: int = 1024) -> NeighbourPairs:
    """Every latent's nearest other decoder row by ``|cos|`` (all of them when tied), without
    gradients, ``chunk`` rows of the ``[d_sae, d_sae]`` matrix at a time."""
    with torch.no_grad():
        u = unit_rows(w_dec)
        d_sae = u.shape[0]
        latents, neighbours, weights = [], [], []
        for lo in range(0, d_sae, chunk):
            c = (u[lo : lo + chunk] @ u.T).abs_()
            rows = torch.arange(c.shape[0], device=c.device)
            c[rows, lo + rows] = -1.0  # not its own neighbour
            tie = c == c.max(dim=1, keepdim=True).values
            r, j = tie.nonzero(as_tuple=True)
            latents.append(lo + r)
            neighbours.append(j)
            weights.append(1.0 / tie.sum(dim=1)[r].float())
    return NeighbourPairs(torch.cat(latents), torch.cat(neighbours), torch.cat(weights))


def ortho_penalty(
    w_dec: torch.Tensor, active: torch.Tensor, pairs: NeighbourPairs, power: float
) -> torch.Tensor:
    """Mean over the active latents (``active`` ``[d_sae]`` bool) of the mean over their nearest
    neighbours of ``|cos(d_ℓ, d_j)|^power``; differentiable in every row it touches. 0 without
    active latents."""
    keep = active[pairs.latents]
    latents, neighbours = pairs.latents[keep], pairs.neighbours[keep]
    if latents.numel() == 0:
        return w_dec.sum() * 0.0
    u = unit_rows(w_dec)
    cos = (u[latents] * u[neighbours]).sum(dim=1).abs()
    return (pairs.weights[keep] * cos.pow(power)).sum() / active.sum()
