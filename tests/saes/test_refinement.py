"""Leave-one-out refinement: the score against a direct "remove the latent, reconstruct again"
computation, and the wrapper as an SAE that evaluate() scores."""

from __future__ import annotations

import pytest
import torch

import synthsae
from synthsae import saes
from synthsae.errors import ConfigTypeError
from synthsae.saes.refinement import (
    LeaveOneOutRefined,
    effective_rows,
    leave_one_out_refine,
    leave_one_out_scores,
)


@pytest.mark.parametrize("arch", ["topk", "relu", "jumprelu", "mp"])
def test_score_is_the_left_out_residual_projected_on_the_latent(arch):
    # score_l = (x − decode(z without l))·u_l, computed here by decoding z with l zeroed, for every
    # active latent of every row (float64: the two computations agree to rounding)
    torch.manual_seed(0)
    sae = saes.create_sae(arch, 12, 40, l0=4, seed=1).double()
    with torch.no_grad():
        sae.b_dec.copy_(torch.randn(12, dtype=torch.float64) * 0.1)
        if hasattr(sae, "b_enc"):
            sae.b_enc.add_(0.3)  # ReLU and JumpReLU: make some latents fire at initialisation
    x = torch.randn(16, 12, dtype=torch.float64)
    with torch.no_grad():
        z = sae.encode(x)
        u = effective_rows(sae)
        scores = leave_one_out_scores(x, z, sae.decode(z), u)
        active = (z != 0).nonzero().tolist()
        assert len(active) > 10
        for row, latent in active:
            without = z[row].clone()
            without[latent] = 0
            residual = x[row] - sae.decode(without[None])[0]
            assert float(scores[row, latent]) == pytest.approx(
                float(residual @ u[latent]), rel=1e-9, abs=1e-12
            )


def test_refine_drops_exactly_the_latents_at_or_below_tau():
    # a decoder of orthonormal rows and an input made of two of them: latent 0 carries +2, latent 1
    # +0.5, latent 2 is active with a wrong coefficient but the input has nothing along it (score 0)
    sae = saes.ReLUSAE(4, 3, 1.0, seed=0).double()
    with torch.no_grad():
        sae.W_dec.copy_(torch.eye(3, 4, dtype=torch.float64))
        sae.b_dec.zero_()
    x = torch.tensor([[2.0, 0.5, 0.0, 0.0]], dtype=torch.float64)
    z = torch.tensor([[1.5, 0.5, 0.7]], dtype=torch.float64)
    # x̂ = (1.5, 0.5, 0.7, 0); r = (0.5, 0, −0.7, 0); scores = r·u_l + z_l = 2.0, 0.5, 0.0
    assert leave_one_out_scores(x, z, sae.decode(z), effective_rows(sae)).tolist() == [[2.0, 0.5, 0.0]]
    assert leave_one_out_refine(sae, x, z).tolist() == [[1.5, 0.5, 0.0]]
    assert leave_one_out_refine(sae, x, z, tau=1.0).tolist() == [[1.5, 0.0, 0.0]]
    # a negative latent (bidirectional SAEs) is kept when the residual without it points its way:
    # x = (2, −0.5, 0, 0), z = (1.5, −0.5, 0.3): r = (0.5, 0, −0.3, 0); scores 2.0, −0.5, 0.0;
    # signed: 2.0, 0.5, 0.0 → latents 0 and 1 stay
    x = torch.tensor([[2.0, -0.5, 0.0, 0.0]], dtype=torch.float64)
    z = torch.tensor([[1.5, -0.5, 0.3]], dtype=torch.float64)
    assert leave_one_out_refine(sae, x, z).tolist() == [[1.5, -0.5, 0.0]]


def test_rows_are_the_decoders_effective_rows():
    # TopK's rescaled decode uses unit directions; ReLU's decode uses W_dec as it is
    topk = saes.TopKSAE(8, 16, 3, seed=0)
    norms = topk.W_dec.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(effective_rows(topk), topk.W_dec.detach() / norms)
    relu = saes.ReLUSAE(8, 16, 1.0, seed=0)
    torch.testing.assert_close(effective_rows(relu), relu.W_dec.detach())


def test_wrapper_is_scored_by_evaluate():
    world = synthsae.World(synthsae.preset("tiny"), show_progress=False)
    sae = saes.TopKSAE(world.hidden_dim, 64, 6, seed=0)
    refined = LeaveOneOutRefined(sae, tau=0.0)
    x = world.sample(256, seed=0)
    with torch.no_grad():
        z, z_refined = sae.encode(x), refined.encode(x)
    assert ((z_refined == 0) | (z_refined == z)).all() and (z_refined != 0).sum() <= (z != 0).sum()
    result = synthsae.evaluate(refined, world, num_samples=2048, show_progress=False, extended=False)
    assert (
        result.sae_l0
        <= synthsae.evaluate(sae, world, num_samples=2048, show_progress=False, extended=False).sae_l0
    )
    with pytest.raises(ConfigTypeError, match="encode"):
        LeaveOneOutRefined(object())
    with pytest.raises(TypeError, match="tau"):
        LeaveOneOutRefined(sae, tau="high")  # type: ignore[arg-type]
