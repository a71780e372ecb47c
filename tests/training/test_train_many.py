"""train_many: several SAEs on one stream end exactly as if each were trained alone (bit for bit: each
SAE's step is the same arithmetic on the same batch), resume from their own checkpoints after a kill,
and one SAE diverging does not stop the others."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from synthsae import saes, train, train_many
from synthsae.errors import ConfigError

ARCHS = ["topk", "batchtopk", "matryoshka", "relu", "jumprelu", "mp"]
KW = {"total_samples": 24 * 128, "batch_size": 128, "lr": 1e-3, "seed": 3, "show_progress": False}


def _make(world, arch: str, seed: int = 0):
    return saes.create_sae(arch, world.hidden_dim, 32, l0=4, seed=seed)


def _same(a, b) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_many_equals_one_at_a_time(world):
    alone = [_make(world, a) for a in ARCHS]
    histories = [train(s, world, eval_every=12, eval_samples=2048, log_every=6, **KW) for s in alone]
    together = [_make(world, a) for a in ARCHS]
    many = train_many(together, world, eval_every=12, eval_samples=2048, log_every=6, **KW)
    for a, b, h1, h2 in zip(alone, together, histories, many, strict=True):
        _same(a, b)
        assert h1.records == h2.records
        assert [(s, r.to_dict()) for s, r in h1.evals] == [(s, r.to_dict()) for s, r in h2.evals]
        assert h2.steps == 24 and h2.diverged is None


def test_a_group_resumes_from_checkpoints_at_different_steps(world, tmp_path):
    dirs = [tmp_path / a for a in ARCHS[:3]]
    reference = [_make(world, a) for a in ARCHS[:3]]
    train_many(reference, world, **KW)
    partial = [_make(world, a) for a in ARCHS[:3]]
    train_many(partial, world, checkpoint_dirs=dirs, checkpoint_every=4, **{**KW, "total_samples": 12 * 128})
    # one SAE further along than the others: trained alone to step 20 from its checkpoint
    train(
        _make(world, ARCHS[1]),
        world,
        checkpoint_dir=dirs[1],
        checkpoint_every=4,
        **{**KW, "total_samples": 20 * 128},
    )
    resumed = [_make(world, a) for a in ARCHS[:3]]
    histories = train_many(resumed, world, checkpoint_dirs=dirs, checkpoint_every=4, **KW)
    for a, b in zip(reference, resumed, strict=True):
        _same(a, b)
    assert [h.steps for h in histories] == [24, 24, 24]


_KILLED = """
import sys
import synthsae
from synthsae import saes
world = synthsae.World(synthsae.preset("tiny"), show_progress=False)
group = [saes.create_sae(a, world.hidden_dim, 32, l0=4, seed=0) for a in sys.argv[2].split(",")]
print("ready", flush=True)
synthsae.train_many(group, world, total_samples=400 * 128, batch_size=128, lr=1e-3, seed=3,
                    checkpoint_dirs=[sys.argv[1] + "/" + a for a in sys.argv[2].split(",")],
                    checkpoint_every=5, show_progress=False, torch_threads=1)
"""


@pytest.mark.slow
def test_killed_mid_group_then_rerun_gives_the_uninterrupted_result(world, tmp_path):
    archs = ["topk", "relu", "mp"]
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED, str(tmp_path), ",".join(archs)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 120
    while not all((tmp_path / a / "checkpoint.safetensors").exists() for a in archs):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL  # killed mid-run, not finished
    # torch's thread count is part of a checkpoint's settings: the same here as in the killed process
    kw = {**KW, "total_samples": 400 * 128, "torch_threads": 1}
    resumed = [_make(world, a) for a in archs]
    histories = train_many(
        resumed, world, checkpoint_dirs=[tmp_path / a for a in archs], checkpoint_every=5, **kw
    )
    reference = [_make(world, a) for a in archs]
    train_many(reference, world, **kw)
    for a, b in zip(reference, resumed, strict=True):
        _same(a, b)
    assert all(h.steps == 400 for h in histories)


def test_one_diverging_sae_stops_alone(world):
    healthy, wild = _make(world, "topk"), _make(world, "mp")
    reference = _make(world, "topk")
    h_ok, h_bad = train_many([healthy, wild], world, **{**KW, "lr": 1e-3}, log_every=4)
    assert h_ok.diverged is None and h_bad.diverged is None  # both fine at a sane lr
    wild = _make(world, "mp")
    torch.nn.init.constant_(wild.W_dec, float("nan"))
    healthy = _make(world, "topk")
    h_ok, h_bad = train_many([healthy, wild], world, log_every=4, **KW)
    train(reference, world, log_every=4, **KW)
    _same(reference, healthy)
    assert h_ok.steps == 24 and h_ok.diverged is None
    assert h_bad.diverged is not None and "diverged" in h_bad.diverged and h_bad.steps < 24


def test_bad_groups_are_refused(world, tmp_path):
    sae = _make(world, "topk")
    with pytest.raises(ConfigError, match="more than once"):
        train_many([sae, sae], world, **KW)
    with pytest.raises(ConfigError, match="one directory per SAE"):
        train_many([sae, _make(world, "mp")], world, checkpoint_dirs=[tmp_path], **KW)
    with pytest.raises(ConfigError, match="must differ"):
        train_many([sae, _make(world, "mp")], world, checkpoint_dirs=[tmp_path, tmp_path], **KW)
    with pytest.raises(TypeError, match="saes"):
        train_many([], world, **KW)
    with pytest.raises(ConfigError, match="one SAE"):
        train_many([sae, _make(world, "mp")], world, log_to_wandb=True, **KW)
