"""The dense oracle for SAELens's full sampler: ``reference.apply_hierarchy`` and ``reference.sample_world``.

Hand-built trees check the hierarchy semantics exactly; statistical checks are 5-sigma bounds from the
exact sampling distribution stated next to them, with fixed seeds, so they are deterministic. The last
test compares bit for bit with real SAELens and is skipped where ``sae_lens`` is not installed.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import stats

from synthsae import reference

Z = 5.0


def node(index: int | None, *children: dict, me: bool = False, rescale: bool = False) -> dict:
    """One node of SAELens's hierarchy.json format."""
    return {
        "feature_index": index,
        "mutually_exclusive_children": me,
        "scale_children_by_parent": rescale,
        "feature_id": None,
        "children": list(children),
    }


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- parent gating and rescaling -----------------------------------------------------------------------


def test_children_are_gated_by_their_parent() -> None:
    roots = [node(0, node(1, node(2)), node(3))]
    acts = torch.tensor(
        [
            [1.0, 2.0, 3.0, 4.0, 5.0],  # everything on: unchanged
            [0.0, 2.0, 3.0, 4.0, 5.0],  # root off: whole tree off
            [1.0, 0.0, 3.0, 4.0, 5.0],  # middle off: grandchild off, sibling kept
            [1.0, 2.0, 0.0, 0.0, 0.0],
        ]
    )
    expected = torch.tensor(
        [
            [1.0, 2.0, 3.0, 4.0, 5.0],
            [0.0, 0.0, 0.0, 0.0, 5.0],
            [1.0, 0.0, 0.0, 4.0, 5.0],
            [1.0, 2.0, 0.0, 0.0, 0.0],
        ]
    )
    original = acts.clone()
    out = reference.apply_hierarchy(acts, roots, torch.ones(5))
    assert torch.equal(out, expected)
    assert torch.equal(acts, original), "input must not be modified"
    assert out.data_ptr() != acts.data_ptr()


def test_organizational_nodes_pass_the_gate_through_and_count_as_levels() -> None:
    roots = [node(0, node(None, node(1), node(2)))]
    acts = torch.tensor([[0.0, 1.0, 1.0], [2.0, 1.0, 1.0]])
    out = reference.apply_hierarchy(acts, roots, torch.ones(3))
    assert torch.equal(out, torch.tensor([[0.0, 0.0, 0.0], [2.0, 1.0, 1.0]]))


def test_rescale_cascade_over_three_levels() -> None:
    # f1 *= A0 / m0, then f2 *= (rescaled A1) / m1. All values are exact in float32.
    roots = [node(0, node(1, node(2), rescale=True), rescale=True)]
    mean = torch.tensor([4.0, 2.0, 1.0])
    acts = torch.tensor([[2.0, 3.0, 5.0], [0.0, 3.0, 5.0], [8.0, 0.0, 5.0]])
    out = reference.apply_hierarchy(acts, roots, mean)
    assert torch.equal(out, torch.tensor([[2.0, 1.5, 3.75], [0.0, 0.0, 0.0], [8.0, 0.0, 0.0]]))


def test_rescale_flag_belongs_to_the_immediate_parent_node() -> None:
    # The organizational node's own flag decides: rescaling by the featureful ancestor 0 happens under
    # an organizational node that rescales, and not under one that does not (even if 0 itself rescales).
    mean = torch.tensor([4.0, 1.0, 1.0])
    acts = torch.tensor([[2.0, 3.0, 5.0]])
    rescaled = [node(0, node(None, node(1), rescale=True)), node(None, node(2))]
    out = reference.apply_hierarchy(acts, rescaled, mean)
    assert torch.equal(out, torch.tensor([[2.0, 1.5, 5.0]]))
    binary = [node(0, node(None, node(1)), rescale=True)]
    assert torch.equal(reference.apply_hierarchy(acts, binary, mean), acts)


def test_non_positive_mean_of_a_rescaling_parent_raises() -> None:
    roots = [node(0, node(1), rescale=True), node(2, node(3))]
    acts = torch.ones(2, 4)
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="mean_magnitudes must be > 0"):
            reference.apply_hierarchy(acts, roots, torch.tensor([bad, 1.0, 1.0, 1.0]))
    # Non-rescaling parents and leaves may have any mean.
    out = reference.apply_hierarchy(acts, roots, torch.tensor([1.0, 0.0, -1.0, 0.0]))
    assert torch.equal(out, acts)


