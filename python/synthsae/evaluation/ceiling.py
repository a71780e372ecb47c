"""A supervised ceiling for an SAE's F1: a linear probe trained on the ground-truth labels.

An SAE of ``width`` latents is scored by letting each latent classify one feature (its best-|cos|
feature; F1 = the mean over latents). The ceiling gives a linear classifier that *knows* the labels the
same task: one logistic-regression output per feature for the ``width`` most frequent features (the
ones an SAE of that width is expected to learn; the bench's target L0 is their true L0), a
multi-label probe ``D → width`` (``logits = h·P + c``) trained with binary cross-entropy on the world's
rows, fires where its logit is > 0, and is scored on held-out rows with the definitions the SAEs get
(per output TP / (TP + FP), TP / (TP + FN), 2PR / (P + R); means over outputs). A linear read-out of
``h`` is what an SAE's encoder is, so no SAE with a linear encoder and one latent per feature should
beat it; it is not a bound on every method (a non-linear encoder could).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np

from synthsae._validate import as_int, as_positive
from synthsae.evaluation.scoring import _classification
from synthsae.world.model import World
from synthsae.world.sparse import SparseBatch


@dataclasses.dataclass(frozen=True)
class ProbeCeiling:
    """The probe's scores on held-out rows and what produced them."""

    #: Features probed: the ``features`` most frequent ones.
    features: int
    #: Rows trained on (stream ``seed``) and scored on (stream ``seed + 1``).
    train_rows: int
    eval_rows: int
    #: Means over the probe's outputs, as an SAE's over its latents.
    precision: float
    recall: float
    f1: float
    #: Wall-clock seconds: training and scoring.
    seconds: float
    #: The world's fingerprint and the settings, to tell whether a cached ceiling applies.
    world_fingerprint: str
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields."""
        return dataclasses.asdict(self)


def labels(features: SparseBatch, width: int) -> np.ndarray:
    """bool ``[n, width]``: whether each of features ``0 .. width - 1`` is active in each row."""
    n = features.shape[0]
    rows = np.repeat(np.arange(n), np.diff(features.indptr))
    keep = features.indices < width
    out = np.zeros((n, width), dtype=bool)
    out[rows[keep], features.indices[keep]] = True
    return out


def probe_ceiling(
    world: World,
    features: int,
    *,
    train_rows: int = 2_000_000,
    eval_rows: int = 200_000,
    calibration_rows: int = 200_000,
    batch_size: int = 4096,
    lr: float = 0.1,
    seed: int = 0,
    device: Any = None,
    show_progress: bool = True,
) -> ProbeCeiling:
    """Trains the probe on ``train_rows`` rows of stream ``seed`` (Adam at ``lr`` decaying linearly to
    a tenth, batches of ``batch_size``, one pass; the output biases start at the features' log-odds),
    sets each output's
    threshold to the one that maximises its F1 on the next ``calibration_rows`` rows of that stream
    (a linear classifier is a direction *and* a threshold; the cross-entropy's 0.5 is not F1's best
    for rare features), and scores it on ``eval_rows`` rows of stream ``seed + 1``, on ``device``
    (default CPU). Deterministic for a given device and torch thread count."""
    import torch
    from tqdm.auto import tqdm

    features = as_int("features", features, minimum=1, maximum=world.num_features, maximum_name="N")
    train_rows = as_int("train_rows", train_rows, minimum=1)
    eval_rows = as_int("eval_rows", eval_rows, minimum=1)
    calibration_rows = as_int("calibration_rows", calibration_rows, minimum=0)
    batch_size = as_int("batch_size", batch_size, minimum=1)
    lr = as_positive("lr", lr)
    seed = as_int("seed", seed, minimum=0)
    device = torch.device(device or "cpu")
    started = time.perf_counter()

    p = world.firing_probabilities[:features].double().clamp(1e-6, 1 - 1e-6)
    generator = torch.Generator().manual_seed(seed)
    probe = torch.nn.Linear(world.hidden_dim, features, device=device)
    with torch.no_grad():
        probe.weight.copy_(torch.randn(features, world.hidden_dim, generator=generator) * 1e-3)
        probe.bias.copy_((p / (1 - p)).log().float())
    opt = torch.optim.Adam(probe.parameters(), lr=lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    steps = math.ceil(train_rows / batch_size)
    decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1 - 0.9 * step / steps)
    for step in tqdm(range(steps), desc="probe ceiling", disable=not show_progress):
        start = step * batch_size
        n = min(batch_size, train_rows - start)
        h, a = world.sample(n, seed=seed, start=start, return_features=True)
        y = torch.from_numpy(labels(a, features)).to(device=device, dtype=torch.float32)
        loss = loss_fn(probe(h.to(device)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        decay.step()

    if calibration_rows:
        with torch.no_grad():
            probe.bias.sub_(
                _best_thresholds(
                    probe, world, features, seed, train_rows, calibration_rows, batch_size, device
                )
            )

    tp = torch.zeros(features, dtype=torch.float64)
    fp = torch.zeros_like(tp)
    fn = torch.zeros_like(tp)
    with torch.no_grad():
        for start in range(0, eval_rows, batch_size):
            n = min(batch_size, eval_rows - start)
            h, a = world.sample(n, seed=seed + 1, start=start, return_features=True)
            truth = torch.from_numpy(labels(a, features))
            fired = (probe(h.to(device)) > 0).cpu()
            tp += (fired & truth).sum(0)
            fp += (fired & ~truth).sum(0)
            fn += (~fired & truth).sum(0)
    precision, recall, f1 = (
        float(v.mean()) for v in _classification(tp.numpy(), (tp + fp).numpy(), (tp + fn).numpy())
    )
    return ProbeCeiling(
        features=features,
        train_rows=train_rows,
        eval_rows=eval_rows,
        precision=precision,
        recall=recall,
        f1=f1,
        seconds=time.perf_counter() - started,
        world_fingerprint=world.fingerprint(),
        settings={"batch_size": batch_size, "lr": lr, "seed": seed, "calibration_rows": calibration_rows},
    )


#: Logits are binned into this many bins over ``[-_LOGIT_RANGE, _LOGIT_RANGE]`` to find each output's
#: best threshold (resolution 0.05 in the logit).
_BINS, _LOGIT_RANGE = 640, 16.0


def _best_thresholds(
    probe: Any,
    world: World,
    features: int,
    seed: int,
    start: int,
    rows: int,
    batch_size: int,
    device: Any,
) -> Any:
    """float32 ``[features]``: per output, the logit threshold (a bin edge) with the highest F1 on rows
    ``start .. start + rows`` of stream ``seed``; 0 where no threshold gives a positive F1."""
    import torch

    edges = torch.linspace(-_LOGIT_RANGE, _LOGIT_RANGE, _BINS + 1)
    total = torch.zeros(features, _BINS + 2, dtype=torch.float64)
    positive = torch.zeros_like(total)
    with torch.no_grad():
        for first in range(start, start + rows, batch_size):
            n = min(batch_size, start + rows - first)
            h, a = world.sample(n, seed=seed, start=first, return_features=True)
            logits = probe(h.to(device)).cpu().float()
            bins = torch.bucketize(logits, edges).T  # [features, n]: bin b holds edges[b-1] < x <= edges[b]
            truth = torch.from_numpy(labels(a, features)).T.to(torch.float64)
            total.scatter_add_(1, bins, torch.ones_like(truth))
            positive.scatter_add_(1, bins, truth)
    # firing where logit > edges[k] keeps bins k+1 …: TP and fires are suffix sums
    tp = positive.flip(1).cumsum(1).flip(1)[:, 1 : _BINS + 2]  # [features, BINS + 1], k = 0 … BINS
    fires = total.flip(1).cumsum(1).flip(1)[:, 1 : _BINS + 2]
    actual = positive.sum(1, keepdim=True)
    f1 = 2 * tp / (fires + actual).clamp_min(1)
    best = f1.argmax(1)
    return torch.where(f1.max(1).values > 0, edges[best], torch.zeros(features))
