"""bench sweeps: users' own SAEs (the README's example), seeds, resuming after SIGKILL, merging
shards with `synthsae report`, refusing sweeps of other worlds or protocols."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import scipy.stats
import torch

import synthsae
from synthsae import bench
from synthsae.cli import main
from synthsae.evaluation.assignment import mean_max_abs_cos
from synthsae.saes import external

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "custom_sae.py"
SMALL = ["--samples", "20480", "--eval-samples", "4096", "--width", "32", "--quiet"]


def _results(out: Path) -> dict[str, dict]:
    report = json.loads((out / "report.json").read_text())
    return {r["name"]: r["result"] for r in report["runs"]}


def test_docs_include_the_example_verbatim():
    """docs/benchmark.md includes examples/custom_sae.py whole, by snippet, so the page shows this file."""
    assert '--8<-- "examples/custom_sae.py"' in (ROOT / "docs" / "benchmark.md").read_text()


def test_custom_sae_runs_through_the_cli_and_the_api(tmp_path, capsys):
    spec = f"{EXAMPLE}:make_sae"
    assert (
        main(["bench", "--sae", spec, "--saes", "topk", "--l0", "4", "--out", str(tmp_path / "cli"), *SMALL])
        == 0
    )
    printed = capsys.readouterr().out
    assert "make_sae" in printed and "topk" in printed
    cli = _results(tmp_path / "cli")
    assert set(cli) == {"make_sae-l0-4-seed-0", "topk-l0-4-seed-0"}
    assert (tmp_path / "cli" / "runs" / "make_sae-l0-4-seed-0" / "sae" / "state_dict.safetensors").is_file()

    name, factory = external.load_factory(spec)
    world = synthsae.World(synthsae.preset("tiny"))
    protocol = bench.Protocol(saes=[], l0s=[4.0], width=32, samples=20480, eval_samples=4096, lr=1e-3)
    report = bench.run(
        world, protocol, tmp_path / "api", saes={name: factory}, show_progress=False, log=lambda _: None
    )
    assert report["runs"][0]["result"] == cli["make_sae-l0-4-seed-0"]  # same training, same numbers
    assert 0 < report["runs"][0]["result"]["mcc"] < 1


def test_custom_modules_missing_parts_are_refused():
    class NoLoss(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.W_dec = torch.nn.Parameter(torch.zeros(4, 2))

        def encode(self, x):
            return x

    with pytest.raises(TypeError, match=r"'mine' lacks decode, training_forward"):
        external.check_trainable(NoLoss(), "mine")
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        external.build("mine", lambda *a: object(), 2, 4, 1.0, 0)
    with pytest.raises(ValueError, match="W_dec must be"):
        external.build("mine", lambda *a: synthsae.saes.TopKSAE(2, 8, 1), 2, 4, 1.0, 0)
    with pytest.raises(ValueError, match="cannot import"):
        external.load_factory("no_such_module_here:f")


def test_seeds_give_mean_and_std(tmp_path, capsys):
    assert (
        main(["bench", "--saes", "topk", "--l0", "4", "--seeds", "0,1", "--out", str(tmp_path), *SMALL]) == 0
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert [r["seed"] for r in report["runs"]] == [0, 1]
    mcc = [r["result"]["mcc"] for r in report["runs"]]
    assert mcc[0] != mcc[1]
    (group,) = report["summary"]
    assert group["seeds"] == [0, 1]
    stats = group["metrics"]["MCC"]
    # two seeds: sample std |d| / √2, 95 % interval mean ± t(0.975, 1 df)·std / √2
    half = scipy.stats.t.ppf(0.975, 1) * abs(mcc[0] - mcc[1]) / 2
    assert stats["mean"] == pytest.approx(sum(mcc) / 2) and stats["values"] == mcc
    assert stats["std"] == pytest.approx(abs(mcc[0] - mcc[1]) / 2**0.5)
    assert stats["ci95"] == pytest.approx([sum(mcc) / 2 - half, sum(mcc) / 2 + half])
    assert f"{sum(mcc) / 2:.4f}±{half:.3f}" in capsys.readouterr().out


@pytest.mark.slow
def test_killed_sweep_resumes_without_duplicates(tmp_path):
    """SIGKILL while the second run trains; the rerun skips the first, resumes the second from its
    checkpoint and ends with the same results as an uninterrupted sweep."""
    args = [
        "--saes",
        "batchtopk",
        "--l0",
        "4,5",
        "--samples",
        "409600",
        "--eval-samples",
        "4096",
        "--width",
        "32",
    ]
    args += ["--quiet", "--group-size", "1"]  # one run after the other
    command = [sys.executable, "-m", "synthsae", "bench", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*command, "--out", str(killed)], env=env, stdout=subprocess.DEVNULL)
    second = killed / "runs" / "batchtopk-l0-5-seed-0" / "checkpoint.safetensors"
    deadline = time.monotonic() + 300
    while not second.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the sweep ended before it could be killed; raise --samples"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (killed / "runs" / "batchtopk-l0-4-seed-0" / "run.json").exists()
    assert not (killed / "runs" / "batchtopk-l0-5-seed-0" / "run.json").exists()
    rerun = subprocess.run(
        [*command, "--out", str(killed)], env=env, capture_output=True, text=True, check=True
    )
    assert "batchtopk-l0-4-seed-0: finished earlier, skipped" in rerun.stdout
    full = tmp_path / "full"
    subprocess.run([*command, "--out", str(full)], env=env, capture_output=True, check=True)
    assert _results(killed) == _results(full)
    assert len(json.loads((killed / "report.json").read_text())["runs"]) == 2


@pytest.mark.slow
def test_report_merges_shards_like_one_sweep(tmp_path, capsys):
    args = ["bench", "--saes", "topk,mp", "--l0", "4", *SMALL]
    assert main([*args, "--out", str(tmp_path / "full")]) == 0
    for i in (0, 1):
        assert (
            main([*args, "--out", str(tmp_path / f"part{i}"), "--shard-index", str(i), "--num-shards", "2"])
            == 0
        )
    capsys.readouterr()
    assert (
        main(["report", str(tmp_path / "part0"), str(tmp_path / "part1"), "--out", str(tmp_path / "merged")])
        == 0
    )
    merged = capsys.readouterr().out
    assert main(["report", str(tmp_path / "full")]) == 0
    full = capsys.readouterr().out
    assert merged.split("\n\n2 runs")[0] == full.split("\n\n2 runs")[0]
    assert _results(tmp_path / "merged") == _results(tmp_path / "full")
    assert (tmp_path / "merged" / "mcc_f1_vs_l0.png").is_file()


def test_controller_gains_matter_only_for_architectures_both_sweeps_train():
    from synthsae.bench.records import header_differences

    def header(saes: list[str], gains: dict[str, float]) -> dict[str, object]:
        protocol = {**bench.Protocol().__dict__, "saes": saes, "autotune_gains": gains}
        return {"world_fingerprint": "w", "protocol": protocol}

    old = header(["relu", "jumprelu"], {"relu": 0.045, "jumprelu": 0.005})
    # a newer protocol adds a gain for an architecture the old sweep does not train: they merge
    assert (
        header_differences(old, header(["gated"], {"relu": 0.045, "jumprelu": 0.005, "gated": 0.045})) == []
    )
    # a gain that differs for an architecture both train is refused, naming it
    (diff,) = header_differences(old, header(["relu"], {"relu": 0.03}))
    assert diff.startswith("protocol autotune_gains {'relu': 0.045} vs {'relu': 0.03}")


def test_sweeps_of_other_protocols_are_refused(tmp_path, capsys):
    assert main(["bench", "--saes", "topk", "--l0", "4", "--out", str(tmp_path / "a"), *SMALL]) == 0
    with pytest.raises(SystemExit) as e:  # resuming with another learning rate
        main(["bench", "--saes", "topk", "--l0", "4", "--lr", "0.01", "--out", str(tmp_path / "a"), *SMALL])
    assert e.value.code == 2 and "protocol lr" in capsys.readouterr().err
    assert (
        main(["bench", "--saes", "topk", "--l0", "4", "--lr", "0.01", "--out", str(tmp_path / "b"), *SMALL])
        == 0
    )
    with pytest.raises(ValueError, match=r"protocol lr 0\.001 vs 0\.01"):
        bench.build_report([tmp_path / "a", tmp_path / "b"])


def test_table_puts_the_paper_beside_16k_results_its_ranking_elsewhere_and_tiny_is_a_smoke_test(
    tmp_path, capsys
):
    assert main(["bench", "--saes", "batchtopk,mp", "--l0", "25", "--out", str(tmp_path), *SMALL]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    smoke = bench.table(report)  # the tiny preset
    assert "ranking by" not in smoke and "tiny is a smoke test" in smoke
    elsewhere = bench.table({**report, "preset": "synthsaebench-cpu"})
    assert "ranking by MCC at L0 25: ours" in elsewhere and "paper (16k, L0 25) batchtopk > mp" in elsewhere
    assert "  paper" not in elsewhere and "smoke test" not in elsewhere
    as_16k = bench.table({**report, "preset": "synthsaebench-16k"})
    paper_lines = [line for line in as_16k.splitlines() if line.startswith("  paper")]
    assert len(paper_lines) == 2 and "0.7574±0.000" in paper_lines[0] and "0.8351" in paper_lines[1]
    assert "ranking by" not in as_16k


def test_a_saelens_batchtopk_runs_through_bench(tmp_path, capsys):
    pytest.importorskip("sae_lens")
    args = ["bench", "--saelens", "BatchTopKTrainingSAE", "--l0", "4", "--out", str(tmp_path), *SMALL]
    assert main([*args, "--samples", "204800"]) == 0  # 200 steps
    (run,) = json.loads((tmp_path / "report.json").read_text())["runs"]
    assert run["architecture"] == "saelens-BatchTopKTrainingSAE"
    assert 0 < run["result"]["mcc"] < 1 and run["result"]["explained_variance"] > 0
    assert 2 < run["result"]["sae_l0"] < 8  # BatchTopK's eval threshold keeps L0 near k = 4
    with pytest.raises(SystemExit):
        main(["bench", "--saelens", "StandardTrainingSAE", "--out", str(tmp_path / "x"), *SMALL])
    assert "has no k" in capsys.readouterr().err


def test_ortho_penalty_flags_reach_training_and_the_report(tmp_path, capsys):
    """--ortho-coef/--ortho-power go into the protocol and train(); each run records its decoder's mean
    max |cos| (the table's dec.ρmm column), the penalty's log, and a sweep of another C is refused."""
    args = ["bench", "--saes", "batchtopk", "--l0", "4", *SMALL]
    assert main([*args, "--ortho-coef", "5", "--ortho-power", "3", "--out", str(tmp_path / "on")]) == 0
    assert "ortho penalty C=5, P=3" in capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "off")]) == 0
    table = capsys.readouterr().out
    on, off = (json.loads((tmp_path / d / "report.json").read_text()) for d in ("on", "off"))
    assert (on["protocol"]["ortho_coef"], on["protocol"]["ortho_power"]) == (5.0, 3.0)
    (run_on,), (run_off,) = on["runs"], off["runs"]
    assert "ortho" in run_on["training_log"][-1] and "ortho" not in run_off["training_log"][-1]
    sae = synthsae.saes.load_sae(tmp_path / "on" / "runs" / run_on["name"] / "sae")
    assert run_on["decoder_rho_mm"] == pytest.approx(mean_max_abs_cos(sae.W_dec))
    assert run_on["decoder_rho_mm"] < run_off["decoder_rho_mm"]
    assert "dec.ρmm" in table and f"{run_off['decoder_rho_mm']:.4f}" in table
    with pytest.raises(SystemExit) as e:
        main([*args, "--ortho-coef", "1", "--out", str(tmp_path / "on")])
    assert e.value.code == 2 and "protocol ortho_coef 5.0 vs 1.0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main([*args, "--ortho-power", "0.5", "--out", str(tmp_path / "bad")])
    assert e.value.code == 2 and "--ortho-power" in capsys.readouterr().err


def test_sweeps_from_before_the_ortho_settings_still_resume(tmp_path):
    """A bench.json written before ortho_coef/ortho_power existed compares as their defaults."""
    assert main(["bench", "--saes", "topk", "--l0", "4", "--out", str(tmp_path), *SMALL]) == 0
    header = json.loads((tmp_path / "bench.json").read_text())
    for key in ("ortho_coef", "ortho_power"):
        del header["protocol"][key]
    (tmp_path / "bench.json").write_text(json.dumps(header))
    assert main(["bench", "--saes", "topk", "--l0", "4", "--out", str(tmp_path), *SMALL]) == 0
    assert len(bench.build_report([tmp_path])["runs"]) == 1


@pytest.mark.slow
def test_a_sweep_killed_mid_group_resumes_to_the_results_of_one_at_a_time(tmp_path):
    """The runs of a seed train together: SIGKILL while the group trains, rerun, and the results equal
    a sweep that trained the runs one at a time."""
    args = ["--saes", "batchtopk,topk", "--l0", "4,5", "--samples", "409600", "--eval-samples", "4096"]
    command = [sys.executable, "-m", "synthsae", "bench", *args, "--width", "32", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*command, "--out", str(killed)], env=env, stdout=subprocess.DEVNULL)
    names = ["batchtopk-l0-4-seed-0", "batchtopk-l0-5-seed-0", "topk-l0-4-seed-0", "topk-l0-5-seed-0"]
    checkpoints = [killed / "runs" / n / "checkpoint.safetensors" for n in names]
    deadline = time.monotonic() + 300
    while not all(c.exists() for c in checkpoints) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the sweep ended before it could be killed; raise --samples"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not any((killed / "runs" / n / "run.json").exists() for n in names)
    rerun = subprocess.run(
        [*command, "--out", str(killed)], env=env, capture_output=True, text=True, check=True
    )
    assert "training " + ", ".join(names) in rerun.stdout
    alone = tmp_path / "alone"
    subprocess.run(
        [*command, "--out", str(alone), "--group-size", "1"], env=env, capture_output=True, check=True
    )
    assert _results(killed) == _results(alone)


def test_probe_ceiling_is_computed_once_per_sweep_and_reported(tmp_path, capsys):
    out = tmp_path / "s"
    args = ["bench", "--saes", "topk", "--l0", "4", "--out", str(out), *SMALL]
    assert main(args) == 0
    first = capsys.readouterr().out
    ceiling = json.loads((out / "ceiling.json").read_text())
    # the protocol's rows: all 20,480 training rows (fewer than 2M), as many calibration rows, 4,096 eval
    assert (ceiling["features"], ceiling["train_rows"], ceiling["eval_rows"]) == (32, 20480, 4096)
    assert ceiling["settings"]["calibration_rows"] == 20480
    assert "probe ceiling: F1" in first and "  ceiling" in first
    assert json.loads((out / "report.json").read_text())["ceiling"] == ceiling
    # resuming the finished sweep reuses it (same world and settings)
    before = (out / "ceiling.json").stat().st_mtime_ns
    assert main(args) == 0
    assert "probe ceiling: F1" not in capsys.readouterr().out
    assert (out / "ceiling.json").stat().st_mtime_ns == before
    # --no-ceiling on a fresh sweep: none computed, none reported; --overwrite removes the file
    bare = tmp_path / "bare"
    assert main(["bench", "--saes", "topk", "--l0", "4", "--out", str(bare), "--no-ceiling", *SMALL]) == 0
    assert not (bare / "ceiling.json").exists()
    assert json.loads((bare / "report.json").read_text())["ceiling"] is None
    bench.clear_sweep(out)
    assert not (out / "ceiling.json").exists()
