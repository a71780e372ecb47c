"""Dense torch oracle: SAELens's algorithms, written to be obviously correct, for tests only.

Everything here is O(n·N) and float32 torch like ``sae_lens.synthetic``; the fast paths in
synthsae are checked against it. Not part of the supported API surface.
"""

from __future__ import annotations

import torch


def zipfian_firing_probabilities(
    num_features: int, exponent: float = 1.0, max_prob: float = 0.3, min_prob: float = 0.01
) -> torch.Tensor:
    """SAELens's zipfian formula in float32 torch; ``[N]``."""
    if num_features == 1:
        return torch.tensor([max_prob])
    ranks = torch.arange(1, num_features + 1, dtype=torch.float32)
    q = 1.0 / ranks**exponent
    return min_prob + (max_prob - min_prob) * (q - q.min()) / (q.max() - q.min())


def linear_firing_probabilities(
    num_features: int, max_prob: float = 0.3, min_prob: float = 0.01
) -> torch.Tensor:
    """SAELens's linear formula: ``torch.linspace(max_prob, min_prob, N)``; ``[N]``."""
    if num_features == 1:
        return torch.tensor([max_prob])
    return torch.linspace(max_prob, min_prob, num_features)


def sample_independent(
    firing_probabilities: torch.Tensor,
    n: int,
    *,
    generator: torch.Generator,
    mean_magnitudes: float | torch.Tensor = 1.0,
    std_magnitudes: float | torch.Tensor = 0.0,
) -> torch.Tensor:
    """SAELens ``ActivationGenerator.sample`` without correlation or modifiers; dense ``[n, N]``.

    Every feature of every row draws a Bernoulli(p_i); firing entries get
    ``relu(mean_i + std_i * N(0, 1))``.
    """
    p = torch.as_tensor(firing_probabilities, dtype=torch.float32)
    num_features = p.shape[0]
    mean = torch.as_tensor(mean_magnitudes, dtype=torch.float32).expand(num_features)
    std = torch.as_tensor(std_magnitudes, dtype=torch.float32).expand(num_features)
    rows, cols = torch.bernoulli(p.expand(n, num_features), generator=generator).nonzero(as_tuple=True)
    noise = torch.randn(cols.shape[0], generator=generator)
    out = torch.zeros(n, num_features)
    out[rows, cols] = (mean[cols] + std[cols] * noise).relu()
    return out
