"""Training benchmarks.

    python benches/training.py [--part step,stream,tiny,curves,ortho,archs] [--steps 20] [--tiny-rows N]
                                [--profile]

* step: one training step (forward, backward, Adam, after_step, a dead-latent mask of 5 % so that AuxK
  runs) of a 4096-latent BatchTopK (k = 25, batch 1024) on rows of the SynthSAEBench-16k world: synthsae's
  sparse step, its dense step (``sparse=False``), and SAELens's ``BatchTopKTrainingSAE`` (when sae-lens is
  installed), timed in turns in one run (median of ``--steps``); prints rows/s and the ratios.
* curves: ``synthsae bench``'s default ``tiny`` protocol for the TopK family (BatchTopK, Matryoshka, TopK;
  3 L0s) over seeds 0 and 1, once with sparse steps and once dense; prints MCC and F1 of both, averaged
  over the seeds, and the largest |difference|.
* stream: on the SynthSAEBench-16k world (orthogonalization off), rows/s of the ActivationStream alone
  (features + hidden on the CPU, batch 1024) against the rows/s a 4096-latent BatchTopK (k = 25) training
  step consumes on the CPU (forward, backward, Adam, after_step, on pre-drawn batches), and the ratio.
* ortho: the decoder-orthogonality penalty's cost on the step above (4096-latent BatchTopK, k = 25, batch
  1024, 16k world, ``--steps`` steps of ``synthsae.train``-style training with the penalty on): the plain
  step, one neighbour refresh (``nearest_pairs``, ``d_sae² · D``), the per-step penalty on refreshed pairs,
  and the alternative of searching only the active latents' neighbours every step (``[active, d_sae]``);
  the overhead per step at refresh intervals 1, 10 and 100; and how stale an index 1 or 10 steps old
  is: the share of latents whose nearest neighbour changed, and the penalty (C = 1, P = 2) computed
  with the old index as a share of the penalty with the current one.
* archs: every architecture's training step (forward, backward, Adam, after_step) on the CPU preset's
  shape (192 dims, 1,024 latents, L0 6) and the 16k sweep's (768 dims, 4,096 latents, L0 25), batch
  1024, rows of the matching world (orthogonalization off): ReLU and JumpReLU with dense steps
  (``sparse=False``) and sparse ones, matching pursuit with its scores recomputed at every iteration
  (``method="recomputed"``), updated through the Gram matrix in torch (``"gram"``) and picked by the
  Rust core's certified search (``"certified"``, the CPU default), and the TopK family; ReLU's and JumpReLU's
  biases or thresholds set so that about L0 latents fire per row (as after training). Timed in turns,
  median of ``--steps``; prints ms/step, each relative to BatchTopK's, and the speed-ups. With
  ``--profile``, first where each step's time goes (torch's profiler: CPU time summed over threads, the
  operators with the most self time, per step).
* tiny: a BatchTopK SAE (256 latents, k = 8 ≈ the true L0 of the tiny world's 256 most frequent features,
  as the paper's k = 25 is that of the 16k world's first 4,096; the whole world's L0 is 15.4) trained by
  ``synthsae.train`` for a fixed number of rows chosen to take under a minute on 2 cores, then scored on
  100,000 held-out rows: MCC, F1, uniqueness, explained variance, against the same SAE at initialization.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

import synthsae
from synthsae import saes
from synthsae.saes.matching_pursuit import pursue


def _step_timer(forward: Any, params: Any, after: Any, xs: list[torch.Tensor]) -> Callable[[int], float]:
    """A function timing ``i`` -> seconds of one training step on batch ``xs[i % len]``."""
    opt = torch.optim.Adam(params, lr=3e-4)

    def step(i: int) -> float:
        x = xs[i % len(xs)]
        t0 = time.perf_counter()
        out = forward(x)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        after(out)
        return time.perf_counter() - t0

    return step


def step_part(args: argparse.Namespace) -> None:
    config = synthsae.preset("synthsaebench-16k")
    config.orthogonalization = None
    world = synthsae.World(config, show_progress=False)
    xs = [world.sample(1024, seed=i) for i in range(4)]
    d_in, d_sae, k = world.hidden_dim, 4096, 25
    dead = torch.zeros(d_sae, dtype=torch.bool)
    dead[torch.randperm(d_sae, generator=torch.Generator().manual_seed(0))[: d_sae // 20]] = True
    timers: dict[str, Callable[[int], float]] = {}
    for name, sparse in (("synthsae sparse", True), ("synthsae dense", False)):
        sae = saes.BatchTopKSAE(d_in, d_sae, k, seed=0, sparse=sparse)
        timers[name] = _step_timer(
            lambda x, sae=sae: sae.training_forward(x, dead_mask=dead), sae.parameters(), sae.after_step, xs
        )
    try:
        from synthsae.saes.external import saelens_factory

        ref = saelens_factory("BatchTopKTrainingSAE")(d_in, d_sae, k, 0)
        timers["SAELens BatchTopKTrainingSAE"] = _step_timer(
            lambda x: ref.training_forward(x, dead_mask=dead), ref.parameters(), lambda out: None, xs
        )
    except ValueError as e:
        print(f"(SAELens not timed: {e})")
    times: dict[str, list[float]] = {name: [] for name in timers}
    for i in range(args.steps + 2):  # in turns, so that every contender sees the same machine state
        for name, timer in timers.items():
            seconds = timer(i)
            if i >= 2:
                times[name].append(seconds)
    rates = {name: 1024 / statistics.median(t) for name, t in times.items()}
    print(f"\n== training step: 16k world, BatchTopK {d_sae} latents k={k}, batch 1024, 5 % dead (AuxK on)")
    for name, rate in rates.items():
        print(f"{name:32s} {rate:>10,.0f} rows/s  ({1024 / rate * 1e3:7.1f} ms/step)")
    sparse_rate = rates["synthsae sparse"]
    for name, rate in rates.items():
        if name != "synthsae sparse":
            print(f"sparse / {name}: {sparse_rate / rate:.2f}x")


def curves_part(args: argparse.Namespace) -> None:
    import tempfile

    from synthsae import bench

    world = synthsae.World(synthsae.preset("tiny"), show_progress=False)
    protocol = bench.default_protocol("tiny", world.num_features)
    protocol.saes, protocol.seeds = ["batchtopk", "matryoshka", "topk"], [0, 1]

    def dense(arch: str) -> Callable[[int, int, float, int], saes.SAE]:
        return lambda d_in, d_sae, l0, seed: saes.create_sae(
            arch, d_in, d_sae, l0=l0, seed=seed, sparse=False
        )

    means: dict[tuple[str, float, str], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        report = bench.run(world, protocol, out, preset_name="tiny", show_progress=False, log=lambda *a: None)
        sparse_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        custom = {f"{arch}-dense": dense(arch) for arch in protocol.saes}
        dense_protocol = dataclasses.replace(protocol, saes=[])
        with tempfile.TemporaryDirectory() as out2:
            report2 = bench.run(
                world,
                dense_protocol,
                out2,
                preset_name="tiny",
                saes=custom,
                show_progress=False,
                log=lambda *a: None,
            )
        dense_s = time.perf_counter() - t0
    for row in report["summary"] + report2["summary"]:
        arch = row["architecture"].removesuffix("-dense")
        mode = "dense" if row["architecture"].endswith("-dense") else "sparse"
        means[(arch, row["l0"], mode)] = (row["metrics"]["MCC"][0], row["metrics"]["F1"][0])
    print(
        f"\n== curves: tiny protocol, seeds 0,1; sparse sweep {sparse_s:.0f} s, dense sweep {dense_s:.0f} s"
    )
    print(
        f"{'architecture':12s} {'L0':>4s} {'MCC sparse':>11s} {'MCC dense':>10s} "
        f"{'F1 sparse':>10s} {'F1 dense':>9s}"
    )
    worst = 0.0
    for arch, l0, mode in sorted(means):
        if mode != "sparse":
            continue
        (ms, fs), (md, fd) = means[(arch, l0, "sparse")], means[(arch, l0, "dense")]
        worst = max(worst, abs(ms - md), abs(fs - fd))
        print(f"{arch:12s} {l0:4g} {ms:11.4f} {md:10.4f} {fs:10.4f} {fd:9.4f}")
    print(f"largest |sparse - dense| of a seed-mean MCC or F1: {worst:.4f}")


def stream_part(args: argparse.Namespace) -> None:
    config = synthsae.preset("synthsaebench-16k")
    config.orthogonalization = None
    world = synthsae.World(config)
    batches = args.steps
    stream = synthsae.ActivationStream(world, 1024, seed=0, num_batches=batches + 2, prefetch=2)
    it = iter(stream)
    xs = [next(it), next(it)]  # warm-up
    t0 = time.perf_counter()
    xs += list(it)
    data_rate = batches * 1024 / (time.perf_counter() - t0)

    sae = saes.BatchTopKSAE(world.hidden_dim, 4096, 25, seed=0)
    opt = torch.optim.Adam(sae.parameters(), lr=3e-4)
    times = []
    for x in xs:
        t0 = time.perf_counter()
        out = sae.training_forward(x)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sae.after_step(out)
        times.append(time.perf_counter() - t0)
    step_rate = 1024 / statistics.median(times[2:])
    print(f"\n== stream vs step: 16k world, BatchTopK 4096 latents k=25, batch 1024, {batches} batches")
    print(f"ActivationStream (features + hidden, CPU): {data_rate:>10,.0f} rows/s")
    print(f"training step consumption (CPU):          {step_rate:>10,.0f} rows/s")
    print(f"data / step: {data_rate / step_rate:.1f}x")


def ortho_part(args: argparse.Namespace) -> None:
    from synthsae.saes import orthogonality

    config = synthsae.preset("synthsaebench-16k")
    config.orthogonalization = None
    world = synthsae.World(config, show_progress=False)
    sae = saes.BatchTopKSAE(world.hidden_dim, 4096, 25, seed=0)
    opt = torch.optim.Adam(sae.parameters(), lr=3e-4)
    steps = max(args.steps, 11)
    xs = [world.sample(1024, seed=i) for i in range(steps)]
    plain, refresh, penalty, active_search, history, weights = [], [], [], [], [], []
    for x in xs:
        t0 = time.perf_counter()
        out = sae.training_forward(x)
        t1 = time.perf_counter()
        pairs = orthogonality.nearest_pairs(sae.W_dec)
        t2 = time.perf_counter()
        active = (out.latents != 0).any(0)
        loss = out.loss + 1.0 * orthogonality.ortho_penalty(sae.W_dec, active, pairs, 2.0)
        t3 = time.perf_counter()
        with torch.no_grad():  # the alternative: |cos| of the active rows only, [active, d_sae]
            u = orthogonality.unit_rows(sae.W_dec)
            c = (u[active] @ u.T).abs_()
            c[torch.arange(c.shape[0]), active.nonzero().squeeze(1)] = -1.0
            c.max(dim=1)
        t4 = time.perf_counter()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sae.after_step(out)
        t5 = time.perf_counter()
        plain.append((t1 - t0) + (t5 - t4))
        refresh.append(t2 - t1)
        penalty.append(t3 - t2)
        active_search.append(t4 - t3)
        history.append(pairs)
        weights.append(sae.W_dec.detach().clone())
    med = {
        k: statistics.median(v[2:])
        for k, v in (("plain", plain), ("refresh", refresh), ("penalty", penalty), ("active", active_search))
    }
    print(f"\n== ortho penalty cost: BatchTopK 4096 latents k=25, batch 1024, 16k world, {steps} steps")
    print(f"plain step (forward, backward, Adam, after_step): {med['plain'] * 1e3:8.1f} ms")
    print(f"neighbour refresh (nearest_pairs, 4096^2 x 768):  {med['refresh'] * 1e3:8.1f} ms")
    print(f"penalty on refreshed pairs (per step):            {med['penalty'] * 1e3:8.1f} ms")
    print(f"active-only neighbour search (per step):          {med['active'] * 1e3:8.1f} ms")
    for r in (1, 10, 100):
        extra = med["penalty"] + med["refresh"] / r
        print(f"overhead at refresh every {r:3d} steps: {extra / med['plain'] * 100:6.1f} % of a step")
    active_extra = (med["penalty"] + med["active"]) / med["plain"]
    print(f"overhead of the active-only search: {active_extra * 100:6.1f} %")

    def nearest(p: orthogonality.NeighbourPairs) -> torch.Tensor:
        first = torch.full((4096,), -1, dtype=torch.int64)
        first[p.latents.flip(0)] = p.neighbours.flip(0)  # each latent's first-listed neighbour
        return first

    everyone = torch.ones(4096, dtype=torch.bool)
    for lag in (1, 10):
        changed, kept = [], []
        for i in range(len(history) - lag):
            old, new = history[i], history[i + lag]
            changed.append(float((nearest(old) != nearest(new)).float().mean()))
            with torch.no_grad():
                stale = orthogonality.ortho_penalty(weights[i + lag], everyone, old, 2.0)
                exact = orthogonality.ortho_penalty(weights[i + lag], everyone, new, 2.0)
            kept.append(float(stale / exact))
        print(
            f"index {lag:2d} steps old: {statistics.mean(changed) * 100:5.1f} % of latents have another "
            f"nearest neighbour now; its penalty is {statistics.mean(kept) * 100:.1f} % of the exact one"
        )


class _RecomputedMP(saes.MatchingPursuitSAE):
    """Matching pursuit as before the Gram form: scores recomputed at every iteration
    (``method="recomputed"``), the latents decoded by a dense ``[b, d_sae] × [d_sae, d_in]`` product."""

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check_input(x)
        return saes.matching_pursuit(x - self.b_dec, self.W_dec, self.k, method="recomputed")

    def training_forward(self, x: torch.Tensor, *, dead_mask: torch.Tensor | None = None) -> saes.TrainOutput:
        x, z, x_hat = self._reconstruct(x, dead_mask)
        loss = saes.mse(x_hat, x)
        return self._output(loss, {"mse": loss}, z, x_hat)


class _TorchGramMP(saes.MatchingPursuitSAE):
    """Matching pursuit with its scores updated through the Gram matrix in torch (``method="gram"``)."""

    def training_forward(self, x: torch.Tensor, *, dead_mask: torch.Tensor | None = None) -> saes.TrainOutput:
        index, coef, residual = pursue(x - self.b_dec, self.W_dec, self.k, method="gram")
        x_hat = x - residual
        loss = saes.mse(x_hat, x)
        with torch.no_grad():
            z = x.new_zeros(x.shape[0], self.d_sae).scatter_add_(1, index, coef)
        return self._output(loss, {"mse": loss}, z, x_hat)


def _at_l0(sae: saes.SAE, x: torch.Tensor, k: int) -> saes.SAE:
    """``sae`` with its encoder bias (and JumpReLU's thresholds) set so that about ``k`` latents per row
    fire on ``x``, as after training, where ReLU's and JumpReLU's steps are timed (at initialisation most
    latents fire)."""
    with torch.no_grad():
        pre = sae.hidden_pre(x)
        cut = pre.quantile(1 - k / sae.d_sae, dim=0)  # per latent: fires on a share k / d_sae of rows
        if isinstance(sae, saes.JumpReLUSAE):
            sae.threshold.copy_(cut.clamp_min(0) + 1e-3)
        else:
            sae.b_enc.sub_(cut)
    return sae


def _profile(contenders: dict[str, saes.SAE], xs: list[torch.Tensor], title: str) -> None:
    """Where each contender's step goes: torch's profiler over 5 steps after 3 warm-up steps, the
    operators with the most self time (ms per step, calls per step)."""
    from torch.profiler import ProfilerActivity, profile

    print(f"\n== where a step's time goes: {title} (self CPU time per step, top operators)")
    for name, sae in contenders.items():
        step = _step_timer(sae.training_forward, sae.parameters(), sae.after_step, xs)
        for i in range(3):
            step(i)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for i in range(5):
                step(i)
        events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
        total = sum(e.self_cpu_time_total for e in events) / 5e3
        top = ", ".join(
            f"{e.key.removeprefix('aten::')} {e.self_cpu_time_total / 5e3:.1f} (x{e.count // 5})"
            for e in events[:6]
        )
        print(f"{name:26s} {total:7.1f} ms CPU: {top}")


def archs_part(args: argparse.Namespace) -> None:
    """Every architecture's training step before the sparse ReLU/JumpReLU steps and the Gram-form MP
    ("before": ``sparse=False``, ``gram=False``) and now, and relative to BatchTopK's."""
    shapes = (("synthsaebench-cpu", 1024, 6), ("synthsaebench-16k", 4096, 25))
    for preset_name, d_sae, k in shapes:
        config = synthsae.preset(preset_name)
        config.orthogonalization = None
        world = synthsae.World(config, show_progress=False)
        xs: list[torch.Tensor] = []
        for i in range(2):
            x = world.sample(1024, seed=i)
            assert isinstance(x, torch.Tensor)
            xs.append(x)
        d_in = world.hidden_dim
        contenders: dict[str, saes.SAE] = {
            "batchtopk": saes.BatchTopKSAE(d_in, d_sae, k, seed=0),
            "topk": saes.TopKSAE(d_in, d_sae, k, seed=0),
            "matryoshka": saes.create_sae("matryoshka", d_in, d_sae, l0=k, seed=0),
            "relu before (dense)": _at_l0(saes.ReLUSAE(d_in, d_sae, 2.0, sparse=False, seed=0), xs[0], k),
            "relu now (sparse)": _at_l0(saes.ReLUSAE(d_in, d_sae, 2.0, seed=0), xs[0], k),
            "jumprelu before (dense)": _at_l0(
                saes.JumpReLUSAE(d_in, d_sae, k, sparse=False, seed=0), xs[0], k
            ),
            "jumprelu now (sparse)": _at_l0(saes.JumpReLUSAE(d_in, d_sae, k, seed=0), xs[0], k),
            "mp before (recomputed)": _RecomputedMP(d_in, d_sae, k, seed=0),
            "mp Gram (torch)": _TorchGramMP(d_in, d_sae, k, seed=0),
            "mp now (certified)": saes.MatchingPursuitSAE(d_in, d_sae, k, seed=0),
        }
        if args.profile:
            _profile(contenders, xs, f"{preset_name} shape")
        timers = {
            name: _step_timer(sae.training_forward, sae.parameters(), sae.after_step, xs)
            for name, sae in contenders.items()
        }
        times: dict[str, list[float]] = {name: [] for name in timers}
        for i in range(args.steps + 1):  # in turns; the first round warms up
            for name, timer in timers.items():
                seconds = timer(i)
                if i >= 1:
                    times[name].append(seconds)
        ms = {name: statistics.median(t) * 1e3 for name, t in times.items()}
        print(f"\n== training steps: {preset_name} shape, d_in {d_in}, {d_sae} latents, L0 {k}, batch 1024")
        for name, value in ms.items():
            print(f"{name:26s} {value:8.1f} ms/step  ({value / ms['batchtopk']:5.2f}x BatchTopK)")
        for arch, before, now in (
            ("relu", "relu before (dense)", "relu now (sparse)"),
            ("jumprelu", "jumprelu before (dense)", "jumprelu now (sparse)"),
            ("mp", "mp before (recomputed)", "mp now (certified)"),
            ("mp (against torch's Gram form)", "mp Gram (torch)", "mp now (certified)"),
        ):
            print(f"{arch}: {ms[before] / ms[now]:.2f}x faster than before")


def tiny_part(args: argparse.Namespace) -> None:
    world = synthsae.World(synthsae.preset("tiny"))
    sae = saes.BatchTopKSAE(world.hidden_dim, 256, 8, seed=0)
    before = synthsae.evaluate(sae, world, num_samples=100_000, seed=1, show_progress=False)
    history = synthsae.train(
        sae,
        world,
        total_samples=args.tiny_rows,
        batch_size=1024,
        lr=1e-3,
        seed=0,
        dead_window=100,
        show_progress=False,
    )
    after = synthsae.evaluate(sae, world, num_samples=100_000, seed=1, show_progress=False)
    print(
        f"\n== tiny: BatchTopK 256 latents k=8, {args.tiny_rows:,} rows, batch 1024, lr 1e-3, dead window 100"
    )
    print(f"train time: {history.seconds:.1f} s ({history.samples / history.seconds:,.0f} rows/s)")
    for name in ("mcc", "f1", "uniqueness", "explained_variance", "sae_l0", "dead_latents"):
        print(f"{name:20s} init {getattr(before, name):8.4f} -> trained {getattr(after, name):8.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", default="step,stream,tiny")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--tiny-rows", type=int, default=3_000_000)
    parser.add_argument("--profile", action="store_true", help="archs: also profile each step by operator")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} torch threads"
    )
    parts = args.part.split(",")
    if "step" in parts:
        step_part(args)
    if "stream" in parts:
        stream_part(args)
    if "curves" in parts:
        curves_part(args)
    if "ortho" in parts:
        ortho_part(args)
    if "archs" in parts:
        archs_part(args)
    if "tiny" in parts:
        tiny_part(args)


if __name__ == "__main__":
    main()
