"""bench's files from others: --overwrite deletes only what bench wrote and never through a link, corrupt
sweep files are named, run names are unique per L0, and a diverged run is recorded without stopping the
sweep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import synthsae
from synthsae import bench
from synthsae.cli import main

SMALL = ["--samples", "20480", "--eval-samples", "4096", "--width", "32", "--quiet"]
RUN = "topk-l0-4-seed-0"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "s"
    assert main(["bench", "--saes", "topk", "--l0", "4", "--out", str(out), *SMALL]) == 0
    return out


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst, symlinks=True)
    return dst


def _exit(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(argv)
    return int(e.value.code), capsys.readouterr().err


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_overwrite_never_deletes_through_a_symlinked_runs_dir(sweep, tmp_path, capsys):
    out = _copy(sweep, tmp_path / "s")
    elsewhere = (out / "runs").rename(tmp_path / "elsewhere")
    (out / "runs").symlink_to(elsewhere)
    before = _snapshot(elsewhere)
    code, err = _exit(
        ["bench", "--saes", "topk", "--l0", "4", "--out", str(out), "--overwrite", *SMALL], capsys
    )
    assert code == 2 and "runs" in err and "link" in err
    assert _snapshot(elsewhere) == before
    assert (out / "bench.json").is_file()  # the protocol guard is kept


def test_overwrite_refuses_a_directory_that_is_not_a_sweep(tmp_path, capsys):
    out = tmp_path / "logs"
    (out / "runs" / "tensorboard").mkdir(parents=True)
    (out / "runs" / "tensorboard" / "events").write_text("precious")
    code, err = _exit(
        ["bench", "--saes", "topk", "--l0", "4", "--out", str(out), "--overwrite", *SMALL], capsys
    )
    assert code == 2 and "not a bench sweep" in err
    assert (out / "runs" / "tensorboard" / "events").read_text() == "precious"


def test_overwrite_refuses_files_bench_did_not_write(sweep, tmp_path, capsys):
    out = _copy(sweep, tmp_path / "s")
    (out / "runs" / RUN / "notes.txt").write_text("mine")
    code, err = _exit(
        ["bench", "--saes", "topk", "--l0", "4", "--out", str(out), "--overwrite", *SMALL], capsys
    )
    assert code == 2 and "notes.txt" in err
    assert (out / "runs" / RUN / "run.json").is_file()  # nothing deleted


def test_overwrite_replaces_a_sweep_and_keeps_other_files(sweep, tmp_path, capsys):
    out = _copy(sweep, tmp_path / "s")
    (out / "README.txt").write_text("about this sweep")
    argv = ["bench", "--saes", "topk", "--l0", "4", "--lr", "0.002", "--out", str(out), "--overwrite", *SMALL]
    assert main(argv) == 0
    assert json.loads((out / "bench.json").read_text())["protocol"]["lr"] == 0.002
    assert (out / "README.txt").read_text() == "about this sweep"
    assert "finished earlier" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        (f"runs/{RUN}/run.json", "{}", "'name' missing"),
        (f"runs/{RUN}/run.json", '{"name": "x"', "JSONDecodeError"),
        (
            f"runs/{RUN}/run.json",
            '{"name": "a", "architecture": "topk", "l0": 4, "seed": 0, "result": {}}',
            "result",
        ),
        ("bench.json", "[]", "not an object"),
        ("bench.json", "{}", "'schema' missing"),
        ("bench.json", '{"schema": 2', "JSONDecodeError"),
    ],
)
def test_corrupt_sweep_files_are_named(sweep, tmp_path, capsys, file, content, message):
    out = _copy(sweep, tmp_path / "s")
    (out / file).write_text(content)
    code, err = _exit(["report", str(out)], capsys)
    assert code == 1 and str(out / file) in err and message in err  # an unusable input file: a failed run
    code, err = _exit(["bench", "--saes", "topk", "--l0", "4", "--out", str(out), *SMALL], capsys)
    assert code == 1 and str(out / file) in err


def test_a_truncated_checkpoint_is_named_when_the_sweep_resumes(sweep, tmp_path, capsys):
    out = _copy(sweep, tmp_path / "s")
    world = synthsae.World(synthsae.preset("tiny"), show_progress=False)
    sae = synthsae.saes.create_sae("topk", world.hidden_dim, 32, l0=4, seed=0)
    args = {"total_samples": 2048, "batch_size": 1024, "show_progress": False}
    synthsae.train(sae, world, checkpoint_dir=out / "runs" / RUN, **args)
    (out / "runs" / RUN / "run.json").unlink()
    checkpoint = out / "runs" / RUN / "checkpoint.safetensors"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    code, err = _exit(["bench", "--saes", "topk", "--l0", "4", "--out", str(out), *SMALL], capsys)
    assert code == 1 and str(checkpoint) in err


def test_run_names_are_unique_per_l0_and_repeats_are_refused(tmp_path, capsys):
    names = {bench.RunSpec("topk", l0, 0).name for l0 in (6.0, 6.0000004, 6.5, 1e-7)}
    assert len(names) == 4 and "topk-l0-6-seed-0" in names  # whole values keep their short names
    code, err = _exit(
        ["bench", "--saes", "topk", "--l0", "4,4", "--out", str(tmp_path / "a"), *SMALL], capsys
    )
    assert code == 2 and "more than once" in err
    code, err = _exit(["bench", "--saes", "topk,topk", "--out", str(tmp_path / "b"), *SMALL], capsys)
    assert code == 2 and "more than once" in err


class _Diverges(torch.nn.Module):
    """An SAE whose loss is NaN from the first step."""

    def __init__(self, d_in: int, d_sae: int) -> None:
        super().__init__()
        self.W_dec = torch.nn.Parameter(torch.randn(d_sae, d_in))

    def encode(self, x):
        return torch.relu(x @ self.W_dec.T)

    def decode(self, z):
        return z @ self.W_dec

    def loss(self, x):
        return (self.decode(self.encode(x)) - x).pow(2).sum() * float("nan")


def test_a_diverged_run_is_recorded_and_the_sweep_goes_on(tmp_path, capsys):
    world = synthsae.World(synthsae.preset("tiny"), show_progress=False)
    protocol = bench.Protocol(saes=["topk"], l0s=[4.0], width=32, samples=20480, eval_samples=4096, lr=1e-3)
    lines: list[str] = []
    report = bench.run(
        world,
        protocol,
        tmp_path,
        saes={"bad": lambda d_in, d_sae, l0, seed: _Diverges(d_in, d_sae)},
        show_progress=False,
        log=lines.append,
    )
    assert [r["name"] for r in report["runs"]] == ["topk-l0-4-seed-0"]
    assert [f["name"] for f in report["failed"]] == ["bad-l0-4-seed-0"] and "diverged" in report["failed"][0][
        "failed"
    ]
    assert any(line.startswith("bad-l0-4-seed-0: failed") for line in lines)
    assert "bad-l0-4-seed-0: failed (training diverged" in bench.table(report)
    again = bench.run(
        world, protocol, tmp_path, saes={"bad": _Diverges}, show_progress=False, log=lines.append
    )
    assert "bad-l0-4-seed-0: failed earlier, skipped" in lines and again["failed"] == report["failed"]


def test_an_absurd_width_is_refused_by_name_before_allocation(tmp_path, capsys):
    argv = ["bench", "--saes", "topk", "--l0", "4", "--width", "1000000000000", "--out", str(tmp_path / "w")]
    code, err = _exit([*argv, *SMALL[:4], "--quiet"], capsys)
    assert code == 2 and "d_sae" in err and "memory" in err


def test_each_run_records_torch_threads(sweep):
    report = json.loads((sweep / "report.json").read_text())
    assert all(isinstance(r["torch_threads"], int) and r["torch_threads"] >= 1 for r in report["runs"])
