"""CUDA paths against their CPU counterparts (``pytest -m cuda``; skipped without a CUDA device)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import synthsae
from synthsae import saes
from synthsae.datasets.stream import ActivationStream
from synthsae.training.loop import train

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.fixture(scope="module")
def world() -> synthsae.World:
    return synthsae.World(synthsae.preset("tiny"), show_progress=False)


def test_to_torch_on_cuda_equals_cpu(world):
    feats = world.sample_features(3000, seed=0)
    for layout in ("csr", "dense"):
        cpu, gpu = feats.to_torch(layout=layout), feats.to_torch(device="cuda", layout=layout)
        assert gpu.device.type == "cuda"
        assert torch.equal(gpu.cpu().to_dense(), cpu.to_dense())


def test_world_sample_on_cuda_equals_cpu(world):
    cpu = world.sample(4096, seed=3, start=100)
    gpu = world.sample(4096, seed=3, start=100, device="cuda")
    assert gpu.device.type == "cuda" and gpu.dtype == torch.float32
    # Float32 a·W + b summed in another order: rounding relative to the row's magnitudes.
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-5, atol=1e-5 * float(cpu.abs().max()))


def test_activation_stream_on_cuda_yields_the_cpu_rows(world):
    cpu = list(ActivationStream(world, 512, seed=5, num_batches=4))
    gpu = list(ActivationStream(world, 512, seed=5, num_batches=4, device="cuda"))
    assert len(cpu) == len(gpu) == 4
    for a, b in zip(cpu, gpu, strict=True):
        assert b.device.type == "cuda"
        torch.testing.assert_close(b.cpu(), a, rtol=1e-5, atol=1e-5 * float(a.abs().max()))


def test_evaluate_on_cuda_equals_cpu(world):
    sae = saes.BatchTopKSAE(world.hidden_dim, 128, 8, seed=0)
    train(sae, world, total_samples=200 * 512, batch_size=512, lr=1e-3, show_progress=False)
    sae.eval()
    cpu = synthsae.evaluate(sae, world, num_samples=20_000, seed=1, show_progress=False)
    gpu = synthsae.evaluate(
        sae.to("cuda"), world, num_samples=20_000, seed=1, device="cuda", show_progress=False
    )
    for field in dataclasses.fields(cpu):
        a, b = getattr(cpu, field.name), getattr(gpu, field.name)
        if isinstance(a, float | int):
            assert b == pytest.approx(a, rel=1e-5, abs=1e-5), field.name


def test_train_on_cuda_with_bf16_autocast_reduces_the_loss(world):
    sae = saes.BatchTopKSAE(world.hidden_dim, 128, 8, seed=0, device="cuda")
    history = train(
        sae,
        world,
        total_samples=50 * 512,
        batch_size=512,
        lr=1e-3,
        device="cuda",
        autocast=True,
        log_every=1,
        show_progress=False,
    )
    losses = np.array([r["loss"] for r in history.records])
    assert len(losses) == 50 and losses[-10:].mean() < 0.8 * losses[:5].mean()


def test_train_many_on_cuda_equals_training_alone(world):
    """Each SAE of a group on the GPU ends as ``train`` leaves it alone on the GPU (same kernels on the
    same batches)."""
    kw = {"total_samples": 16 * 256, "batch_size": 256, "lr": 1e-3, "device": "cuda", "show_progress": False}
    archs = ["batchtopk", "relu", "jumprelu", "mp"]
    alone = [saes.create_sae(a, world.hidden_dim, 64, l0=4, seed=0) for a in archs]
    for sae in alone:
        train(sae, world, **kw)
    together = [saes.create_sae(a, world.hidden_dim, 64, l0=4, seed=0) for a in archs]
    synthsae.train_many(together, world, **kw)
    for a, b in zip(alone, together, strict=True):
        for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            assert torch.equal(x, y), name
