"""The preset registry and ``resolve_world``, the one place a world spec is turned into a world."""

from __future__ import annotations

import json

import pytest

import synthsae
from synthsae import bench, cli
from synthsae.presets import PRESETS, preset, resolve_world
from tests.world.test_config import PRESET_16K


def test_registry_names_and_re_exports():
    assert list(PRESETS) == [
        "tiny",
        "synthsaebench-16k",
        "synthsaebench-cpu",
        "synthsaebench-65k",
        "synthsaebench-262k",
        "synthsaebench-1m",
    ]
    assert synthsae.preset is preset and synthsae.PRESETS is PRESETS
    assert preset("synthsaebench-16k").to_dict() == PRESET_16K
    assert set(bench.preset_protocols()) <= set(PRESETS)


@pytest.mark.parametrize(
    ("name", "n", "dim"), [("65k", 65536, 896), ("262k", 262144, 1024), ("1m", 2**20, 1152)]
)
def test_scale_presets_follow_the_stated_rules(name, n, dim):
    """The 16k world scaled by r = N / 16,384: D = 768 + 128 log4 r, Zipf on [5e-4 / r, 0.4 / sqrt r]
    keeping the expected active count (0.5 % of the 16k world's 59.1), 128 r trees, no
    orthogonalization, the rest unchanged."""
    big, base = preset(f"synthsaebench-{name}"), preset("synthsaebench-16k")
    r = n // 16384
    assert (big.num_features, big.hidden_dim, big.orthogonalization) == (n, dim, None)
    assert big.hierarchy.total_root_nodes == 128 * r and big.hierarchy.max_depth == base.hierarchy.max_depth
    p = big.firing_probability
    assert (p.min_prob, p.max_prob) == pytest.approx((5e-4 / r, 0.4 / r**0.5))
    expected = synthsae.zipfian_firing_probabilities(n, p.exponent, p.max_prob, p.min_prob).sum(dtype=float)
    want = synthsae.zipfian_firing_probabilities(16384, 0.5, 0.4, 5e-4).sum(dtype=float)
    assert expected == pytest.approx(want, rel=5e-3)
    for key in ("correlation", "std_firing_magnitudes", "mean_firing_magnitudes", "bias", "seed"):
        assert getattr(big, key) == getattr(base, key), key


def test_preset_returns_a_fresh_config():
    config = preset("tiny")
    config.orthogonalization = synthsae.OrthogonalizationConfig()
    config.hierarchy.max_depth = 5
    assert preset("tiny").orthogonalization is None and preset("tiny").hierarchy.max_depth == 2


def test_resolve_world_from_a_preset_a_directory_and_a_config_file(tmp_path):
    built, name = resolve_world("tiny")
    assert name == "tiny" and built.config == preset("tiny")
    built.save(tmp_path / "w")
    loaded, name = resolve_world(tmp_path / "w")
    assert name is None and loaded.fingerprint() == built.fingerprint()
    config = preset("tiny")
    config.orthogonalization = synthsae.OrthogonalizationConfig(num_steps=1)
    (tmp_path / "cfg.json").write_text(json.dumps(config.to_dict()))
    from_file, name = resolve_world(str(tmp_path / "cfg.json"), orthogonalize=False)
    assert name is None and from_file.fingerprint() == built.fingerprint()  # orthogonalization dropped
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="not a JSON world config"):
        resolve_world(tmp_path / "bad.json")
    with pytest.raises(
        ValueError, match="neither a preset \\(tiny, synthsaebench-16k, synthsaebench-cpu, synth"
    ):
        resolve_world("huge")


def test_help_texts_list_the_registry(capsys):
    parser = cli.build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split()).replace("- ", "-")  # argparse wraps at hyphens
    assert "tiny, synthsaebench-16k, synthsaebench-cpu, synthsaebench-65k" in text
    for name in bench.preset_protocols():
        assert f"{name} = SAEs" in text


def _usage_error(argv: list[str], capsys) -> str:
    """What ``synthsae argv`` prints to stderr, checking that it exits with code 2."""
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err


def test_directory_guard_messages_match_in_the_cli_and_the_api(tmp_path, capsys):
    target = tmp_path / "w"
    target.mkdir()
    (target / "mine.txt").write_text("keep")
    assert _usage_error(["world", "create", "--world", "tiny", "--out", str(target)], capsys) == (
        f"synthsae world: error: {target} exists and is not empty; pass --overwrite to replace its contents\n"
    )
    with pytest.raises(FileExistsError, match="is not empty; pass overwrite=True to replace the world there"):
        synthsae.World(preset("tiny"), show_progress=False).save(target)
    err = _usage_error(["world", "create", "--world", "tiny", "--out", str(target / "mine.txt")], capsys)
    assert "exists and is not a directory" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["world", "stats", "tiny", "--seed", str(2**64)],
            "argument --seed: must be <= 18446744073709551615",
        ),
        (["world", "stats", "tiny", "--samples", "0"], "argument --samples: must be >= 1, got 0"),
        (["world", "stats", "tiny", "--samples", "x"], "argument --samples: expected a number, got 'x'"),
        (["bench", "--l0", "4,nan"], "L0 must be finite"),
        (["bench", "--l0", "4,-3"], "L0 must be > 0"),
        (["bench", "--lr", "0"], "argument --lr: must be > 0"),
    ],
)
def test_cli_numbers_are_checked_by_the_validators(argv, message, capsys):
    assert message in _usage_error(argv, capsys)
