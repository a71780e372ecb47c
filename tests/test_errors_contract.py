"""The error contract in one place: the classes of synthsae.errors and what they derive from, the Rust
core raising those same classes, corrupt files named by a FileFormatError, and the command line's exit
codes (2 usage, 1 a failed run, 3 an internal error with its traceback)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import synthsae
from synthsae import _core, errors
from synthsae._files import read_json
from synthsae.cli import EXIT_FAILED, EXIT_INTERNAL, EXIT_USAGE, commands, main
from synthsae.errors import (
    ConfigError,
    ConfigTypeError,
    FileFormatError,
    ResourceError,
    SynthSAEError,
    UsageError,
)
from synthsae.training.loop import TrainingDiverged


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (ConfigError, ValueError),
        (ConfigTypeError, TypeError),
        (FileFormatError, ValueError),
        (ResourceError, ValueError),
        (TrainingDiverged, RuntimeError),
    ],
)
def test_every_class_is_a_synthsae_error_and_still_its_builtin(cls, builtin):
    assert issubclass(cls, SynthSAEError) and issubclass(cls, builtin)


def test_the_hierarchy_keeps_kinds_apart():
    assert issubclass(UsageError, SynthSAEError) and not issubclass(UsageError, ValueError)
    assert not issubclass(ConfigTypeError, ValueError)  # except ValueError keeps meaning "a bad value"
    assert not issubclass(ResourceError, MemoryError)  # refused before any allocation
    for a, b in [
        (ConfigError, FileFormatError),
        (ConfigError, ResourceError),
        (FileFormatError, ResourceError),
    ]:
        assert not issubclass(a, b) and not issubclass(b, a)
    assert synthsae.ConfigError is errors.ConfigError and synthsae.errors is errors
    assert commands.UsageError is UsageError


def test_a_file_format_error_carries_its_path_and_pickles(tmp_path):
    e = FileFormatError(f"{tmp_path / 'x.json'}: broken", tmp_path / "x.json")
    assert e.path == tmp_path / "x.json"
    again = pickle.loads(pickle.dumps(e))
    assert type(again) is FileFormatError and again.path == e.path and str(again) == str(e)
    assert FileFormatError("no path").path is None


@pytest.mark.parametrize(
    ("call", "cls", "message"),
    [
        (lambda: _core.zipfian_firing_probabilities(0, 1.0, 0.3, 0.01), ConfigError, "num_features: must be"),
        (
            lambda: _core.linear_sum_assignment(np.zeros((2, 2), dtype=np.int32)),
            ConfigTypeError,
            "cost_matrix must be a 2-D float32 or float64 array",
        ),
        (
            lambda: _core.zipfian_firing_probabilities(10**18, 1.0, 0.3, 0.01),
            ResourceError,
            "more than this machine has",
        ),
    ],
    ids=["invalid-value", "invalid-type", "resource"],
)
def test_each_rust_error_kind_arrives_as_its_class(call, cls, message):
    with pytest.raises(cls, match=message) as info:
        call()
    assert type(info.value) is cls  # the very class of synthsae.errors, not a look-alike


def test_python_argument_checks_raise_config_errors():
    with pytest.raises(ConfigError, match=r"^num_features"):
        synthsae.zipfian_firing_probabilities(0, 1.0, 0.3, 0.01)
    with pytest.raises(ConfigTypeError, match=r"^num_features"):
        synthsae.zipfian_firing_probabilities("many", 1.0, 0.3, 0.01)


def test_a_corrupt_json_file_is_a_file_format_error_naming_it(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": ')
    with pytest.raises(FileFormatError, match=f"^{bad}") as info:
        read_json(bad)
    assert info.value.path == bad


def test_a_corrupt_world_directory_is_a_file_format_error_naming_the_file(tmp_path):
    from synthsae.world.io import CONFIG_FILE, WEIGHTS_FILE

    (tmp_path / CONFIG_FILE).write_text("[1, 2")
    (tmp_path / WEIGHTS_FILE).write_bytes(b"")
    with pytest.raises(FileFormatError) as info:
        synthsae.World.load(tmp_path)
    assert str(tmp_path / CONFIG_FILE) in str(info.value)
    assert info.value.path == tmp_path / CONFIG_FILE


def test_a_corrupt_manifest_is_a_file_format_error_naming_it(tmp_path):
    (tmp_path / "manifest.json").write_text('{"format": "something else"}')
    with pytest.raises(FileFormatError, match="not a valid synthsae manifest") as info:
        synthsae.verify(tmp_path)
    assert info.value.path == tmp_path / "manifest.json"


def test_a_truncated_checkpoint_is_a_file_format_error_naming_it(tmp_path):
    from synthsae.training import checkpoints

    file = tmp_path / "checkpoint.safetensors"
    file.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(FileFormatError, match=f"^{file}: unreadable checkpoint") as info:
        checkpoints.load(file, "cpu")
    assert info.value.path == file


def _exit(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code, capsys.readouterr().err


def test_cli_a_bad_flag_exits_2(capsys):
    code, err = _exit(["demo", "--rows", "x"], capsys)
    assert code == EXIT_USAGE == 2 and "error" in err


def test_cli_a_bad_value_rejected_by_the_core_exits_2(capsys):
    code, err = _exit(["demo", "--min-prob", "0.9"], capsys)
    assert code == 2 and "synthsae demo: error:" in err and "Traceback" not in err


def test_cli_a_corrupt_input_file_exits_1_naming_it(tmp_path, capsys):
    manifest = tmp_path / "manifest.json"
    manifest.write_text("{not json")
    code, err = _exit(["verify", str(tmp_path)], capsys)
    assert code == EXIT_FAILED == 1
    assert f"synthsae verify: failed: {manifest}" in err and "Traceback" not in err


def test_cli_a_usage_error_exits_2(monkeypatch, capsys):
    def refuse(args):
        raise UsageError("--out x exists; pass --overwrite to replace it")

    monkeypatch.setattr(commands, "run_demo", refuse)
    code, err = _exit(["demo"], capsys)
    assert code == 2 and err == "synthsae demo: error: --out x exists; pass --overwrite to replace it\n"


@pytest.mark.parametrize(
    "raised", [KeyError("rows"), AssertionError("unreachable"), ValueError("shapes differ")]
)
def test_cli_an_internal_error_shows_its_traceback_and_asks_for_a_report(monkeypatch, capsys, raised):
    """A KeyError, an AssertionError, or a ValueError raised outside synthsae's code (here: this test
    file, as numpy or torch would) is a bug, not a message for users."""

    def broken(args):
        raise raised

    monkeypatch.setattr(commands, "run_demo", broken)
    code, err = _exit(["demo"], capsys)
    assert code == EXIT_INTERNAL == 3
    lines = err.rstrip("\n").splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert any(line.startswith(type(raised).__name__) for line in lines)
    assert lines[-1] == "synthsae demo: internal error; please report it with the traceback above"


@pytest.mark.parametrize(
    ("raised", "code"),
    [
        (OSError(28, "No space left on device"), 1),
        (RuntimeError("lost its Dask workers"), 1),
        (TrainingDiverged("training diverged at step 3"), 1),
        (ResourceError("n: 10^15 rows would need 1 PiB of memory"), 2),
        (FileNotFoundError("/no/such/world is not a world directory"), 2),
        (FileExistsError("out exists and is not empty; pass --overwrite"), 2),
    ],
)
def test_cli_failed_runs_exit_1_and_refusals_before_any_work_exit_2(monkeypatch, capsys, raised, code):
    def run(args):
        raise raised

    monkeypatch.setattr(commands, "run_demo", run)
    got, err = _exit(["demo"], capsys)
    assert got == code and str(raised) in err and "Traceback" not in err
