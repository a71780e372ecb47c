"""The sparse training steps (the TopK family, ReLU, JumpReLU) equal the dense reference (``sparse=False``):
same loss, same gradient of every parameter, same latents; and the sparse ops they are built from."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from synthsae.saes import (
    BatchTopKSAE,
    JumpReLUSAE,
    MatryoshkaBatchTopKSAE,
    ReLUSAE,
    TopKSAE,
    create_sae,
)
from synthsae.saes.sparse_ops import Entries, gather_pre, sparse_decode, top_indices

D_IN, D_SAE, BATCH = 24, 96, 40


pytestmark = pytest.mark.usefixtures("single_thread")


def _pair(arch: str, dtype: torch.dtype, **kwargs: Any) -> tuple[Any, Any]:
    """A dense and a sparse SAE with the same random (not initial) weights."""
    if arch == "matryoshka":
        kwargs.setdefault("widths", [8, 32, D_SAE])
    dense = create_sae(arch, D_IN, D_SAE, l0=6, seed=3, sparse=False, **kwargs).to(dtype)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in dense.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=generator, dtype=dtype))
    sparse = create_sae(arch, D_IN, D_SAE, l0=6, seed=3, **kwargs).to(dtype)
    sparse.load_state_dict(dense.state_dict())
    assert sparse.sparse and not dense.sparse
    return dense, sparse


CASES = [
    ("topk", {}),
    ("batchtopk", {}),
    ("batchtopk", {"rescale_acts_by_decoder_norm": False}),
    ("matryoshka", {}),
    ("matryoshka", {"use_matryoshka_aux_loss": False}),
    ("topk", {"rescale_acts_by_decoder_norm": False}),
]


@pytest.mark.parametrize(("dtype", "rtol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize(("arch", "kwargs"), CASES)
@pytest.mark.parametrize("num_dead", [0, 5, 60])  # none; all kept by AuxK (≤ k_aux = 12); top k_aux of 60
def test_sparse_step_equals_dense(
    arch: str, kwargs: dict[str, Any], dtype: torch.dtype, rtol: float, num_dead: int
):
    dense, sparse = _pair(arch, dtype, **kwargs)
    generator = torch.Generator().manual_seed(11)
    x = torch.randn(BATCH, D_IN, generator=generator, dtype=dtype) * 2
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[torch.randperm(D_SAE, generator=generator)[:num_dead]] = True
    outs = []
    for sae in (dense, sparse):
        out = sae.training_forward(x, dead_mask=dead)
        out.loss.backward()
        outs.append(out)
    a, b = outs
    assert torch.equal(a.latents, b.latents)
    assert a.losses.keys() == b.losses.keys()
    for name in a.losses:
        torch.testing.assert_close(b.losses[name], a.losses[name], rtol=rtol, atol=0)
    assert (float(a.losses["auxk"]) > 0) == (num_dead > 0)
    torch.testing.assert_close(
        b.reconstruction, a.reconstruction, rtol=rtol, atol=rtol * float(x.abs().max())
    )
    for (name, p), q in zip(dense.named_parameters(), sparse.parameters(), strict=True):
        assert p.grad is not None and q.grad is not None, name
        scale = float(p.grad.abs().max())
        assert scale > 0, name
        assert float((p.grad - q.grad).abs().max()) <= rtol * scale, name


def test_sparse_is_the_default_saved_and_loaded(tmp_path):
    for cls, args in ((TopKSAE, (4,)), (BatchTopKSAE, (4.5,)), (MatryoshkaBatchTopKSAE, (4, [8, 32]))):
        sae = cls(D_IN, D_SAE, *args)
        assert sae.sparse and sae.config()["sparse"] is True
        dense = cls(D_IN, D_SAE, *args, sparse=False)
        dense.save(tmp_path / cls.architecture)
        assert not type(sae).load(tmp_path / cls.architecture).sparse
    with pytest.raises(TypeError, match="sparse"):
        TopKSAE(D_IN, D_SAE, 4, sparse="yes")  # type: ignore[arg-type]


def test_top_indices_is_exactly_topk():
    generator = torch.Generator().manual_seed(0)
    for n, k in ((10, 3), (5000, 0), (5000, 1), (4096, 4096), (65536, 500), (300_000, 7000)):
        values = torch.randn(n, generator=generator).relu()  # half the values tie at zero
        got = top_indices(values, k)
        assert got.shape == (k,) and got.unique().numel() == k
        want = values.topk(k).values
        torch.testing.assert_close(values[got].sort().values, want.sort().values, rtol=0, atol=0)
    # Every 16th value huge: the sampled threshold is exceeded by fewer than k values, so all are searched.
    values = torch.rand(20_000, generator=generator)
    values[::16] += 100.0
    got = top_indices(values, 2000)
    torch.testing.assert_close(
        values[got].sort().values, values.topk(2000).values.sort().values, rtol=0, atol=0
    )


def test_gather_pre_and_sparse_decode_gradients():
    generator = torch.Generator().manual_seed(1)
    b, d_in, d_sae = 6, 5, 9
    xc = torch.randn(b, d_in, dtype=torch.float64, generator=generator, requires_grad=True)
    w_enc = torch.randn(d_in, d_sae, dtype=torch.float64, generator=generator, requires_grad=True)
    b_enc = torch.randn(d_sae, dtype=torch.float64, generator=generator, requires_grad=True)
    w_dec = torch.randn(d_sae, d_in, dtype=torch.float64, generator=generator, requires_grad=True)
    # Rows with 0, 1 and several entries, a column chosen twice in different rows, columns never chosen.
    entries = Entries.from_flat(torch.tensor([1, 3, 4, 9 + 3, 3 * 9 + 3, 3 * 9 + 8, 5 * 9]), (b, d_sae))
    assert entries.offsets.tolist() == [0, 3, 4, 4, 6, 6]

    def pre(xc: torch.Tensor, w_enc: torch.Tensor, b_enc: torch.Tensor) -> torch.Tensor:
        dense = (xc @ w_enc + b_enc).detach()
        return gather_pre(xc, w_enc, b_enc, dense, entries)

    torch.testing.assert_close(pre(xc, w_enc, b_enc), (xc @ w_enc + b_enc)[entries.rows, entries.cols])
    assert torch.autograd.gradcheck(pre, (xc, w_enc, b_enc))
    weights = torch.randn(entries.rows.numel(), dtype=torch.float64, generator=generator, requires_grad=True)
    dense_z = torch.zeros(b, d_sae, dtype=torch.float64).index_put((entries.rows, entries.cols), weights)
    torch.testing.assert_close(sparse_decode(weights, w_dec, entries), dense_z @ w_dec)
    assert torch.autograd.gradcheck(lambda v, w: sparse_decode(v, w, entries), (weights, w_dec))


@pytest.mark.parametrize("rescale", [True, False])
def test_sparse_step_under_bfloat16_autocast(rescale: bool):
    # The encoder product runs in bfloat16 under autocast; the sparse ops take their tables' dtype, so
    # the step runs and its gradients keep the parameters' float32. Loss within bfloat16 rounding.
    dense, sparse = _pair("batchtopk", torch.float32, rescale_acts_by_decoder_norm=rescale)
    x = torch.randn(BATCH, D_IN, generator=torch.Generator().manual_seed(2)) * 2
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[:30] = True
    losses = []
    for sae in (dense, sparse):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = sae.training_forward(x, dead_mask=dead)
        out.loss.backward()
        losses.append(float(out.loss.detach()))
        for p in sae.parameters():
            assert p.grad is not None and p.grad.dtype == torch.float32 and bool(p.grad.isfinite().all())
    assert losses[1] == pytest.approx(losses[0], rel=0.05)


def test_sparse_step_is_bit_reproducible_on_two_threads():
    # 1,024 rows each choosing its k_aux = 96 of 100 dead latents repeat every dead column ~1,000 times
    # in AuxK's gathers; their gradients must still sum in a fixed order (with advanced indexing, whose
    # backward accumulates in thread order on CPU, the decoder's gradient varied between calls).
    torch.set_num_threads(2)
    x = torch.randn(1024, 192, generator=torch.Generator().manual_seed(4))
    dead = torch.zeros(1024, dtype=torch.bool)
    dead[:100] = True
    grads = []
    for _ in range(4):
        sae = create_sae("batchtopk", 192, 1024, l0=6, seed=3)
        sae.training_forward(x, dead_mask=dead).loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in sae.parameters()]))
    assert all(torch.equal(grads[0], g) for g in grads[1:])


# -- ReLU and JumpReLU ---------------------------------------------------------------------------------------
# Their sparse steps go dense above a density (sparse_ops.RELU_MAX_DENSITY, JUMPRELU_MAX_DENSITY): each
# case runs with the sparse path forced, and with the dense fallback forced, against ``sparse=False``.


def _threshold_pair(
    arch: str, dtype: torch.dtype, seed: int, d_in: int, d_sae: int, **kwargs: Any
) -> tuple[Any, Any]:
    """A dense and a sparse ReLU/JumpReLU with the same random weights; ``b_enc`` lowered so that about
    a fifth of the pre-activations are active."""
    dense = create_sae(arch, d_in, d_sae, l0=6, seed=seed, sparse=False, **kwargs).to(dtype)
    generator = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for p in dense.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=generator, dtype=dtype))
        dense.b_enc.sub_(1.0)
    sparse = create_sae(arch, d_in, d_sae, l0=6, seed=seed, **kwargs).to(dtype)
    sparse.load_state_dict(dense.state_dict())
    assert sparse.sparse and not dense.sparse
    return dense, sparse


THRESHOLD_CASES = [
    ("relu", {}),
    ("relu", {"l1_warm_up_steps": 3}),  # λ = 0 at step 0: the penalty sends no gradient
    ("jumprelu", {}),
    ("jumprelu", {"bandwidth": 0.3, "l0_coefficient": 0.7}),
    ("jumprelu", {"bandwidth": 4.0}),  # a band wider than the active entries
]


@pytest.mark.parametrize(("dtype", "rtol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize(("arch", "kwargs"), THRESHOLD_CASES)
@pytest.mark.parametrize("path", ["sparse", "fallback"])
@pytest.mark.parametrize(("seed", "d_in", "d_sae", "batch"), [(3, 24, 96, 40), (5, 7, 50, 33)])
def test_threshold_sparse_step_equals_dense(
    monkeypatch: pytest.MonkeyPatch,
    arch: str,
    kwargs: dict[str, Any],
    dtype: torch.dtype,
    rtol: float,
    path: str,
    seed: int,
    d_in: int,
    d_sae: int,
    batch: int,
):
    from synthsae.saes import jumprelu, relu

    density = 2.0 if path == "sparse" else 0.0
    monkeypatch.setattr(relu, "RELU_MAX_DENSITY", density)
    monkeypatch.setattr(jumprelu, "JUMPRELU_MAX_DENSITY", density)
    dense, sparse = _threshold_pair(arch, dtype, seed, d_in, d_sae, **kwargs)
    generator = torch.Generator().manual_seed(seed + 200)
    x = torch.randn(batch, d_in, generator=generator, dtype=dtype) * 2
    x[:3] = dense.b_dec.detach()  # pre = b_enc < 0 (and < θ - ε/2): rows with no active latent
    with torch.no_grad():
        pre = (x - dense.b_dec) @ dense.W_enc + dense.b_enc
    threshold = dense.threshold.detach() if arch == "jumprelu" else 0.0
    active = pre > threshold
    assert not active[:3].any() and 0.02 < float(active.double().mean()) < 0.5
    if arch == "jumprelu":
        band = ((pre - threshold) / dense.bandwidth).abs() < 0.5
        assert (band & active).any() and (band & ~active).any()  # band entries on both sides of θ
    outs = []
    for sae in (dense, sparse):
        out = sae.training_forward(x)
        out.loss.backward()
        outs.append(out)
    a, b = outs
    assert torch.equal(a.latents, b.latents)
    assert a.losses.keys() == b.losses.keys()
    for name in a.losses:
        torch.testing.assert_close(b.losses[name], a.losses[name], rtol=rtol, atol=0)
    torch.testing.assert_close(b.loss, a.loss, rtol=rtol, atol=0)
    torch.testing.assert_close(
        b.reconstruction, a.reconstruction, rtol=rtol, atol=rtol * float(x.abs().max())
    )
    for (name, p), q in zip(dense.named_parameters(), sparse.parameters(), strict=True):
        assert p.grad is not None and q.grad is not None, name
        scale = float(p.grad.abs().max())
        assert scale > 0, name
        assert float((p.grad - q.grad).abs().max()) <= rtol * scale, name
    # after_step reads the same batch L0 from both (the autotuner's input)
    for sae, out in ((dense, a), (sparse, b)):
        sae.after_step(out)
    if getattr(dense, "autotuner", None) is not None:
        assert float(sparse.autotuner.smoothed_l0) == float(dense.autotuner.smoothed_l0)


@pytest.mark.parametrize("arch", ["relu", "jumprelu"])
def test_threshold_sparse_step_chooses_by_density(monkeypatch: pytest.MonkeyPatch, arch: str):
    # Above the density the dense fallback runs (dense_pre), below it the sparse one (gather_pre).
    from synthsae.saes import jumprelu, relu, sparse_ops

    calls: list[str] = []
    for name in ("dense_pre", "gather_pre"):
        original = getattr(sparse_ops, name)
        monkeypatch.setattr(
            relu if arch == "relu" else jumprelu,
            name,
            lambda *args, _f=original, _n=name: calls.append(_n) or _f(*args),
        )
    _, sparse = _threshold_pair(arch, torch.float32, 3, D_IN, D_SAE)
    x = torch.randn(BATCH, D_IN, generator=torch.Generator().manual_seed(1)) * 2
    with torch.no_grad():
        sparse.b_enc.sub_(2.0)  # few pre-activations active or in the band
    sparse.training_forward(x)
    with torch.no_grad():
        sparse.b_enc.add_(10.0)  # most pre-activations active (and above the band)
    sparse.training_forward(x)
    assert calls == ["gather_pre", "dense_pre"]


def test_threshold_sparse_step_under_bfloat16_autocast():
    x = torch.randn(BATCH, D_IN, generator=torch.Generator().manual_seed(2)) * 2
    for arch in ("relu", "jumprelu"):
        dense, sparse = _threshold_pair(arch, torch.float32, 3, D_IN, D_SAE)
        losses = []
        for sae in (dense, sparse):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = sae.training_forward(x)
            out.loss.backward()
            losses.append(float(out.loss.detach()))
            for p in sae.parameters():
                assert p.grad is not None and p.grad.dtype == torch.float32 and bool(p.grad.isfinite().all())
        assert losses[1] == pytest.approx(losses[0], rel=0.05)


def test_threshold_sparse_is_the_default_saved_and_loaded(tmp_path):
    import json

    for cls, args in ((ReLUSAE, (0.5,)), (JumpReLUSAE, (4.0,))):
        sae = cls(D_IN, D_SAE, *args)
        assert sae.sparse and sae.config()["sparse"] is True
        cls(D_IN, D_SAE, *args, sparse=False).save(tmp_path / cls.architecture)
        assert not cls.load(tmp_path / cls.architecture).sparse
        # a cfg.json written before the option existed loads with sparse steps
        path = tmp_path / cls.architecture / "cfg.json"
        config = json.loads(path.read_text())
        del config["sparse"]
        path.write_text(json.dumps(config))
        assert cls.load(tmp_path / cls.architecture).sparse
        with pytest.raises(TypeError, match="sparse"):
            cls(D_IN, D_SAE, *args, sparse=1)
