"""Matching pursuit's score forms (certified, Gram-updated, recomputed) against a copy of the plain loop."""

from __future__ import annotations

import pytest
import torch

from synthsae._validate import as_int
from synthsae.errors import ConfigError
from synthsae.saes.base import mse
from synthsae.saes.matching_pursuit import (
    MatchingPursuitSAE,
    certified_picks,
    choose_method,
    gram_score_tolerance,
    matching_pursuit,
    pursue,
    use_gram,
)


def _reference_mp(
    residual: torch.Tensor,
    W_dec: torch.Tensor,
    max_iterations: int,
    *,
    residual_threshold: float = 0.0,
    stop_on_duplicate_support: bool = False,
    trace: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> torch.Tensor:
    """The oracle: the plain matching-pursuit loop, recomputing ``residual @ W_dec.T`` at every
    iteration; ``trace`` (if given) receives each iteration's ``(index, relu(scores))``."""
    max_iterations = as_int("max_iterations", max_iterations)
    batch = residual.shape[0]
    d_sae = W_dec.shape[0]
    acts = residual.new_zeros(batch, d_sae)
    done = torch.zeros(batch, dtype=torch.bool, device=residual.device)
    support = torch.zeros(batch, d_sae, dtype=torch.bool, device=residual.device)
    use_threshold = residual_threshold > 0
    for _ in range(max_iterations):
        with torch.no_grad():
            scores = (residual @ W_dec.T).relu()
            index = scores.argmax(dim=1)
            if trace is not None:
                trace.append((index, scores))
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


def _unit_rows(rows: int, cols: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    w = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (w / w.norm(dim=-1, keepdim=True)).to(dtype)


def _inputs(rows: int, cols: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(
        dtype
    )


def _picks(residual: torch.Tensor, W_dec: torch.Tensor, iterations: int, method: str) -> torch.Tensor:
    """Each iteration's selected latent ``[b, iterations]`` (-1 where its coefficient is 0), read off
    the growth of the coefficients from ``j - 1`` to ``j`` iterations."""
    picks = []
    before = torch.zeros(residual.shape[0], W_dec.shape[0], dtype=residual.dtype)
    for j in range(1, iterations + 1):
        after = matching_pursuit(residual, W_dec, j, method=method)  # type: ignore[arg-type]
        step = (after - before).abs()
        top, index = step.max(dim=1)
        picks.append(torch.where(top > 0, index, -1))
        before = after
    return torch.stack(picks, dim=1)


# ------------------------------------------------------------------------------------------ cost rule


def test_use_gram_cost_rule() -> None:
    # the CPU preset (d_in 192, 1,024 latents, k = 6, batch 1,024) and the 16k sweep (768, 4,096, 25)
    assert use_gram(1024, 192, 1024, 6) and use_gram(1024, 768, 4096, 25)
    # a huge dictionary against a small batch keeps the recomputed form (d_sae > k·b) ...
    assert not use_gram(64, 768, 4096, 25) and not use_gram(1024, 768, 32768, 25)
    # ... and so does a single iteration (the first scores are computed either way)
    assert not use_gram(1024, 768, 16, 1)
    with pytest.raises(ConfigError, match="method"):
        matching_pursuit(torch.zeros(2, 3), torch.eye(3), 2, method="fast")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ float64


@pytest.mark.parametrize("stopping", [{}, {"residual_threshold": 1.5}, {"stop_on_duplicate_support": True}])
def test_float64_forms_identical_picks_outputs_and_gradients(stopping: dict[str, object]) -> None:
    d_in, d_sae, k = 24, 96, 7
    w0 = _unit_rows(d_sae, d_in, seed=1, dtype=torch.float64)
    w0 = w0 * (
        1.0 + 0.2 * torch.rand(d_sae, 1, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    )
    r0 = _inputs(128, d_in, seed=2, dtype=torch.float64)
    outputs = {}
    for method in ("gram", "recomputed"):
        w = w0.clone().requires_grad_(True)
        r = r0.clone().requires_grad_(True)
        acts = matching_pursuit(r, w, k, method=method, **stopping)  # type: ignore[arg-type]
        loss = mse(acts @ w, r)
        loss.backward()
        assert w.grad is not None and r.grad is not None
        outputs[method] = (acts.detach(), loss.detach(), w.grad, r.grad)
    assert torch.equal(_picks(r0, w0, k, "gram"), _picks(r0, w0, k, "recomputed"))
    for gram_value, plain_value in zip(outputs["gram"], outputs["recomputed"], strict=True):
        torch.testing.assert_close(gram_value, plain_value, rtol=0, atol=1e-10)
        assert torch.equal(gram_value, plain_value)  # same picks: bit-identical


# ------------------------------------------------------------------------------------------ float32


def _check_differences_within_bound(
    r: torch.Tensor, w: torch.Tensor, k: int, method: str = "gram"
) -> tuple[int, int]:
    """Rows whose picks differ between ``method`` and the recomputed form and, at the first iteration
    where they differ, the recomputed scores of the two picks (relu'd, from the oracle loop on the
    still shared residual) within ``2·δ`` of :func:`gram_score_tolerance`. Returns ``(rows differing,
    rows)``."""
    trace: list[tuple[torch.Tensor, torch.Tensor]] = []
    _reference_mp(r, w, k, trace=trace)
    oracle = torch.stack([index for index, _ in trace], dim=1)
    gram = _picks(r, w, k, method)
    assert (gram >= 0).all()  # every pick has a positive coefficient here
    assert torch.equal(_picks(r, w, k, "recomputed"), oracle)
    differ = (gram != oracle).any(dim=1)
    for row in differ.nonzero().flatten().tolist():
        t = int((gram[row] != oracle[row]).nonzero()[0])
        scores = trace[t][1][row]
        gap = float(scores[int(oracle[row, t])] - scores[int(gram[row, t])])
        bound = 2 * float(gram_score_tolerance(r[row : row + 1], w, updates=t)[0])
        assert 0 <= gap <= bound, (row, t, gap, bound)
    return int(differ.sum()), r.shape[0]


@pytest.mark.parametrize("method", ["gram", "certified"])
def test_float32_cpu_preset_shape_selections_agree(method: str) -> None:
    # the CPU preset's SAE: d_in 192, 1,024 latents, k = 6, batch 1,024; random unit-norm decoders
    d_in, d_sae, k = 192, 1024, 6
    differing = rows = 0
    for seed in range(2):
        w = _unit_rows(d_sae, d_in, seed=10 + seed)
        r = _inputs(1024, d_in, seed=20 + seed)
        assert use_gram(1024, d_in, d_sae, k)
        gram = matching_pursuit(r, w, k, method=method)  # type: ignore[arg-type]
        plain = matching_pursuit(r, w, k, method="recomputed")
        if method == "gram":  # the same coefficients' arithmetic: equal where the picks are
            same = (gram == plain).all(dim=1)
        else:  # coefficients from the core's float32 dot products: equal to float32 rounding
            same = torch.isclose(gram, plain, rtol=1e-5, atol=1e-5).all(dim=1)
        assert float(same.double().mean()) >= 0.999
        d, n = _check_differences_within_bound(r, w, k, method)
        assert d == int((~same).sum())
        differing, rows = differing + d, rows + n
    assert differing <= rows // 1000


def _near_duplicates(d_in: int, d_sae: int) -> torch.Tensor:
    """Unit rows in pairs 1e-6 apart (their scores differ by about 1e-6·‖r‖, a few float32 roundings)."""
    base = _unit_rows(d_sae // 2, d_in, seed=3, dtype=torch.float64)
    nudge = 1e-6 * _unit_rows(d_sae // 2, d_in, seed=4, dtype=torch.float64)
    w = torch.cat([base, base + nudge])
    return (w / w.norm(dim=-1, keepdim=True)).float()


@pytest.mark.parametrize("method", ["gram", "certified"])
def test_float32_near_ties_differ_only_within_bound(method: str) -> None:
    # near-duplicate atoms make near-ties common: the forms disagree with the recomputed one on many
    # rows, each time between two scores within 2·δ
    d_in, d_sae, k = 32, 128, 6
    r = _inputs(2048, d_in, seed=6)
    differing, rows = _check_differences_within_bound(r, _near_duplicates(d_in, d_sae), k, method)
    assert differing > rows // 10  # the bound is checked on many rows


# ------------------------------------------------------------------------------------------ certified


@pytest.mark.parametrize("gram", ["float32", "bfloat16"])
def test_certified_picks_equal_computing_every_score(gram: str) -> None:
    # The certified search skips a latent only when its estimate plus its error bound stays below the
    # pick's exact score, so its picks are those of computing every score at every iteration, bit for
    # bit, whichever Gram matrix (torch's own products here) keeps the estimates: on random rows, on
    # near-duplicates 1e-6 apart and on exact duplicates (ties to the lower index).
    d_in, d_sae, k = 64, 256, 8
    near = _near_duplicates(d_in, d_sae)
    exact = torch.cat([near[: d_sae // 2], near[: d_sae // 2]])
    for w in (_unit_rows(d_sae, d_in, seed=11), near, exact, 1.3 * near):
        r = _inputs(512, d_in, seed=12)
        reference = certified_picks(r, w, k, gram=None)
        every = reference[3]
        assert every == 512 * k * d_sae  # every score at every pick (no row runs out of positive ones)
        picks, coef, final, computed = certified_picks(r, w, k, gram=gram)
        assert torch.equal(picks, reference[0])
        assert torch.equal(coef, reference[1]) and torch.equal(final, reference[2])
        assert computed < every // 8
    # on random rows almost every pick needs only the best estimate's exact score
    r = _inputs(1024, 192, seed=13)
    computed = certified_picks(r, _unit_rows(1024, 192, seed=14), 6, gram=gram)[3]
    assert computed < 1.1 * 1024 * 6


def test_certified_picks_and_gradients_do_not_depend_on_threads() -> None:
    r = _inputs(300, 48, seed=15)
    w = _near_duplicates(48, 160)
    old = torch.get_num_threads()
    seen = []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            seen.append(certified_picks(r, w, 7)[0])
            w_grad = w.clone().requires_grad_(True)
            acts = matching_pursuit(r, w_grad, 7, method="certified")
            mse(acts @ w_grad, r).backward()
            assert w_grad.grad is not None
            seen.append(w_grad.grad)
    finally:
        torch.set_num_threads(old)
    assert all(torch.equal(p, seen[0]) for p in seen[::2])
    assert all(torch.equal(g, seen[1]) for g in seen[1::2])  # gradients too, bit for bit


def test_certified_gradients_match_autograd_of_the_loop() -> None:
    # The Rust core's backward against torch's autograd of the Gram form run in float64 on the same
    # inputs (same picks: checked), through both outputs: the coefficients (decoded with W_dec, so
    # gradients reach W_dec twice) and the final residual. float32 against float64: a few float32
    # roundings of sums of ~k terms of size ‖r‖, so 1e-4 of each gradient's largest entry.
    d_in, d_sae, k = 48, 200, 7
    w0 = 1.1 * _unit_rows(d_sae, d_in, seed=21)
    r0 = _inputs(256, d_in, seed=22)
    results = {}
    for dtype, method in ((torch.float32, "certified"), (torch.float64, "gram")):
        w = w0.to(dtype).clone().requires_grad_(True)
        r = r0.to(dtype).clone().requires_grad_(True)
        acts = matching_pursuit(r, w, k, method=method)  # type: ignore[arg-type]
        _, _, final = pursue(r, w, k, method=method)  # type: ignore[arg-type]
        loss = mse(acts @ w, r) + final.square().sum(dim=-1).mean() + acts.sum(dim=-1).mean()
        loss.backward()
        assert w.grad is not None and r.grad is not None
        results[method] = (acts.detach().double(), final.detach().double(), w.grad.double(), r.grad.double())
    mine, reference = results["certified"], results["gram"]
    assert torch.equal(mine[0] != 0, reference[0] != 0)  # the same picks
    for a, b in zip(mine, reference, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-4 * float(b.abs().max()))


def test_certified_picks_ignore_cpu_autocast() -> None:
    # under bfloat16 autocast the products inside stay float32 (the bounds assume them): same picks
    r = _inputs(256, 64, seed=16)
    w = _near_duplicates(64, 256)
    plain = certified_picks(r, w, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = certified_picks(r, w, 6)
    for a, b in zip(plain[:3], auto[:3], strict=True):
        assert torch.equal(a, b)


def test_certified_rows_without_positive_scores_stop() -> None:
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    r = torch.tensor([[-1.0, -2.0], [2.0, -1.0]])
    picks, coef, final, _ = certified_picks(r, w, 3)
    assert picks.tolist() == [[-1, -1, -1], [0, -1, -1]]
    assert coef.tolist() == [[0, 0, 0], [2, 0, 0]] and final.tolist() == [[-1, -2], [0, -1]]
    expected = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    assert torch.equal(matching_pursuit(r, w, 3, method="certified"), expected)


def test_certified_empty_batch_forward_and_backward() -> None:
    w = _unit_rows(32, 8, seed=17).requires_grad_(True)
    acts = matching_pursuit(torch.zeros(0, 8), w, 3, method="certified")
    assert acts.shape == (0, 32)
    acts.sum().backward()
    assert w.grad is not None and not w.grad.any()


def test_method_choice_and_refusals() -> None:
    r, w = torch.zeros(1024, 192), torch.zeros(1024, 192)
    assert choose_method(r, w, 6, stopping=False, method="auto") == "certified"
    assert choose_method(r, w, 6, stopping=True, method="auto") == "gram"
    assert choose_method(r.double(), w.double(), 6, stopping=False, method="auto") == "gram"
    assert choose_method(r[:8], w, 6, stopping=False, method="auto") == "recomputed"  # d_sae > k·b
    with pytest.raises(ConfigError, match="certified"):
        matching_pursuit(r.double(), w.double(), 2, method="certified")
    with pytest.raises(ConfigError, match="certified"):
        matching_pursuit(r, w, 2, residual_threshold=1.0, method="certified")
    bad = torch.ones(4, 192)
    bad[2, 5] = float("nan")
    # NaN in, NaN out for that row (as the torch forms): a diverged SAE's loss is NaN, which training
    # reports; the other rows as usual
    eye = torch.eye(192)[:64].contiguous()
    picks, coef, final, _ = certified_picks(bad, eye, 2)
    assert (picks[2] == -1).all() and coef[2].isnan().all() and final[2].isnan().all()
    good = certified_picks(bad[[0, 1, 3]], eye, 2)
    assert torch.equal(picks[[0, 1, 3]], good[0]) and torch.equal(final[[0, 1, 3]], good[2])
    assert matching_pursuit(bad, eye, 2).isnan().any(dim=1).tolist() == [False, False, True, False]
    nan_atoms = eye.clone()
    nan_atoms[3, 0] = float("nan")
    assert certified_picks(bad[:1], nan_atoms, 2)[2].isnan().all()
    # lowered float32 matmul precision would break the bounds: refused, and "auto" uses the Gram form
    old = torch.backends.mkldnn.matmul.fp32_precision
    try:
        torch.backends.mkldnn.matmul.fp32_precision = "bf16"
        with pytest.raises(ConfigError, match="full-precision"):
            certified_picks(r, w, 2)
        assert choose_method(r, w, 6, stopping=False, method="auto") == "gram"
    finally:
        torch.backends.mkldnn.matmul.fp32_precision = old
    with pytest.raises(ConfigError, match="gram"):
        certified_picks(r, w, 2, gram="float16")


def test_gram_score_tolerance_covers_score_drift() -> None:
    # the documented bound against the actual gap between updated and recomputed scores, per iteration
    d_in, d_sae, k = 192, 1024, 6
    for scale in (0.5, 1.0, 1.3):
        w = scale * _unit_rows(d_sae, d_in, seed=7)
        r = _inputs(512, d_in, seed=8)
        scores = r @ w.T
        gram = w @ w.T
        residual = r
        for t in range(k):
            gap = (scores - residual @ w.T).abs().max(dim=1).values
            assert (gap <= gram_score_tolerance(r, w, updates=t)).all()
            index = scores.relu().argmax(dim=1)
            atom = w.index_select(0, index)
            coef = (residual * atom).sum(dim=-1).relu()
            residual = residual - coef[:, None] * atom
            scores.addcmul_(coef[:, None], gram.index_select(0, index), value=-1)


# ------------------------------------------------------------------------------------------ exact ties


def test_exact_tie_goes_to_the_lower_index_in_every_form() -> None:
    # rows 0 and 1 are the same atom: scores tie exactly (2, 2, 1); argmax keeps the first maximum, so
    # every form takes latent 0 (c = 2, r = (0, 1)); after it both duplicates score 0 and latent 2 follows.
    # Latent 1 is never used; with rows that are equal but whose products round differently (other
    # positions in a blocked matmul) the tie would be decided by that rounding instead.
    w = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    x = torch.tensor([[2.0, 1.0], [3.0, 0.0]])
    expected = torch.tensor([[2.0, 0.0, 1.0], [3.0, 0.0, 0.0]])
    for method in ("certified", "gram", "recomputed"):
        assert torch.equal(matching_pursuit(x, w, 3, method=method), expected)  # type: ignore[arg-type]
    assert torch.equal(_reference_mp(x, w, 3), expected)


# ------------------------------------------------------------------------------------------ the SAE


@pytest.mark.parametrize(
    "options",
    [{}, {"residual_threshold": 2.0}, {"stop_on_duplicate_support": True}],
)
def test_sae_training_forward_and_backward_match_the_reference_loop(options: dict[str, object]) -> None:
    # The SAE reconstructs x as x - r_k (the pursuit's final residual) instead of decoding the latents
    # with a [b, d_sae] product: the same picks and latents bit for bit, and the reconstruction, loss
    # and gradients equal to the decoded reference up to float64 rounding of two summation orders (k
    # terms of size ~‖x‖ each: ~1e-15 relative, checked at 1e-10).
    d_in, d_sae, k = 32, 64, 5
    sae = MatchingPursuitSAE(d_in, d_sae, k, seed=0, **options).double()  # type: ignore[arg-type]
    with torch.no_grad():
        sae.b_dec.copy_(0.1 * _inputs(1, d_in, seed=1, dtype=torch.float64)[0])
    ref_w = sae.W_dec.detach().clone().requires_grad_(True)
    ref_b = sae.b_dec.detach().clone().requires_grad_(True)
    x = _inputs(256, d_in, seed=2, dtype=torch.float64)
    assert use_gram(256, d_in, d_sae, k)  # the SAE takes the Gram form here

    out = sae.training_forward(x)
    out.loss.backward()
    z = _reference_mp(x - ref_b, ref_w, k, **options)  # type: ignore[arg-type]
    x_hat = z @ ref_w + ref_b
    loss = mse(x_hat, x)
    loss.backward()
    assert torch.equal(out.latents, z.detach())
    assert torch.equal(sae.encode(x).detach(), z.detach())
    assert sae.W_dec.grad is not None and sae.b_dec.grad is not None
    assert ref_w.grad is not None and ref_b.grad is not None
    for mine, reference in (
        (out.reconstruction, x_hat.detach()),
        (out.loss.detach(), loss.detach()),
        (out.losses["mse"], loss.detach()),
        (sae.W_dec.grad, ref_w.grad),
        (sae.b_dec.grad, ref_b.grad),
    ):
        torch.testing.assert_close(mine, reference, rtol=1e-10, atol=1e-10)


def test_sae_float32_step_matches_the_decoded_reference() -> None:
    # float32 at the CPU preset's shape: the same latents; reconstruction and gradients within float32
    # rounding of the two summation orders (a few eps·‖x‖ per element: 1e-5 relative, as the other
    # sparse-step tests)
    d_in, d_sae, k = 192, 1024, 6
    sae = MatchingPursuitSAE(d_in, d_sae, k, seed=0)
    x = _inputs(1024, d_in, seed=3)
    out = sae.training_forward(x)
    out.loss.backward()
    ref_w = sae.W_dec.detach().clone().requires_grad_(True)
    z = matching_pursuit(x - sae.b_dec.detach(), ref_w, k)
    loss = mse(z @ ref_w + sae.b_dec.detach(), x)
    loss.backward()
    assert torch.equal(out.latents, z.detach())
    assert sae.W_dec.grad is not None and ref_w.grad is not None
    torch.testing.assert_close(out.loss.detach(), loss.detach(), rtol=1e-5, atol=0)
    torch.testing.assert_close(
        sae.W_dec.grad, ref_w.grad, rtol=1e-5, atol=1e-5 * float(ref_w.grad.abs().max())
    )
