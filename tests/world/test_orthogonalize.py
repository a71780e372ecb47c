"""The dictionary orthogonalization: the Gram form (default) against SAELens's chunked form."""

from __future__ import annotations

import pytest
import torch

import synthsae
from synthsae.world.config import OrthogonalizationConfig
from synthsae.world.model import (
    _chunked_losses,
    orthogonality_gradient,
    orthogonality_objective,
    orthogonalize,
)


def _rows(n: int, d: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def mean_max_abs_cos(e: torch.Tensor) -> float:
    """ρ_mm: mean over rows of the largest |cos| with another row."""
    unit = e / e.norm(dim=1, keepdim=True)
    cos = (unit @ unit.T).abs().fill_diagonal_(0)
    return float(cos.max(dim=1).values.mean())


@pytest.mark.parametrize("chunk_size", [64, 1000])
def test_gram_objective_and_gradient_equal_the_chunked_form(chunk_size: int):
    # Float64 rows of norm 1 ± 5 %, so that every term of the objective matters.
    e = _rows(300, 20, 0, torch.float64)
    e = e / e.norm(dim=1, keepdim=True) * (1 + 0.05 * _rows(300, 1, 1, torch.float64))
    leaf = e.clone().requires_grad_(True)
    chunked = torch.stack(list(_chunked_losses(leaf, chunk_size))).sum()
    chunked.backward()
    assert leaf.grad is not None
    torch.testing.assert_close(orthogonality_objective(e), chunked.detach(), rtol=1e-12, atol=0)
    grad = orthogonality_gradient(e)
    assert float((grad - leaf.grad).abs().max()) <= 1e-12 * float(leaf.grad.abs().max())


def test_gram_and_chunked_runs_agree_and_push_rows_apart():
    vectors = _rows(512, 32, 2)
    config = OrthogonalizationConfig(num_steps=100, lr=3e-4, chunk_size=200)
    gram = orthogonalize(vectors, config, show_progress=False)
    chunked = orthogonalize(vectors, config, show_progress=False, method="chunked")
    # Float32 rounding of two summation orders, through 100 Adam steps (measured ~1e-6 at 2,048 x 128).
    assert float((gram - chunked).abs().max()) <= 1e-5
    torch.testing.assert_close(gram.norm(dim=1), torch.ones(512), rtol=0, atol=1e-6)
    few = _rows(64, 32, 5)  # 2x overcomplete: room to spread (measured ρ_mm 0.445 -> 0.336)
    strong = orthogonalize(few, OrthogonalizationConfig(num_steps=100, lr=0.01), show_progress=False)
    assert mean_max_abs_cos(strong) < mean_max_abs_cos(few) - 0.05
    with pytest.raises(ValueError, match="orthogonalization must be one of"):
        orthogonalize(vectors, config, method="exact")


def test_world_orthogonalization_option():
    config = synthsae.preset("tiny")
    config.orthogonalization = OrthogonalizationConfig(num_steps=20, lr=3e-3)
    gram = synthsae.World(config, show_progress=False)
    chunked = synthsae.World(config, orthogonalization="chunked", show_progress=False)
    plain = synthsae.preset("tiny")
    assert not torch.equal(gram.feature_vectors, synthsae.World(plain, show_progress=False).feature_vectors)
    assert float((gram.feature_vectors - chunked.feature_vectors).abs().max()) <= 1e-5
    assert gram.config == chunked.config
    resolved, _ = synthsae.resolve_world("tiny", orthogonalization="chunked")
    assert resolved.fingerprint() == synthsae.World(plain, show_progress=False).fingerprint()  # none to run
    with pytest.raises(ValueError, match="orthogonalization must be one of"):
        synthsae.World(config, orthogonalization="fast")


@pytest.mark.slow
def test_saelens_orthogonalization_chunked_identical_gram_close():
    pytest.importorskip("sae_lens")
    from sae_lens.synthetic.feature_dictionary import orthogonalize_embeddings

    small = _rows(300, 24, 3)
    config = OrthogonalizationConfig(num_steps=10, lr=0.01, chunk_size=128)
    theirs = orthogonalize_embeddings(small.clone(), num_steps=10, lr=0.01, chunk_size=128)
    assert torch.equal(orthogonalize(small, config, show_progress=False, method="chunked"), theirs)
    # The check: 2,048 features x 128 dims, 100 steps at the presets' lr.
    vectors = _rows(2048, 128, 4)
    config = OrthogonalizationConfig(num_steps=100, lr=3e-4)
    theirs = orthogonalize_embeddings(vectors.clone(), num_steps=100, lr=3e-4)
    assert float((orthogonalize(vectors, config, show_progress=False) - theirs).abs().max()) <= 1e-4
