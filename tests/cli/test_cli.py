"""The command line: every subcommand on small inputs, bench's report and plots, and error exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import synthsae
from synthsae.cli import main

SMALL_BENCH = ["--samples", "20480", "--eval-samples", "4096", "--width", "32", "--quiet"]


def test_demo_prints_throughput(capsys):
    assert main(["demo", "--rows", "20000", "--features", "1000", "--threads", "2"]) == 0
    out = capsys.readouterr().out
    assert "sampled 20,000 rows on 2 thread(s)" in out and "rows/s" in out


def test_bench_writes_table_report_and_plots(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["bench", "--saes", "batchtopk,mp", "--l0", "4,6", "--out", str(out), *SMALL_BENCH]) == 0
    printed = capsys.readouterr().out
    assert "architecture" in printed and "MCC" in printed and printed.count("batchtopk") >= 2
    report = json.loads((out / "report.json").read_text())
    assert [(r["architecture"], r["l0"], r["seed"]) for r in report["runs"]] == [
        ("batchtopk", 4.0, 0),
        ("batchtopk", 6.0, 0),
        ("mp", 4.0, 0),
        ("mp", 6.0, 0),
    ]
    fields = {f for f in synthsae.EvalResult.__dataclass_fields__}
    for run in report["runs"]:
        assert set(run["result"]) == fields
        assert run["result"]["num_samples"] == 4096 and run["train_seconds"] > 0
        assert len(run["result"]["feature_best_abs_cos"]) == 1024
    assert report["world_config"] == synthsae.preset("tiny").to_dict()
    assert report["versions"]["synthsae"] == synthsae.__version__
    for name in report["plots"]:
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert (out / "runs" / "mp-l0-4-seed-0" / "sae" / "cfg.json").exists()
    assert not (out / "runs" / "mp-l0-4-seed-0" / "checkpoint.safetensors").exists()  # removed once finished
    # the table's MCC for mp L0=6 is the one in the report
    mp6 = report["runs"][3]["result"]
    assert f"{mp6['mcc']:.4f}" in printed


def test_bench_refuses_existing_output(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(SystemExit) as e:
        main(["bench", "--saes", "topk", "--l0", "4", "--out", str(out), *SMALL_BENCH])
    assert e.value.code == 2 and "not a bench sweep" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # --overwrite replaces sweeps only
        main(["bench", "--saes", "topk", "--l0", "4", "--out", str(out), "--overwrite", *SMALL_BENCH])
    assert e.value.code == 2 and "not a bench sweep" in capsys.readouterr().err
    assert (out / "mine.txt").read_text() == "keep me" and not (out / "report.json").exists()


def test_world_create_info_stats(tmp_path, capsys):
    out = tmp_path / "w"
    assert main(["world", "create", "--world", "tiny", "--out", str(out)]) == 0
    world = synthsae.World.load(out)
    assert world.num_features == 1024
    assert main(["world", "info", str(out)]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed[printed.index("{") :]) == synthsae.preset("tiny").to_dict()
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps(synthsae.preset("tiny").to_dict()))
    assert main(["world", "stats", str(config), "--samples", "2000", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["num_samples"] == 2000 and 13 < stats["true_l0"] < 18
    with pytest.raises(SystemExit) as e:
        main(["world", "create", "--world", "tiny", "--out", str(out)])
    assert e.value.code == 2


def test_sample_writes_rows(tmp_path):
    out = tmp_path / "rows.safetensors"
    assert (
        main(
            [
                "sample",
                "--world",
                "tiny",
                "--rows",
                "300",
                "--start",
                "100",
                "--seed",
                "4",
                "--hidden",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    data = load_file(out)
    world = synthsae.World(synthsae.preset("tiny"))
    h, feats = world.sample(300, seed=4, start=100, return_features=True)
    np.testing.assert_array_equal(data["indptr"], feats.indptr)
    np.testing.assert_array_equal(data["values"], feats.values)
    np.testing.assert_array_equal(data["hidden"], h.numpy())
    assert data["shape"].tolist() == [300, 1024]
    with pytest.raises(SystemExit) as e:
        main(["sample", "--world", "tiny", "--rows", "3", "--out", str(out)])
    assert e.value.code == 2


def test_eval_scores_a_saved_sae(tmp_path, capsys):
    from synthsae import saes

    sae = saes.TopKSAE(64, 32, 4, seed=0)
    sae.save(tmp_path / "sae")
    js = tmp_path / "result.json"
    assert (
        main(
            [
                "eval",
                "--sae",
                str(tmp_path / "sae"),
                "--world",
                "tiny",
                "--samples",
                "2048",
                "--json",
                str(js),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    want = synthsae.evaluate(
        sae, synthsae.World(synthsae.preset("tiny")), num_samples=2048, show_progress=False
    )
    assert json.loads(js.read_text())["mcc"] == want.mcc
    assert "classification/f1_score" in printed


@pytest.fixture
def no_eval_work(monkeypatch):
    """Makes building the world or evaluating fail the test: what must be refused before any work."""

    def fail(*args, **kwargs):
        raise AssertionError("eval did work before refusing its arguments")

    monkeypatch.setattr(synthsae, "evaluate", fail)
    monkeypatch.setattr("synthsae.cli.commands.resolve_world", fail)


def _saved_sae(path):
    from synthsae import saes

    saes.TopKSAE(64, 32, 4, seed=0).save(path)
    return str(path)


def test_eval_refuses_an_existing_json_before_any_work(tmp_path, capsys, no_eval_work):
    js = tmp_path / "result.json"
    js.write_text("{}")
    with pytest.raises(SystemExit) as e:
        main(["eval", "--sae", _saved_sae(tmp_path / "sae"), "--world", "tiny", "--json", str(js)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert str(js) in err and "--overwrite" in err
    assert js.read_text() == "{}"


def test_eval_refuses_a_json_in_a_missing_directory_before_any_work(tmp_path, capsys, no_eval_work):
    js = tmp_path / "missing" / "result.json"
    with pytest.raises(SystemExit) as e:
        main(["eval", "--sae", _saved_sae(tmp_path / "sae"), "--world", "tiny", "--json", str(js)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--json" in err and f"directory {tmp_path / 'missing'} does not exist" in err
    assert ".tmp" not in err


def test_eval_names_the_cfg_json_of_a_bad_synthsae_config(tmp_path, capsys):
    sae_dir = tmp_path / "sae"
    _saved_sae(sae_dir)
    cfg = json.loads((sae_dir / "cfg.json").read_text())
    (sae_dir / "cfg.json").write_text(json.dumps({**cfg, "d_sae": -5}))
    with pytest.raises(SystemExit) as e:
        main(["eval", "--sae", str(sae_dir), "--world", "tiny", "--samples", "64"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert str(sae_dir / "cfg.json") in err and "d_sae" in err


def test_eval_of_a_saelens_topk_dir_without_sae_lens_says_to_install_it(tmp_path, capsys, monkeypatch):
    """A SAELens directory whose architecture is also a synthsae one (topk) is SAELens's, by its fields."""
    sae_dir = tmp_path / "sae"
    sae_dir.mkdir()
    config = {
        "d_in": 64,
        "d_sae": 32,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {"sae_lens_version": "6.54.12"},
        "k": 4,
        "rescale_acts_by_decoder_norm": False,
        "architecture": "topk",
    }
    (sae_dir / "cfg.json").write_text(json.dumps(config))
    monkeypatch.setitem(sys.modules, "sae_lens", None)  # import sae_lens raises ImportError
    with pytest.raises(SystemExit) as e:
        main(["eval", "--sae", str(sae_dir), "--world", "tiny", "--samples", "64"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert str(sae_dir) in err and "pip install sae-lens" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--rows", "0"],
        ["demo", "--rows", "x"],
        ["nope"],
        [],
        ["demo", "--min-prob", "0.9"],
        ["bench", "--saes", "nope"],
        ["bench", "--l0", "-3"],
        ["bench", "--preset", "/no/such/world"],
        ["bench", "--samples", "10", "--batch-size", "1024"],
        ["world", "info", "/no/such/world"],
        ["eval", "--sae", "/no/such/sae", "--world", "tiny"],
        ["world"],
    ],
)
def test_bad_flags_exit_2(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # bench's default output directory lands here
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["bench"], ["world", "create"], ["sample"], ["eval"], ["demo"]])
def test_python_dash_m_help(command):
    out = subprocess.run(
        [sys.executable, "-m", "synthsae", *command, "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "usage" in out.stdout


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory):
    """A finished one-run bench sweep of the tiny world: its directory and the run's directory."""
    out = tmp_path_factory.mktemp("sweep") / "sweep"
    assert main(["bench", "--saes", "topk", "--l0", "4", "--out", str(out), *SMALL_BENCH]) == 0
    return out, out / "runs" / "topk-l0-4-seed-0"


@pytest.mark.parametrize("which", ["sae", "run"])
def test_eval_of_a_bench_sae_scores_it_as_bench_did(small_sweep, tmp_path, capsys, which):
    """Without --world, --seed, --samples, eval of a sweep's SAE (its sae/ or its run directory) uses
    the sweep's world, the run's seed + 1 and the sweep's evaluation rows: bench's numbers exactly."""
    _, run = small_sweep
    js = tmp_path / "result.json"
    sae = run / "sae" if which == "sae" else run
    capsys.readouterr()
    assert main(["eval", "--sae", str(sae), "--json", str(js)]) == 0
    printed = capsys.readouterr().out
    assert "stream seed 1 (bench run topk-l0-4-seed-0's seed 0 + 1" in printed
    assert "4,096 rows (the sweep's evaluation rows)" in printed and "world: the sweep's (tiny" in printed
    got = json.loads(js.read_text())
    want = json.loads((run / "run.json").read_text())["result"]
    assert (got["mcc"], got["f1"], got["num_samples"]) == (want["mcc"], want["f1"], want["num_samples"])
    assert got == want
    if which == "run":
        assert f"loading its SAE from {run / 'sae'}" in printed


def test_eval_of_a_bench_sae_lets_explicit_flags_win(small_sweep, capsys):
    _, run = small_sweep
    capsys.readouterr()
    argv = ["eval", "--sae", str(run / "sae"), "--seed", "7", "--samples", "1024", "--world", "tiny"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "stream seed 7 (--seed) and 1,024 rows (--samples)" in printed
    assert "world: the sweep's" not in printed and "note:" not in printed  # --world tiny is its world


def test_eval_points_from_a_sweep_or_an_empty_directory_to_the_sae(small_sweep, tmp_path, capsys):
    sweep, run = small_sweep
    with pytest.raises(SystemExit) as e:
        main(["eval", "--sae", str(sweep)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "is a bench sweep" in err and str(run / "sae") in err
    with pytest.raises(SystemExit) as e:
        main(["eval", "--sae", str(tmp_path), "--world", "tiny"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "no cfg.json" in err and "<sweep>/runs/<run>/sae" in err
    with pytest.raises(SystemExit) as e:  # an SAE outside a sweep needs --world
        main(["eval", "--sae", _saved_sae(tmp_path / "sae")])
    assert e.value.code == 2 and "--world is required" in capsys.readouterr().err


def _walk_parsers(parser, path=()):
    import argparse

    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk_parsers(sub, (*path, name))


def test_every_help_is_plain_text_and_every_flag_has_help():
    from synthsae.cli import build_parser

    seen = 0
    for path, parser in _walk_parsers(build_parser()):
        text = parser.format_help()
        for markup in ("``", ":func:", ":class:", ":meth:", ":mod:", ":data:"):
            assert markup not in text, (path, markup)
        for action in parser._actions:
            if action.dest != "help":
                assert action.help, (path, action.option_strings or action.dest)
                seen += 1
    assert seen > 50


def test_shard_index_help_says_what_it_selects():
    from synthsae.cli import build_parser

    bench = dict(_walk_parsers(build_parser()))[("bench",)]
    text = " ".join(bench.format_help().split())
    assert "whose index (in the sweep's order) mod --num-shards equals this" in text


def test_version_is_one_line_on_a_narrow_terminal(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "40")
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"synthsae {synthsae.__version__} (") and out.count("\n") == 1


def test_world_stats_labels_every_quantity(capsys):
    assert main(["world", "stats", "tiny", "--samples", "2000"]) == 0
    out = capsys.readouterr().out
    assert "true L0 (active features per row, mean over rows): " in out
    assert "(standard error)" in out
    assert "L0 of the first 256 features" in out and "at L0 6, 8, 10" in out
    assert "measured rate" in out and "* conditional: the probability that a feature fires given" in out
    assert "RMS correlation" in out and "mean max |cos| between feature directions" in out
    assert "{" not in out  # not JSON: --json prints that
    stats = synthsae.World(synthsae.preset("tiny")).stats(2000, first_features=[256])
    assert f"among them): {stats['true_l0_first']['256']:.2f}" in out
    assert 7 < stats["true_l0_first"]["256"] < 9.5 < stats["true_l0"]


@pytest.fixture(scope="module")
def sweep_results(small_sweep):
    from synthsae.bench.records import read_run

    _, run = small_sweep
    result = synthsae.EvalResult.from_dict(read_run(run / "run.json")["result"])
    return [("topk", 4.0, result)]


@pytest.fixture
def drawn(monkeypatch):
    """Each figure's axes as the plots leave them when saved, by file name."""
    import matplotlib.figure

    figures = {}

    def record(fig, path, *args, **kwargs):
        figures[Path(path).name] = fig

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", record)
    return figures


def test_plots_legend_below_the_lines_and_offset_noted(sweep_results, tmp_path, drawn):
    from synthsae.bench.plots import write_plots

    results = [*sweep_results, ("other", 4.0, sweep_results[0][2])]
    write_plots(tmp_path, results, synthsae.World(synthsae.preset("tiny")).firing_probabilities.numpy())
    fig = drawn["mcc_f1_vs_l0.png"]
    assert all(ax.get_legend() is None for ax in fig.axes) and len(fig.legends) == 1
    for name in ("mcc_f1_vs_l0.png", "explained_variance_vs_l0.png"):
        for ax in drawn[name].axes:
            assert "offset sideways per architecture" in ax.get_xlabel()


def test_feature_recovery_breaks_its_line_at_empty_bins(sweep_results, tmp_path, drawn):
    from synthsae.bench.plots import binned_recovery, write_plots

    p = np.concatenate([np.full(512, 1e-3), np.full(512, 0.3)]).astype(np.float32)  # nothing between
    centres, means = binned_recovery(p, np.linspace(0, 1, 1024))
    assert np.isnan(means[1:-1]).all() and np.isfinite(means[[0, -1]]).all()
    assert means[0] == pytest.approx(np.linspace(0, 1, 1024)[:512].mean())
    write_plots(tmp_path, sweep_results, p)
    (line,) = drawn["feature_recovery.png"].axes[0].get_lines()
    assert np.isnan(line.get_ydata()).sum() == len(centres) - 2


class _Recovery:
    """An evaluation result with other ``recovery`` figures (the rest of its fields its own)."""

    def __init__(self, result, recovery):
        self._result, self.recovery = result, recovery

    def __getattr__(self, name):
        return getattr(self._result, name)


def test_absorption_panels_show_the_same_depths(sweep_results, tmp_path, drawn):
    from synthsae.bench.plots import depth_groups, write_plots

    _, l0, result = sweep_results[0]
    recovery = dict(result.recovery)
    recovery.setdefault("absorption/full_rate/depth_1", 0.5)
    recovery.pop("absorption/gap/depth_1", None)  # the gap's panel has no depth 1
    result = _Recovery(result, recovery)
    keys = ("absorption/gap", "absorption/full_rate", "absorption/fraction")
    assert depth_groups([result], keys)[:2] == ["depth_0", "depth_1"]
    p = synthsae.World(synthsae.preset("tiny")).firing_probabilities.numpy()
    write_plots(tmp_path, [("topk", l0, result)], p)
    axes = drawn["absorption_by_depth.png"].axes
    ticks = [[t.get_text() for t in ax.get_xticklabels()] for ax in axes]
    assert ticks[0] == ticks[1] == ticks[2] and "depth 1" in ticks[0]
    assert "n/a" in [t.get_text() for t in axes[0].texts]
