"""Evaluation: every metric against a plain dense numpy computation, batch-size independence, edge cases,
errors, evaluate() on a world, reconstruction_score, and (where sae_lens is installed) SAELens's own
calculators on the same batches."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment as scipy_lsa

import synthsae
from synthsae import EvalAccumulator, SparseBatch
from synthsae.evaluation.absorption import feature_parents
from synthsae.evaluation.recovery import feature_depths, random_baseline
from synthsae.evaluation.scoring import effective_decoder

# Float metrics are float64 sums of float32 inputs in a different order than numpy's: they agree to
# ~1e-12 relative; 1e-9 leaves room and still catches any wrong term.
RTOL = 1e-9


def to_sparse(a: np.ndarray) -> SparseBatch:
    rows, cols = np.nonzero(a > 0)
    indptr = np.concatenate([[0], np.cumsum((a > 0).sum(1))]).astype(np.int64)
    return SparseBatch(indptr, cols.astype(np.int32), a[rows, cols].astype(np.float32), a.shape)


def r2(mse, var):
    """1 − mse/var, with SAELens's convention for a variance below 1e-10."""
    return np.where(var < 1e-10, (mse < 1e-10).astype(float), 1 - mse / np.where(var < 1e-10, 1.0, var))


def numpy_metrics(x, y, z, a, dec, gt, mean_rows):
    """The definitions of synthsae.evaluation.scoring, computed densely in float64."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    n = len(x)
    out = {
        "true_l0": (a > 0).sum() / n,
        "sae_l0": (z != 0).sum() / n,
        "dead_latents": int(((z != 0).sum(0) == 0).sum()),
    }
    nx, ny = np.linalg.norm(x, axis=1), np.linalg.norm(y, axis=1)
    ok = nx > 1e-6
    out["shrinkage"] = (ny[ok] / nx[ok]).mean() if ok.any() else 0.0
    r = ((x - y) ** 2).sum(1)
    var = (x**2).sum(1).mean() - (x.mean(0) ** 2).sum()
    out["explained_variance"] = float(r2(r.mean(), var))
    mu = x[:mean_rows].mean(0)
    c = ((x - mu) ** 2).sum(1)
    out["explained_variance_per_sample"] = (
        1 - (r[c > 1e-10] / c[c > 1e-10]).mean() if (c > 1e-10).any() else 0.0
    )
    var_d = ((x - x.mean(0)) ** 2).mean(0)
    out["explained_variance_per_dimension"] = r2(((x - y) ** 2).mean(0), var_d).mean()
    dn = dec / np.maximum(np.linalg.norm(dec, axis=1, keepdims=True), 1e-8)
    gn = gt / np.maximum(np.linalg.norm(gt, axis=1, keepdims=True), 1e-8)
    s = np.abs(dn @ gn.T)
    rows, cols = scipy_lsa(1 - s)
    out["mcc"] = s[rows, cols].mean()
    best = s.argmax(1)
    out["uniqueness"] = len(np.unique(best)) / len(dec)
    fires, truth = z != 0, a[:, best] > 0
    tp, fp, fn = (fires & truth).sum(0), (fires & ~truth).sum(0), (~fires & truth).sum(0)
    tn = n - tp - fp - fn
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        rc = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(p + rc > 0, 2 * p * rc / (p + rc), 0.0)
    out.update(precision=p.mean(), recall=rc.mean(), f1=f1.mean(), accuracy=((tp + tn) / n).mean())
    return out, {"latent_precision": p, "latent_recall": rc, "latent_f1": f1, "latent_matched_feature": best}


def numpy_matched(z, a, latent_feature):
    """Matched classification, densely: each latent l with ``latent_feature[l] >= 0`` scored against that
    feature; means over the matched pairs, per-feature precision/recall (0 without a matched latent)."""
    lat = np.flatnonzero(latent_feature >= 0)
    feat = latent_feature[lat]
    fires, truth = z[:, lat] != 0, a[:, feat] > 0
    tp, fp, fn = (fires & truth).sum(0), (fires & ~truth).sum(0), (~fires & truth).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        rc = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(p + rc > 0, 2 * p * rc / (p + rc), 0.0)
    per_p, per_r = np.zeros(a.shape[1]), np.zeros(a.shape[1])
    per_p[feat], per_r[feat] = p, rc
    mean = lambda v: v.mean() if len(v) else 0.0  # noqa: E731
    return (
        {"matched_precision": mean(p), "matched_recall": mean(rc), "matched_f1": mean(f1)},
        {"feature_mcc_precision": per_p, "feature_mcc_recall": per_r},
    )


def random_case(seed, n, d, d_sae, num_features):
    rng = np.random.default_rng(seed)
    gt = rng.normal(size=(num_features, d)).astype(np.float32)
    dec = (gt[rng.integers(0, num_features, d_sae)] + rng.normal(size=(d_sae, d))).astype(np.float32)
    a = np.where(rng.random((n, num_features)) < 0.3, rng.random((n, num_features)) * 3, 0.0).astype(
        np.float32
    )
    a[rng.random((n, num_features)) < 0.05] *= -1  # negative ground truth counts as inactive
    x = (np.maximum(a, 0) @ gt + 0.5).astype(np.float32)
    z = np.where(rng.random((n, d_sae)) < 0.4, rng.normal(size=(n, d_sae)), 0.0).astype(np.float32)
    z[:, 0] = 0.0  # one dead latent
    y = (x + rng.normal(size=x.shape) * 0.7).astype(np.float32)
    return x, y, z, a, dec, gt


def accumulate(x, y, z, a, dec, gt, cuts, mean_rows=5, sparse=True):
    acc = EvalAccumulator(dec, gt, mean_rows=mean_rows)
    for lo, hi in itertools.pairwise(cuts):
        feats = to_sparse(a[lo:hi]) if sparse else a[lo:hi]
        acc.add_batch(x[lo:hi], y[lo:hi], z[lo:hi], feats)
    return acc.compute()


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 40),
    d=st.integers(1, 6),
    d_sae=st.integers(1, 9),
    num_features=st.integers(1, 9),
    data=st.data(),
)
def test_metrics_match_numpy(seed, n, d, d_sae, num_features, data):
    x, y, z, a, dec, gt = random_case(seed, n, d, d_sae, num_features)
    cuts = sorted({0, n, *data.draw(st.lists(st.integers(0, n), max_size=4))})
    got = accumulate(x, y, z, a, dec, gt, cuts)
    want, arrays = numpy_metrics(x, y, z, a, dec, gt, mean_rows=5)
    assert got.num_samples == n
    for key, value in want.items():
        # |cos| is a float32 matrix (as in SAELens): MCC matches the float64 numpy value to float32 rounding
        tol = 1e-5 if key == "mcc" else RTOL
        assert getattr(got, key) == pytest.approx(value, rel=tol, abs=1e-12), key
    for key, value in arrays.items():
        np.testing.assert_allclose(getattr(got, key), value, rtol=RTOL, err_msg=key)
    assert got.dead_latents >= 1
    # Matched classification through the result's own (optimal, checked by mcc above) matching.
    assert (got.latent_mcc_feature >= 0).sum() == min(d_sae, num_features)
    matched, matched_arrays = numpy_matched(z, a, got.latent_mcc_feature)
    for key, value in matched.items():
        assert getattr(got, key) == pytest.approx(value, rel=RTOL, abs=1e-12), key
    for key, value in matched_arrays.items():
        np.testing.assert_allclose(getattr(got, key), value, rtol=RTOL, err_msg=key)


def test_batch_size_and_input_kind_do_not_change_a_bit():
    x, y, z, a, dec, gt = random_case(7, 300, 8, 12, 20)
    whole = accumulate(x, y, z, a, dec, gt, [0, 300], mean_rows=64)
    split = accumulate(x, y, z, a, dec, gt, [0, 1, 63, 64, 65, 200, 300], mean_rows=64)
    dense = accumulate(x, y, z, a, dec, gt, [0, 100, 300], mean_rows=64, sparse=False)
    acc = EvalAccumulator(torch.from_numpy(dec), torch.from_numpy(gt), mean_rows=64)
    t = torch.from_numpy
    acc.add_batch(t(x), t(y), t(z).to_sparse(), t(a))
    tensors = acc.compute()
    for other in (split, dense, tensors):
        assert whole.to_log_dict() == other.to_log_dict()
        np.testing.assert_array_equal(whole.latent_f1, other.latent_f1)
        np.testing.assert_array_equal(whole.feature_mcc_recall, other.feature_mcc_recall)


def test_perfect_sae_scores_one():
    """Decoder = ground truth, latents = true activations, reconstruction = input."""
    world = synthsae.World(synthsae.preset("tiny"))
    feats = world.sample_features(3000, seed=1)
    x = world.hidden_from_features(feats)
    acc = EvalAccumulator(world.feature_vectors, world.feature_vectors)
    acc.add_batch(x, x, torch.from_numpy(feats.to_dense()), feats)
    r = acc.compute()
    assert r.mcc == pytest.approx(1.0, abs=1e-6) and r.uniqueness == 1.0
    assert r.explained_variance == 1.0 and r.explained_variance_per_dimension == 1.0
    assert r.explained_variance_per_sample == 1.0 and r.shrinkage == pytest.approx(1.0, rel=1e-6)
    fired = np.zeros(world.num_features, bool)
    fired[feats.indices] = True
    # a latent is a perfect classifier of its own feature if that feature fired at least once, else dead
    np.testing.assert_array_equal(r.latent_f1, fired.astype(float))
    assert r.dead_latents == (~fired).sum()
    assert r.sae_l0 == r.true_l0 == feats.nnz / 3000
    assert r.accuracy == 1.0
    np.testing.assert_array_equal(r.feature_mcc_latent, np.arange(world.num_features))


def test_explicit_mean_and_no_rows():
    x, y, z, a, dec, gt = random_case(3, 50, 4, 5, 6)
    empty = EvalAccumulator(dec, gt).compute()
    assert empty.num_samples == 0 and empty.dead_latents == 5
    for key in ("true_l0", "sae_l0", "shrinkage", "explained_variance", "precision", "accuracy"):
        assert getattr(empty, key) == 0.0, key
    assert empty.explained_variance_per_sample == 0.0 and empty.explained_variance_per_dimension == 0.0
    mu = np.full(4, 0.25, np.float32)
    acc = EvalAccumulator(dec, gt, mean=mu)
    acc.add_batch(x, y, z, to_sparse(a))
    r = ((x.astype(np.float64) - y) ** 2).sum(1)
    c = ((x.astype(np.float64) - mu) ** 2).sum(1)
    assert acc.compute().explained_variance_per_sample == pytest.approx(1 - (r / c).mean(), rel=RTOL)


def test_degenerate_shapes():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(5, 3)).astype(np.float32)
    acc = EvalAccumulator(np.zeros((0, 3), np.float32), gt)
    acc.add_batch(np.ones((2, 3)), np.ones((2, 3)), np.zeros((2, 0)), np.ones((2, 5)))
    r = acc.compute()
    assert (r.mcc, r.uniqueness, r.f1, r.dead_latents, r.true_l0) == (0.0, 0.0, 0.0, 0, 5.0)
    # constant input: zero variance with zero error counts as fully explained (SAELens's convention)
    assert r.explained_variance == 1.0
    acc = EvalAccumulator(rng.normal(size=(4, 3)), np.zeros((0, 3)))
    acc.add_batch(np.ones((2, 3)), np.zeros((2, 3)), np.ones((2, 4)), np.zeros((2, 0)))
    r = acc.compute()
    assert (r.mcc, r.uniqueness, r.true_l0, r.sae_l0, r.precision) == (0.0, 0.0, 0.0, 4.0, 0.0)
    assert r.explained_variance == 0.0  # zero variance, non-zero error


def test_zero_latents_zero_rows_and_constant_data():
    rng = np.random.default_rng(5)
    dec, gt = rng.normal(size=(6, 4)), rng.normal(size=(7, 4))
    x = rng.normal(size=(20, 4)).astype(np.float32)
    x[3] = 0.0  # a zero-norm row is left out of shrinkage (‖x‖ ≤ 1e-6)
    acc = EvalAccumulator(dec, gt, mean_rows=4)
    acc.add_batch(x, 0.5 * x, np.zeros((20, 6)), np.zeros((20, 7)))
    r = acc.compute()
    assert r.shrinkage == pytest.approx(0.5, rel=1e-12)
    assert (r.sae_l0, r.dead_latents, r.precision, r.recall, r.f1, r.accuracy) == (0.0, 6, 0.0, 0.0, 0.0, 1.0)
    x64 = x.astype(np.float64)
    assert r.explained_variance == pytest.approx(
        1 - (0.25 * (x64**2).sum(1)).mean() / ((x64 - x64.mean(0)) ** 2).sum(1).mean(), rel=RTOL
    )
    const = np.tile(np.float32([1.0, -2.0, 3.0, 0.5]), (10, 1))
    for recon, want in ((const, 1.0), (const + 0.1, 0.0)):
        acc = EvalAccumulator(dec, gt)
        acc.add_batch(const, recon, np.ones((10, 6)), np.ones((10, 7)))
        r = acc.compute()
        # constant data has no variance: fully explained if reconstructed exactly, else 0 (SAELens)
        assert r.explained_variance == r.explained_variance_per_dimension == want
        assert r.explained_variance_per_sample == 0.0  # every row equals the mean: no row has a ratio


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((np.ones((2, 4)), np.ones((2, 3)), np.ones((2, 5)), np.ones((2, 6))), ValueError, "hidden"),
        ((np.ones((2, 3)), np.ones((3, 3)), np.ones((2, 5)), np.ones((2, 6))), ValueError, "reconstruction"),
        ((np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 4)), np.ones((2, 6))), ValueError, "latents"),
        ((np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 5)), np.ones((1, 6))), ValueError, "features"),
        ((np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 5)), np.ones((2, 7))), ValueError, "features"),
        (([[1.0] * 3, [1.0] * 2], np.ones((2, 3)), np.ones((2, 5)), np.ones((2, 6))), TypeError, "hidden"),
        ((np.ones((2, 3)), np.ones((2, 3)), "z", np.ones((2, 6))), TypeError, "latents"),
        (
            (np.ones((2, 3)), np.full((2, 3), "a"), np.ones((2, 5)), np.ones((2, 6))),
            TypeError,
            "reconstruction",
        ),
    ],
)
def test_bad_batches_name_the_argument(args, error, match):
    acc = EvalAccumulator(np.ones((5, 3)), np.eye(6, 3))
    with pytest.raises(error, match=match):
        acc.add_batch(*args)
    assert acc.compute().num_samples == 0  # nothing half-added


def test_bad_sparse_features_rejected():
    acc = EvalAccumulator(np.ones((2, 3)), np.eye(4, 3))
    unsorted = SparseBatch(np.array([0, 2]), np.array([3, 1], np.int32), np.ones(2, np.float32), (1, 4))
    with pytest.raises(ValueError, match="features"):
        acc.add_batch(np.ones((1, 3)), np.ones((1, 3)), np.ones((1, 2)), unsorted)
    with pytest.raises(ValueError, match="mean_rows"):
        EvalAccumulator(np.ones((2, 3)), np.eye(4, 3), mean_rows=0)
    with pytest.raises(ValueError, match="mean"):
        EvalAccumulator(np.ones((2, 3)), np.eye(4, 3), mean=np.ones(2))


class LinearSAE(torch.nn.Module):
    """An SAE whose decoder is a noisy copy of some ground-truth features, encoder its transpose."""

    def __init__(self, world: synthsae.World, d_sae: int, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        pick = torch.randperm(world.num_features, generator=g)[:d_sae]
        w = world.feature_vectors[pick] + 0.1 * torch.randn(d_sae, world.hidden_dim, generator=g)
        self.W_dec = torch.nn.Parameter(w / w.norm(dim=1, keepdim=True))
        self.b_dec = torch.nn.Parameter(world.bias.clone())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        pre = (x - self.b_dec) @ self.W_dec.T
        return torch.where(pre > 1.0, pre, torch.zeros_like(pre))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.W_dec + self.b_dec


def test_evaluate_equals_manual_stream_and_restores_mode():
    world = synthsae.World(synthsae.preset("tiny"))
    sae = LinearSAE(world, 256, seed=0)
    sae.train()
    got = synthsae.evaluate(sae, world, num_samples=5000, batch_size=700, seed=3, show_progress=False)
    assert sae.training
    with torch.no_grad():  # what one unit of each latent adds to the reconstruction
        effective = sae.decode(torch.eye(256)) - sae.decode(torch.zeros(1, 256))
    acc = EvalAccumulator(
        sae.W_dec,
        world.feature_vectors,
        firing_probabilities=world.firing_probabilities,
        feature_depth=feature_depths(world.hierarchy, world.num_features),
        feature_parent=feature_parents(world.hierarchy, world.num_features),
        effective_decoder=effective,
    )
    feats = world.sample_features(5000, seed=3)
    x = world.hidden_from_features(feats)
    with torch.no_grad():
        z = sae.encode(x)
        acc.add_batch(x, sae.decode(z), z, feats)
    manual = acc.compute().to_log_dict()
    assert got.to_log_dict() == {**manual, **random_baseline(world, 256)}
    assert {k for k in got.to_log_dict() if k.startswith("baseline/")} == set(random_baseline(world, 256))
    again = synthsae.evaluate(sae, world, num_samples=5000, batch_size=4096, seed=3, show_progress=False)
    assert again.to_dict() == got.to_dict()
    assert 0 < got.mcc < 1 and 0 < got.f1 < 1 and got.true_l0 > 5
    other = synthsae.evaluate(sae, world, num_samples=5000, seed=4, show_progress=False)
    assert other.true_l0 != got.true_l0  # a different seed is a different stream


def test_evaluate_rejects_bad_arguments():
    world = synthsae.World(synthsae.preset("tiny"))
    with pytest.raises(TypeError, match="W_dec"):
        synthsae.evaluate(object(), world)
    sae = LinearSAE(world, 8, seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        synthsae.evaluate(sae, world, batch_size=0)
    with pytest.raises(TypeError, match="num_samples"):
        synthsae.evaluate(sae, world, num_samples=1.5)
    sae.W_dec = torch.nn.Parameter(torch.ones(8, 5))
    with pytest.raises(ValueError, match="W_dec"):
        synthsae.evaluate(sae, world, num_samples=10)


class FaultySAE(LinearSAE):
    """A LinearSAE whose encode call number ``batch`` (from 0) returns NaN latents in ``rows``
    (``fault="encode"``), or latents there that its decode turns into an inf reconstruction
    (``fault="decode"``); ``fault="everywhere"``: decode returns NaN for every input."""

    MARK = 1e30

    def __init__(self, world: synthsae.World, fault: str, batch: int = 0, rows: tuple[int, ...] = ()) -> None:
        super().__init__(world, 64, seed=0)
        self.fault, self.batch, self.rows, self.calls = fault, batch, list(rows), 0

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        z = super().encode(x)
        if self.calls == self.batch and self.rows:
            z[self.rows, 0] = math.nan if self.fault == "encode" else self.MARK
        self.calls += 1
        return z

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        y = super().decode(z)
        if self.fault == "everywhere":
            return y * math.nan
        y[z[:, 0] == self.MARK] = math.inf
        return y


@pytest.mark.parametrize("extended", [True, False])
@pytest.mark.parametrize(
    ("fault", "output"), [("encode", "latents from encode"), ("decode", "reconstructions from decode")]
)
def test_evaluate_refuses_nan_or_inf_from_the_sae(extended, fault, output):
    world = synthsae.World(synthsae.preset("tiny"))
    sae = FaultySAE(world, fault, batch=2, rows=(7, 1, 7))
    with pytest.raises(ValueError) as info:
        synthsae.evaluate(sae, world, num_samples=500, batch_size=100, extended=extended, show_progress=False)
    assert str(info.value) == (
        f"sae returned NaN/inf {output} in 2 of the 100 rows of batch 2 (evaluation rows 200..299): "
        "batch rows 1, 7"
    )
    assert sae.calls == 3  # stopped at the faulty batch


def test_evaluate_refuses_a_decoder_that_returns_nan_everywhere():
    world = synthsae.World(synthsae.preset("tiny"))
    with pytest.raises(ValueError) as info:  # the extended metrics decode single latents first
        synthsae.evaluate(FaultySAE(world, "everywhere"), world, num_samples=200, show_progress=False)
    assert str(info.value).startswith(
        "sae returned NaN/inf from decode for one unit of latent(s) 0, 1, 2, 3, 4 and 59 more"
    ), str(info.value)
    with pytest.raises(ValueError) as info:
        synthsae.evaluate(
            FaultySAE(world, "everywhere"), world, num_samples=200, extended=False, show_progress=False
        )
    assert str(info.value) == (
        "sae returned NaN/inf reconstructions from decode in 200 of the 200 rows of batch 0 "
        "(evaluation rows 0..199): batch rows 0, 1, 2, 3, 4 and 195 more"
    )
    unit = np.eye(6, 3, dtype=np.float32)
    unit[2, 1] = np.inf
    with pytest.raises(ValueError, match=r"^effective_decoder must be finite"):
        EvalAccumulator(
            np.eye(6, 3), np.eye(4, 3), feature_parent=np.array([-1, 0, 0, -1]), effective_decoder=unit
        )


def test_to_dict_and_log_dict():
    x, y, z, a, dec, gt = random_case(1, 30, 4, 5, 6)
    r = accumulate(x, y, z, a, dec, gt, [0, 30])
    d = r.to_dict()
    assert d["latent_f1"] == r.latent_f1.tolist() and d["mcc"] == r.mcc
    log = r.to_log_dict("final/")
    assert (
        log["final/classification/f1_score"] == r.f1
        and log["final/explained_variance"] == r.explained_variance
    )
    assert all(k.startswith("final/") for k in log)


def test_reconstruction_score_aggregations():
    # sparse_autoencoder's docstring example: clean 2, reconstructed 3, zero-ablated 5 → 2/3
    assert synthsae.reconstruction_score(2.0, 3.0, 5.0).score == pytest.approx(2 / 3)
    s = synthsae.reconstruction_score([1.0, 2.0, 3.0], [2.0, 2.0, 3.5], [3.0, 4.0, 3.0])
    np.testing.assert_allclose(s.per_item[:2], [0.5, 1.0])
    assert math.isnan(s.per_item[2])
    assert s.score == pytest.approx((1.0 + 2.0 - 0.5) / (2.0 + 2.0 + 0.0))
    assert s.mean_of_ratios == pytest.approx(0.75)
    t = synthsae.reconstruction_score(torch.tensor([1.0]), torch.tensor([1.5]), torch.tensor([2.0]))
    assert t.score == pytest.approx(0.5)
    with pytest.raises(ValueError, match="undefined"):
        synthsae.reconstruction_score(1.0, 2.0, 1.0)
    with pytest.raises(ValueError, match="same"):
        synthsae.reconstruction_score([1.0, 2.0], [1.0], [3.0, 3.0])
    with pytest.raises(TypeError, match="loss_clean"):
        synthsae.reconstruction_score("x", 1.0, 2.0)


def test_matches_saelens_calculators():
    pytest.importorskip("sae_lens")
    from sae_lens.evals import ExplainedVarianceCalculator
    from sae_lens.synthetic import evals as sl

    world = synthsae.World(synthsae.preset("tiny"))
    sae = LinearSAE(world, 200, seed=2)
    calcs = {
        "true": sl.L0Calculator(),
        "sae": sl.L0Calculator(),
        "dead": sl.DeadLatentsCalculator(200),
        "shrink": sl.ShrinkageCalculator(),
        "ev": ExplainedVarianceCalculator(),
        "cls": sl.ClassificationMetricsCalculator(sae.W_dec.detach(), world.feature_vectors),
    }
    acc = EvalAccumulator(sae.W_dec, world.feature_vectors)
    with torch.no_grad():
        for start in range(0, 6000, 1500):
            feats = world.sample_features(1500, seed=0, start=start)
            a = torch.from_numpy(feats.to_dense())
            x = world.hidden_from_features(feats)
            z = sae.encode(x)
            y = sae.decode(z)
            acc.add_batch(x, y, z, feats)
            calcs["true"].add_batch(a)
            calcs["sae"].add_batch(z)
            calcs["dead"].add_batch(z)
            calcs["shrink"].add_batch(y, x)
            calcs["ev"].add_batch(y, x)
            calcs["cls"].add_batch(z, a)
    got = acc.compute()
    cls = calcs["cls"].compute()
    assert got.true_l0 == pytest.approx(calcs["true"].compute(), rel=1e-6)
    assert got.sae_l0 == pytest.approx(calcs["sae"].compute(), rel=1e-6)
    assert got.dead_latents == calcs["dead"].compute()
    assert got.shrinkage == pytest.approx(calcs["shrink"].compute(), rel=1e-6)
    assert got.explained_variance == pytest.approx(calcs["ev"].compute(), rel=1e-6)
    for ours, theirs in (
        ("precision", "precision"),
        ("recall", "recall"),
        ("f1", "f1_score"),
        ("accuracy", "accuracy"),
    ):
        assert getattr(got, ours) == pytest.approx(getattr(cls, theirs), rel=1e-6), ours
    assert got.mcc == pytest.approx(
        sl.mean_correlation_coefficient(sae.W_dec.detach(), world.feature_vectors), rel=1e-6
    )
    assert got.uniqueness == sl.feature_uniqueness(sae.W_dec.detach(), world.feature_vectors)


def test_matched_classification_of_planted_saes():
    """The ground-truth dictionary with an oracle encoder scores 1 both ways; a duplicated latent is
    scored against its argmax feature by SAELens's version but against the feature the matching gives it
    (here one it never fires for) by the matched version."""
    rng = np.random.default_rng(3)
    gt = np.linalg.qr(rng.normal(size=(8, 8)))[0][:4].astype(np.float32)  # 4 orthonormal features
    a = np.where(rng.random((400, 4)) < 0.3, 1.0 + rng.random((400, 4)), 0.0).astype(np.float32)
    x = a @ gt
    oracle = EvalAccumulator(gt, gt, mean_rows=8)
    oracle.add_batch(x, x, a, to_sparse(a))
    got = oracle.compute()
    assert got.matched_precision == got.matched_recall == got.matched_f1 == got.f1 == 1.0
    np.testing.assert_array_equal(got.feature_mcc_recall, np.ones(4))
    # Latents 0 and 1 both copy feature 0 (latent 1 slightly off), latents 2, 3 copy features 1, 2: the
    # matching must give latent 1 feature 3, whose rows it fires on only by chance (when feature 0 fires).
    dec = np.stack([gt[0], gt[0] + 0.1 * gt[3], gt[1], gt[2]])
    z = np.stack([a[:, 0], a[:, 0], a[:, 1], a[:, 2]], axis=1)
    dup = EvalAccumulator(dec, gt, mean_rows=8)
    dup.add_batch(x, x, z, to_sparse(a))
    got = dup.compute()
    assert list(got.latent_matched_feature) == [0, 0, 1, 2] and got.f1 == 1.0
    assert list(got.latent_mcc_feature) == [0, 3, 1, 2]
    both = ((a[:, 0] > 0) & (a[:, 3] > 0)).sum()
    recall_1, precision_1 = both / (a[:, 3] > 0).sum(), both / (a[:, 0] > 0).sum()
    assert 0.1 < recall_1 < 0.5  # chance level: the two features fire independently
    assert got.feature_mcc_recall[3] == pytest.approx(recall_1, rel=1e-12)
    assert got.matched_recall == pytest.approx((3 + recall_1) / 4, rel=1e-12)
    assert got.matched_precision == pytest.approx((3 + precision_1) / 4, rel=1e-12)
    assert got.to_log_dict()["matched_classification/recall"] == got.matched_recall


def test_effective_decoder_is_what_one_unit_adds():
    """ReLU decodes z·W_dec + b; the TopK family divides by the decoder norms (rescaled activations)."""
    relu = synthsae.saes.ReLUSAE(8, 16, 1.0, seed=0)
    torch.testing.assert_close(effective_decoder(relu), relu.W_dec.detach(), rtol=0, atol=1e-6)
    topk = synthsae.saes.TopKSAE(8, 16, 3, seed=0)
    unit = topk.W_dec.detach() / topk.W_dec.detach().norm(dim=1, keepdim=True)
    torch.testing.assert_close(effective_decoder(topk, chunk=5), unit, rtol=0, atol=1e-6)
    assert abs(topk.W_dec.detach().norm(dim=1) - 1).max() > 0.5  # the test can tell them apart