def test_features_outside_the_hierarchy_are_untouched() -> None:
    roots = [node(0, node(1), node(2), me=True)]
    acts = torch.rand(500, 8, generator=gen(1)) * (torch.rand(500, 8, generator=gen(2)) < 0.5)
    out = reference.apply_hierarchy(acts, roots, torch.ones(8), gen(3))
    assert torch.equal(out[:, 3:], acts[:, 3:])
    assert torch.equal(reference.apply_hierarchy(acts, [], torch.ones(8)), acts)


# --- mutual exclusion ----------------------------------------------------------------------------------


def active_counts(out: torch.Tensor, members: list[int]) -> torch.Tensor:
    return (out[:, members] > 0).sum(dim=1)


def test_mutual_exclusion_keeps_exactly_one_uniformly_chosen_child() -> None:
    n, members = 40_000, [1, 2, 3, 4]
    roots = [node(0, *(node(i) for i in members), me=True)]
    acts = torch.ones(n, 6)
    acts[: n // 4, 0] = 0.0  # a closed gate: children are gated off, not resolved
    acts[n // 4 : n // 2, 2:5] = 0.0  # a single active child: nothing to resolve
    out = reference.apply_hierarchy(acts, roots, torch.ones(6), gen(7))

    assert torch.equal(out[: n // 4, :5], torch.zeros(n // 4, 5))
    assert torch.equal(out[n // 4 : n // 2], acts[n // 4 : n // 2])
    resolved = out[n // 2 :]
    assert bool((active_counts(resolved, members) == 1).all())
    assert torch.equal(resolved[:, [0, 5]], torch.ones(n // 2, 2))
    # The winner is Multinomial(m, 1/4 each): every count within 5 sigma of m/4.
    m, k = resolved.shape[0], len(members)
    counts = (resolved[:, members] > 0).sum(dim=0).numpy()
    z = (counts - m / k) / np.sqrt(m * (1 / k) * (1 - 1 / k))
    assert np.abs(z).max() < Z, z


def test_mutual_exclusion_chooses_only_among_active_children() -> None:
    n = 20_000
    roots = [node(0, node(1), node(2), node(3), me=True)]
    acts = torch.tensor([1.0, 1.0, 0.0, 1.0]).repeat(n, 1)
    out = reference.apply_hierarchy(acts, roots, torch.ones(4), gen(8))
    assert torch.equal(out[:, 2], torch.zeros(n))
    assert bool((active_counts(out, [1, 3]) == 1).all())
    # Binomial(n, 1/2) for child 1.
    z = (float(out[:, 1].sum()) - n / 2) / np.sqrt(n / 4)
    assert abs(z) < Z


def test_organizational_mutual_exclusion_node_is_always_open() -> None:
    n = 30_000
    roots = [node(None, node(0), node(1), node(2), me=True)]
    out = reference.apply_hierarchy(torch.ones(n, 3), roots, torch.ones(3), gen(9))
    assert bool((active_counts(out, [0, 1, 2]) == 1).all())
    counts = (out > 0).sum(dim=0).numpy()
    # Chi-square with 2 degrees of freedom; 5-sigma tail 5.7e-7.
    chi2 = float(((counts - n / 3) ** 2 / (n / 3)).sum())
    assert stats.chi2.sf(chi2, df=2) > stats.norm.sf(Z), counts


def test_mutual_exclusion_runs_before_the_next_level_is_gated() -> None:
    # 0 (ME) -> {1 -> 3, 2 -> 4}: the losing child's subtree is switched off with it.
    roots = [node(0, node(1, node(3)), node(2, node(4)), me=True)]
    out = reference.apply_hierarchy(torch.ones(5000, 5), roots, torch.ones(5), gen(10))
    assert bool((active_counts(out, [1, 2]) == 1).all())
    assert torch.equal(out[:, 3], out[:, 1])
    assert torch.equal(out[:, 4], out[:, 2])


# --- sample_world ----------------------------------------------------------------------------------------


def test_without_correlation_or_hierarchy_it_is_sample_independent() -> None:
    p = torch.linspace(0.05, 0.6, 12)
    kwargs = {"mean_magnitudes": torch.linspace(0.5, 2.0, 12), "std_magnitudes": 0.4}
    a = reference.sample_world(300, firing_probabilities=p, generator=gen(11), **kwargs)
    b = reference.sample_independent(p, 300, generator=gen(11), **kwargs)
    assert torch.equal(a, b)


def test_generator_none_uses_the_global_rng() -> None:
    p = torch.full((10,), 0.3)
    roots = {"roots": [node(0, node(1), node(2), node(3), me=True)]}
    torch.manual_seed(123)
    a = reference.sample_world(200, firing_probabilities=p, std_magnitudes=0.5, hierarchy=roots)
    torch.manual_seed(123)
    b = reference.sample_world(200, firing_probabilities=p, std_magnitudes=0.5, hierarchy=roots)
    assert torch.equal(a, b)
    assert a.dtype == torch.float32 and a.shape == (200, 10) and bool((a >= 0).all())


def copula_problem() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Six features: 0-2 share one strong factor (latent correlation 0.81), 3-5 are independent."""
    p = torch.tensor([0.3, 0.1, 0.02, 0.3, 0.1, 0.02])
    factor = torch.tensor([[0.9], [0.9], [0.9], [0.0], [0.0], [0.0]])
    diag = 1 - (factor**2).sum(dim=1)
    return p, factor, diag


@pytest.mark.parametrize("form", ["low_rank", "dense"])
def test_gaussian_copula_keeps_marginals_and_correlates_firing(form: str) -> None:
    n = 200_000
    p, factor, diag = copula_problem()
    if form == "low_rank":
        corr = {"correlation_factor": factor, "correlation_diag": diag}
    else:
        corr = {"correlation_matrix": factor @ factor.T + torch.diag(diag)}
    out = reference.sample_world(n, firing_probabilities=p, generator=gen(12), **corr)
    fires = (out > 0).double().numpy()
    pn = p.double().numpy()

    # Each feature fires Binomial(n, p_i) times: marginals survive the copula.
    z = (fires.sum(axis=0) - n * pn) / np.sqrt(n * pn * (1 - pn))
    assert np.abs(z).max() < Z, z

    # Joint firing of a correlated pair vs the exact bivariate-normal orthant probability.
    t = stats.norm.isf(pn)
    for i, j in itertools.combinations(range(3), 2):
        q = stats.multivariate_normal(cov=[[1, 0.81], [0.81, 1]]).cdf([-t[i], -t[j]])
        both = float((fires[:, i] * fires[:, j]).sum())
        assert abs(both - n * q) < Z * np.sqrt(n * q * (1 - q)), (i, j, both, n * q)
        assert q > 2 * pn[i] * pn[j]  # strongly above independence
        assert np.corrcoef(fires[:, i], fires[:, j])[0, 1] > 0.2
    # The independent features stay (nearly) uncorrelated: |r| < 5 / sqrt(n).
    assert abs(np.corrcoef(fires[:, 3], fires[:, 4])[0, 1]) < Z / np.sqrt(n)


def test_correlation_arguments_are_checked() -> None:
    p, factor, diag = copula_problem()
    with pytest.raises(ValueError, match="go together"):
        reference.sample_world(4, firing_probabilities=p, correlation_factor=factor)
    with pytest.raises(ValueError, match="not both"):
        reference.sample_world(
            4,
            firing_probabilities=p,
            correlation_factor=factor,
            correlation_diag=diag,
            correlation_matrix=torch.eye(6),
        )


# --- against real SAELens ---------------------------------------------------------------------------------


def test_bit_identical_to_saelens() -> None:
    pytest.importorskip("sae_lens")
    from sae_lens.synthetic.activation_generator import ActivationGenerator
    from sae_lens.synthetic.correlation import generate_random_low_rank_correlation_matrix
    from sae_lens.synthetic.hierarchy import HierarchyConfig, generate_hierarchy

    num_features = 120
    config = HierarchyConfig(
        total_root_nodes=5,
        branching_factor=(2, 4),
        max_depth=3,
        mutually_exclusive_portion=0.6,
        scale_children_by_parent=True,
    )
    hierarchy = generate_hierarchy(num_features, config, seed=0)
    roots = hierarchy.to_dict()["roots"]
    p = torch.rand(num_features, generator=gen(13)) * 0.6 + 0.05
    mean = torch.rand(num_features, generator=gen(14)) + 0.5
    low_rank = generate_random_low_rank_correlation_matrix(num_features, 6, correlation_scale=0.2, seed=0)
    for correlated, std, seed in itertools.product([False, True], [0.0, 0.3], range(3)):
        sampler = ActivationGenerator(
            num_features,
            p,
            std_firing_magnitudes=std,
            mean_firing_magnitudes=mean,
            modify_activations=hierarchy.modifier,
            correlation_matrix=low_rank if correlated else None,
        )
        corr = (
            {"correlation_factor": low_rank.correlation_factor, "correlation_diag": low_rank.correlation_diag}
            if correlated
            else {}
        )
        torch.manual_seed(seed)
        expected = sampler.sample(500)
        torch.manual_seed(seed)
        got = reference.sample_world(
            500,
            firing_probabilities=p,
            mean_magnitudes=mean,
            std_magnitudes=std,
            hierarchy={"roots": roots},
            **corr,
        )
        assert torch.equal(got, expected), (correlated, std, seed)
