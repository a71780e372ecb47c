"""The weight side of an evaluation, from decoder rows ``[d_sae, D]`` and features ``[N, D]``: each
latent's best feature, each feature's best latent, the MCC matching and the latents near each
hierarchy parent (absorption). From the stored ``|cos|`` matrix, or, when that is too large
(:func:`synthsae.evaluation.assignment.streams`), from the blocks the streamed matching computes anyway: the
same figures without ever holding ``[d_sae, N]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import numpy.typing as npt

from synthsae.evaluation.absorption import NearParents
from synthsae.evaluation.assignment import Matching, stored_matching, streamed_matching, streams, unit_abs_cos

if TYPE_CHECKING:
    import torch


class WeightSide(NamedTuple):
    """``|cos|`` figures of decoder rows and features (ties go to the first feature)."""

    #: int64 ``[d_sae]``: each latent's best feature (-1 without features).
    latent_matched_feature: npt.NDArray[np.int64]
    #: float32 ``[d_sae]``: that |cos| (0 without features).
    latent_abs_cos: npt.NDArray[np.float32]
    #: float32 ``[N]``: each feature's best |cos| over the latents (0 without latents).
    feature_best_abs_cos: npt.NDArray[np.float32]
    matching: Matching
    #: The latents near each of ``parents`` (None when no parents were asked for).
    near_parents: NearParents | None


def weight_side(
    d: torch.Tensor,
    g: torch.Tensor,
    parents: npt.NDArray[np.int64] | None = None,
    *,
    streaming: bool | None = None,
    show_progress: bool = False,
) -> WeightSide:
    """The :class:`WeightSide` of unit decoder rows ``d`` and features ``g``
    (:func:`~synthsae.evaluation.assignment.unit_pair`), with the latents near the features ``parents`` (int64
    ``[P]``) when given; ``streaming`` as in :func:`synthsae.mcc`."""
    d_sae, n = d.shape[0], g.shape[0]
    if d_sae == 0 or n == 0 or not streams(d_sae, n, streaming):
        return _stored(d, g, parents)
    return _streamed(d, g, parents, show_progress)


def _stored(d: torch.Tensor, g: torch.Tensor, parents: npt.NDArray[np.int64] | None) -> WeightSide:
    s = unit_abs_cos(d, g)
    d_sae, n = s.shape
    if n == 0:
        latent, latent_cos = np.full(d_sae, -1, dtype=np.int64), np.zeros(d_sae, dtype=np.float32)
    else:
        latent, latent_cos = s.argmax(axis=1).astype(np.int64), s.max(axis=1)
    feature_best = s.max(axis=0) if d_sae else np.zeros(n, np.float32)
    near = None if parents is None else NearParents.of(s[:, parents])
    return WeightSide(latent, latent_cos, feature_best, stored_matching(s), near)


def _streamed(
    d: torch.Tensor, g: torch.Tensor, parents: npt.NDArray[np.int64] | None, show_progress: bool
) -> WeightSide:
    import torch

    d_sae, n = d.shape[0], g.shape[0]
    device = d.device
    swapped = d_sae > n  # the solver streams the smaller side's rows
    latent_cos = torch.full((d_sae,), -1.0, device=device)
    latent = torch.zeros(d_sae, dtype=torch.int64, device=device)
    feature_best = torch.zeros(n, device=device)
    parent_index = None if parents is None else torch.from_numpy(parents).to(device)
    near: list[NearParents] = []

    def on_block(lo: int, block: torch.Tensor) -> None:
        k = block.shape[0]
        if not swapped:  # rows lo … lo + k - 1 of the decoder
            arg = block.argmax(dim=1)
            latent[lo : lo + k] = arg
            latent_cos[lo : lo + k] = block.gather(1, arg[:, None])[:, 0]
            torch.maximum(feature_best, block.amax(dim=0), out=feature_best)
            if parent_index is not None:
                near.append(NearParents.of(block[:, parent_index].cpu().numpy(), lo))
            return
        feature_best[lo : lo + k] = block.amax(dim=1)
        arg = block.argmax(dim=0)
        best = block.gather(0, arg[None, :])[0]
        better = best > latent_cos  # strictly: an earlier block's (lower) feature keeps a tie
        latent[better] = arg[better] + lo
        latent_cos[better] = best[better]
        if parent_index is not None:
            here = torch.nonzero((parent_index >= lo) & (parent_index < lo + k))[:, 0]
            if len(here):
                part = NearParents.of(block[parent_index[here] - lo].T.cpu().numpy())
                near.append(part._replace(ks=here.cpu().numpy()[part.ks]))

    matching = streamed_matching(d, g, on_block=on_block, show_progress=show_progress)
    if parents is not None and not near:
        near.append(NearParents.of(np.zeros((d_sae, 0), np.float32)))
    return WeightSide(
        latent.cpu().numpy(),
        latent_cos.cpu().numpy(),
        feature_best.cpu().numpy(),
        matching,
        None if parents is None else NearParents.concat(near),
    )
