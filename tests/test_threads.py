"""Thread choices: the budget, training's split between torch and the sampler, OpenMP's waiting."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import synthsae
from synthsae import saes, threads


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("SYNTHSAE_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    return monkeypatch


def test_budget_is_the_affinity_or_the_environment(clean_env):
    assert threads.budget() == len(os.sched_getaffinity(0))
    clean_env.setenv("SYNTHSAE_THREADS", "3")
    assert threads.budget() == 3
    for bad in ("0", "two", "-1", "1.5"):
        clean_env.setenv("SYNTHSAE_THREADS", bad)
        with pytest.raises(ValueError, match="SYNTHSAE_THREADS"):
            threads.budget()


@pytest.mark.parametrize(
    ("budget", "split"), [(1, (1, 1)), (2, (2, 1)), (3, (2, 1)), (4, (3, 1)), (16, (12, 4))]
)
def test_training_splits_the_budget(clean_env, budget, split):
    clean_env.setenv("SYNTHSAE_THREADS", str(budget))
    big = threads.SMALL_SAE_ENTRIES
    assert threads.training_split(sae_entries=big) == split
    assert threads.training_split(sae_entries=big - 1) == (1, split[1])  # too small for two
    assert threads.training_split(num_threads=2, sae_entries=big) == (min(budget, max(2, budget - 2)), 2)
    assert threads.training_split(torch_threads=5) == (5, split[1])
    assert threads.training_split(cpu=False) == (None, budget)  # a GPU step: the sampler takes all
    assert threads.sequential_threads() == budget
    clean_env.setenv("OMP_NUM_THREADS", "1")  # the user chose torch's count
    assert threads.training_split()[0] is None and threads.sequential_threads() is None


class _Recorder(saes.BatchTopKSAE):
    """Records torch's thread count at every training step and evaluation encode."""

    seen: list[int]

    def training_forward(self, x, *, dead_mask=None):
        self.seen.append(torch.get_num_threads())
        return super().training_forward(x, dead_mask=dead_mask)

    def encode(self, x):
        self.seen.append(-torch.get_num_threads())
        return super().encode(x)


def test_train_and_evaluate_set_torch_threads_and_restore_them(clean_env):
    world = synthsae.World(synthsae.preset("tiny"), show_progress=False)
    before = torch.get_num_threads()
    sae = _Recorder(world.hidden_dim, threads.SMALL_SAE_ENTRIES // world.hidden_dim, 4, seed=0)
    sae.seen = []
    clean_env.setenv("SYNTHSAE_THREADS", "3")
    synthsae.train(sae, world, total_samples=4 * 256, batch_size=256, show_progress=False)
    assert sae.seen == [2] * 4  # 3 cores: the sampler 1, torch 2
    sae.seen = []
    synthsae.train(
        sae, world, total_samples=8 * 256, batch_size=256, torch_threads=1, show_progress=False, resume=False
    )
    assert sae.seen == [1] * 8
    sae.seen = []
    synthsae.evaluate(sae, world, num_samples=512, batch_size=256, extended=False, show_progress=False)
    assert sae.seen == [-3, -3]  # evaluation: the whole budget
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="torch_threads"):
        synthsae.train(sae, world, total_samples=256, batch_size=256, torch_threads=0, show_progress=False)


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "SYNTHSAE_THREADS")}
    return subprocess.run(
        [sys.executable, "-W", "default", "-c", code], env={**base, **env}, capture_output=True, text=True
    )


def test_import_sets_passive_waiting_unless_set_or_too_late():
    show = "import os; print(os.environ.get('OMP_WAIT_POLICY'))"
    assert _python(f"import synthsae; {show}").stdout.strip() == "PASSIVE"
    assert _python(f"import synthsae; {show}", OMP_WAIT_POLICY="active").stdout.strip() == "active"
    assert _python(f"import torch, synthsae; {show}").stdout.strip() == "None"


WARN_RUN = """
import torch, synthsae
from synthsae import saes
world = synthsae.World(synthsae.preset("tiny"), show_progress=False)
sae = saes.BatchTopKSAE(world.hidden_dim, 16, 4, seed=0)
for _ in range(2):
    synthsae.train(sae, world, total_samples=512, batch_size=256, torch_threads=2, show_progress=False)
    synthsae.evaluate(sae, world, num_samples=256, extended=False, show_progress=False)
"""


@pytest.mark.slow
def test_torch_imported_first_warns_once_when_torch_would_spin():
    late = _python(WARN_RUN)
    assert late.returncode == 0, late.stderr
    assert late.stderr.count("ThreadsWarning") == 1 and "OMP_WAIT_POLICY=PASSIVE" in late.stderr
    assert "ThreadsWarning" not in _python(WARN_RUN, OMP_WAIT_POLICY="PASSIVE").stderr
    one_core = _python(WARN_RUN.replace("torch_threads=2", "torch_threads=1"), SYNTHSAE_THREADS="1")
    assert one_core.returncode == 0 and "ThreadsWarning" not in one_core.stderr  # nothing to wait for
