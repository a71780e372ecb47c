"""An SAE architecture defined in one module of its own (tests/saes/plugins/toy_sae.py) registers itself on
import and runs through `synthsae bench --sae-module ... --saes toy` and `bench.run` like a built-in."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

import synthsae
from synthsae import bench, saes
from synthsae.cli import main
from synthsae.saes import external, registry

TOY = Path(__file__).resolve().parent / "plugins" / "toy_sae.py"
SMALL = ["--samples", "20480", "--eval-samples", "4096", "--width", "32", "--quiet"]


@pytest.fixture(autouse=True)
def _registry_restored():
    """Each test leaves the registry (and sys.modules) as it found them."""
    before = dict(registry.ARCHITECTURES)
    yield
    registry.ARCHITECTURES.clear()
    registry.ARCHITECTURES.update(before)
    sys.modules.pop(TOY.stem, None)


def test_importing_the_module_registers_the_architecture():
    assert "toy" not in saes.ARCHITECTURES
    assert external.import_sae_module(str(TOY)) == ["toy"]
    cls = saes.ARCHITECTURES["toy"]
    assert cls.__name__ == "ToySAE" and registry.architecture_class("toy") is cls
    sae = saes.create_sae("toy", 8, 32, l0=3.6, seed=0)
    assert type(sae) is cls and sae.k == 4 and sae.config()["architecture"] == "toy"
    assert "toy" in registry.direct_l0_saes() and "toy" not in registry.paper_saes()
    assert registry.bench_order()[-1] == "toy"  # after the built-ins
    # importing the same file again redefines the class in place of the earlier one
    assert external.import_sae_module(str(TOY)) == ["toy"]
    assert saes.ARCHITECTURES["toy"] is not cls and saes.ARCHITECTURES["toy"].__name__ == "ToySAE"


def test_toy_architecture_runs_through_the_cli_and_the_api(tmp_path, capsys):
    out = tmp_path / "cli"
    # --saes may come before the --sae-module that defines its names
    argv = ["bench", "--saes", "toy,topk", "--sae-module", str(TOY), "--l0", "4", "--out", str(out), *SMALL]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "protocol: SAEs toy,topk;" in printed
    assert any(line.startswith("toy ") for line in printed.splitlines())  # a row of the table
    report = json.loads((out / "report.json").read_text())
    runs = {r["name"]: r for r in report["runs"]}
    assert set(runs) == {"toy-l0-4-seed-0", "topk-l0-4-seed-0"}
    assert 0 < runs["toy-l0-4-seed-0"]["result"]["mcc"] < 1
    assert "toy" in {g["architecture"] for g in report["summary"]}
    loaded = saes.load_sae(out / "runs" / "toy-l0-4-seed-0" / "sae")
    assert type(loaded) is saes.ARCHITECTURES["toy"] and loaded.k == 4

    world = synthsae.World(synthsae.preset("tiny"))
    protocol = bench.Protocol(saes=["toy"], l0s=[4.0], width=32, samples=20480, eval_samples=4096, lr=1e-3)
    api = bench.run(world, protocol, tmp_path / "api", show_progress=False, log=lambda _: None)
    assert [r["name"] for r in api["runs"]] == ["toy-l0-4-seed-0"]
    assert api["runs"][0]["result"] == runs["toy-l0-4-seed-0"]["result"]  # same training, same numbers
    assert "toy" in bench.table(api)


def test_a_name_clash_with_a_built_in_is_refused():
    with pytest.raises(ValueError, match=r"'topk' is already registered by synthsae\.saes\.topk\.TopKSAE"):

        class Impostor(saes.SAE):
            architecture: ClassVar[str] = "topk"

            @classmethod
            def from_l0(cls, d_in: int, d_sae: int, l0: float, **kwargs: Any) -> Impostor:
                raise AssertionError

    assert saes.ARCHITECTURES["topk"] is saes.TopKSAE


def test_an_architecture_must_say_how_an_l0_maps_to_its_settings():
    with pytest.raises(TypeError, match="must define from_l0"):

        class NoL0(saes.SAE):
            architecture: ClassVar[str] = "no-l0"

    assert "no-l0" not in saes.ARCHITECTURES


def test_a_subclass_without_its_own_name_is_not_registered_nor_in_the_paper():
    class Variant(saes.BatchTopKSAE):
        pass

    assert Variant not in saes.ARCHITECTURES.values() and Variant.architecture == "batchtopk"

    class Renamed(saes.BatchTopKSAE):
        architecture: ClassVar[str] = "renamed-batchtopk"

    assert saes.ARCHITECTURES["renamed-batchtopk"] is Renamed
    assert not Renamed.in_paper and "renamed-batchtopk" not in registry.paper_saes()
    assert Renamed.from_l0(8, 32, 3.0).k == 3


def test_bad_sae_modules_and_unknown_names_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    for argv, message in [
        (["bench", "--sae-module", str(empty)], "defines no SAE architecture"),
        (["bench", "--sae-module", str(tmp_path / "missing.py")], "cannot import"),
        (["bench", "--saes", "toy"], "unknown SAE(s) ['toy']"),
    ]:
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        assert message in capsys.readouterr().err
    assert not list(tmp_path.glob("synthsae-bench-*"))
    sys.modules.pop("empty", None)
