"""The GPU check: synthsae's CUDA paths side by side with SAELens's on one GPU, in one run.

    python benches/gpu_check.py --out DIR [--device cuda] [--rows 10000000] [--eval-samples 500000]
    python benches/gpu_check.py --out DIR --toy --device cpu        # the CI smoke run (tiny world)

1. World: the SynthSAEBench-16k world built here (orthogonalization on, Gram form) and saved to
   ``DIR/world`` (SAELens's layout), which SAELens then loads, so both sample the same world.
2. Data: rows/s of ``ActivationStream`` on the device (the sampler on every CPU core, the hidden
   activations built on the device) against SAELens's ``SyntheticActivationIterator`` on the device
   (batch 1,024, bf16 autocast on CUDA, as its runner does in the paper's protocol).
3. Training: a 4,096-latent BatchTopK (k = 25), ``--rows`` rows at batch 1,024 and lr 3e-4 (the paper's),
   bf16 autocast on CUDA: ``synthsae.train`` against SAELens's ``SyntheticSAERunner``; rows/s of each.
4. Scores: both SAEs evaluated by ``synthsae.evaluate`` and by SAELens's ``eval_sae_on_synthetic_data``
   on ``--eval-samples`` rows: MCC, F1, explained variance, L0 (one training seed each).
5. Groups: the paper's five architectures (4,096 latents, L0 25) trained one at a time with
   ``synthsae.train`` and as one group with ``synthsae.train_many`` on ``--group-rows`` rows; seconds of
   each and the speed-up.
6. Ceiling: the supervised probe ceiling of the 4,096 most frequent features (2M training rows, or
   ``--rows`` if fewer) on the device: its F1 and seconds.

Writes ``DIR/gpu_check.json`` (everything above, with the machine) and prints a summary. Without sae-lens
the SAELens parts are skipped with a message.

Carrying it to a machine without network (the device README's recipe): build our abi3 wheel here
(``maturin build --release``), download sae-lens's wheel and those of its dependencies that
``import sae_lens.synthetic`` needs and the image lacks (find them by ``pip install --no-deps --target``
into an empty directory and importing until it succeeds), put the wheels in a folder the run carries,
and there ``pip install --no-index --find-links wheels/ synthsae sae-lens`` before this script.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

import synthsae
from synthsae import saes


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(batches: Any, count: int, warmup: int, device: torch.device) -> float:
    """Rows/s of ``count`` batches drawn from the iterator ``batches`` after ``warmup`` ones."""
    for _ in range(warmup):
        next(batches)
    _sync(device)
    t0 = time.perf_counter()
    rows = 0
    for _ in range(count):
        rows += next(batches).shape[0]
    _sync(device)
    return rows / (time.perf_counter() - t0)


def _scores(result: Any) -> dict[str, float]:
    """MCC, F1, explained variance and L0 of a synthsae or SAELens evaluation result."""
    f1 = result.f1 if hasattr(result, "f1") else result.classification.f1_score
    return {
        "mcc": float(result.mcc),
        "f1": float(f1),
        "explained_variance": float(result.explained_variance),
        "sae_l0": float(result.sae_l0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", required=True, help="directory for the world, gpu_check.json and log")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rows", type=int, default=10_000_000, help="training rows of each trainer")
    parser.add_argument("--eval-samples", type=int, default=500_000)
    parser.add_argument("--data-batches", type=int, default=200)
    parser.add_argument(
        "--group-rows", type=int, default=2_000_000, help="rows of the one-at-a-time vs train_many timing"
    )
    parser.add_argument("--toy", action="store_true", help="tiny world, 256 latents, few rows (CI smoke)")
    args = parser.parse_args()
    device = torch.device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.toy:
        preset, width, k = "tiny", 256, 8
        args.rows, args.eval_samples, args.data_batches = (
            min(args.rows, 100_000),
            min(args.eval_samples, 20_000),
            5,
        )
    else:
        preset, width, k = "synthsaebench-16k", 4096, 25
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "device": torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else f"CPU ({platform.machine()})",
            "torch": torch.__version__,
            "synthsae": synthsae.__version__,
        },
        "protocol": {
            "world": preset,
            "width": width,
            "k": k,
            "rows": args.rows,
            "batch_size": 1024,
            "lr": 3e-4,
        },
    }
    autocast = device.type == "cuda"
    try:
        import sae_lens
        from sae_lens import BatchTopKTrainingSAEConfig, LoggingConfig
        from sae_lens.synthetic import SyntheticModel
        from sae_lens.synthetic.evals import eval_sae_on_synthetic_data
        from sae_lens.synthetic.synthetic_sae_runner import SyntheticSAERunner, SyntheticSAERunnerConfig
        from sae_lens.synthetic.training import SyntheticActivationIterator

        report["machine"]["sae_lens"] = sae_lens.__version__
    except ImportError as e:
        print(f"(SAELens parts skipped: {e})")
        sae_lens = None

    def log(message: str) -> None:
        print(message, flush=True)
        with (out / "gpu_check.log").open("a") as f:
            f.write(message + "\n")

    log(f"== gpu_check on {report['machine']['device']} ({device}), world {preset}")
    t0 = time.perf_counter()
    world = synthsae.World(synthsae.preset(preset), show_progress=False)
    world_dir = out / "world"
    if not world_dir.exists():
        world.save(world_dir)
    report["world"] = {"build_seconds": time.perf_counter() - t0, "fingerprint": world.fingerprint()}
    log(f"world built in {report['world']['build_seconds']:.1f} s")

    stream = iter(synthsae.ActivationStream(world, 1024, seed=0, device=device))
    data = {"synthsae ActivationStream": _rate(stream, args.data_batches, 3, device)}
    stream.close()  # stops the sampling thread
    model = None
    if sae_lens is not None:
        model = SyntheticModel.load_from_source(str(world_dir), device=str(device))
        theirs = SyntheticActivationIterator(
            model.feature_dict, model.activation_generator, 1024, autocast=autocast
        )
        data["SAELens SyntheticActivationIterator"] = _rate(theirs, args.data_batches, 3, device)
    report["data_rows_per_second"] = data
    for name, rate in data.items():
        log(f"data {name}: {rate:,.0f} rows/s")

    trained: dict[str, Any] = {}
    sae = saes.BatchTopKSAE(world.hidden_dim, width, k, seed=0, device=device)
    history = synthsae.train(
        sae,
        world,
        total_samples=args.rows,
        batch_size=1024,
        lr=3e-4,
        device=device,
        autocast=autocast,
        show_progress=False,
    )
    trained["synthsae"] = (sae, history.seconds)
    if sae_lens is not None:
        torch.manual_seed(0)
        cfg = SyntheticSAERunnerConfig(
            synthetic_model=str(world_dir.resolve()),
            sae=BatchTopKTrainingSAEConfig(d_in=world.hidden_dim, d_sae=width, k=k),
            training_samples=args.rows,
            batch_size=1024,
            lr=3e-4,
            device=str(device),
            autocast_sae=autocast,
            autocast_data=autocast,
            checkpoint_path=None,
            output_path=None,
            eval_samples=0,
            run_final_eval=False,
            logger=LoggingConfig(log_to_wandb=False),
        )
        runner = SyntheticSAERunner(cfg, override_synthetic_model=model)
        t0 = time.perf_counter()
        result = runner.run()
        trained["SAELens"] = (result.sae, time.perf_counter() - t0)
    report["training"] = {}
    for name, (trained_sae, seconds) in trained.items():
        trained_sae.eval()
        entry: dict[str, Any] = {"seconds": seconds, "rows_per_second": args.rows / seconds}
        with torch.no_grad():
            ours = synthsae.evaluate(
                trained_sae, world, num_samples=args.eval_samples, seed=1, device=device, show_progress=False
            )
            entry["synthsae_evaluate"] = _scores(ours)
            if model is not None:
                theirs = eval_sae_on_synthetic_data(
                    trained_sae, model.feature_dict, model.activation_generator, args.eval_samples, 4096
                )
                entry["saelens_eval"] = _scores(theirs)
        report["training"][name] = entry
        log(f"train {name}: {entry['rows_per_second']:,.0f} rows/s ({seconds:.1f} s); scores {entry}")
    if len(trained) == 2:
        ratio = (
            report["training"]["synthsae"]["rows_per_second"]
            / report["training"]["SAELens"]["rows_per_second"]
        )
        report["training_ratio"] = ratio
        report["data_ratio"] = data["synthsae ActivationStream"] / data["SAELens SyntheticActivationIterator"]
        log(f"ratios: data {report['data_ratio']:.1f}x, training {ratio:.2f}x")
    # The paper's five architectures at one L0: one at a time, then as one group on one stream.
    group_rows = min(args.group_rows, args.rows)
    archs = ["batchtopk", "matryoshka", "jumprelu", "relu", "mp"]

    def build() -> list[Any]:
        return [saes.create_sae(a, world.hidden_dim, width, l0=k, seed=0, device=device) for a in archs]

    kwargs = {"total_samples": group_rows, "batch_size": 1024, "lr": 3e-4, "device": device}
    _sync(device)
    t0 = time.perf_counter()
    for sae in build():
        synthsae.train(sae, world, autocast=autocast, show_progress=False, **kwargs)
    _sync(device)
    alone = time.perf_counter() - t0
    t0 = time.perf_counter()
    synthsae.train_many(build(), world, autocast=autocast, show_progress=False, **kwargs)
    _sync(device)
    together = time.perf_counter() - t0
    report["group"] = {
        "architectures": archs,
        "rows": group_rows,
        "one_at_a_time_seconds": alone,
        "train_many_seconds": together,
        "speedup": alone / together,
    }
    log(f"group of {len(archs)}: one at a time {alone:.1f} s, train_many {together:.1f} s")
    log(f"train_many speed-up: {alone / together:.2f}x")
    # The supervised probe ceiling of the bench's protocol: `width` features, up to 2M training rows.
    from synthsae.evaluation.ceiling import probe_ceiling

    _sync(device)
    ceiling = probe_ceiling(
        world,
        width,
        train_rows=min(2_000_000, args.rows),
        eval_rows=args.eval_samples,
        device=device,
        show_progress=False,
    )
    _sync(device)
    report["ceiling"] = ceiling.to_dict()
    log(f"probe ceiling: F1 {ceiling.f1:.4f} in {ceiling.seconds:.1f} s ({ceiling.train_rows:,} rows)")
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    log(f"wrote {out / 'gpu_check.json'}")


if __name__ == "__main__":
    main()
