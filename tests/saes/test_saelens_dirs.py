"""SAE directories saved by SAELens, scored by ``synthsae eval``: routed by their cfg.json's fields (not by
an architecture name synthsae also uses), loaded by SAELens, and scored as ``synthsae.evaluate`` scores the
SAE SAELens loads. Every test name contains ``saelens`` (CI runs them with ``-k saelens``)."""

from __future__ import annotations

import json
from dataclasses import fields
from inspect import signature

import pytest
import torch

import synthsae
from synthsae import saes
from synthsae.cli import main
from synthsae.saes.saelens import SAELENS_KEYS, is_saelens_config, load_any_sae

sae_lens = pytest.importorskip("sae_lens")
SAE_CLASS_REGISTRY = sae_lens.registry.SAE_CLASS_REGISTRY
SAE_TRAINING_CLASS_REGISTRY = sae_lens.registry.SAE_TRAINING_CLASS_REGISTRY

SAMPLES = 2048  # eval rows; the CLI's --seed default is 0, as is evaluate()'s
D_SAE = 48
K = 4


@pytest.fixture(scope="module")
def world():
    return synthsae.World(synthsae.preset("tiny"))


def _save(kind: str, path, d_in: int) -> None:
    """A randomly initialised SAELens SAE of ``kind`` saved into ``path`` the way SAELens saves it."""
    torch.manual_seed(0)
    if kind == "standard":
        sae_lens.StandardSAE(sae_lens.StandardSAEConfig(d_in=d_in, d_sae=D_SAE)).save_model(path)
    elif kind == "topk":
        sae_lens.TopKSAE(sae_lens.TopKSAEConfig(d_in=d_in, d_sae=D_SAE, k=K)).save_model(path)
    elif kind == "jumprelu":
        sae = sae_lens.JumpReLUSAE(sae_lens.JumpReLUSAEConfig(d_in=d_in, d_sae=D_SAE))
        with torch.no_grad():
            sae.threshold.fill_(0.01)
        sae.save_model(path)
    elif kind in ("batchtopk-inference", "batchtopk-training"):
        sae = sae_lens.BatchTopKTrainingSAE(sae_lens.BatchTopKTrainingSAEConfig(d_in=d_in, d_sae=D_SAE, k=K))
        if kind == "batchtopk-inference":
            sae.save_inference_model(path)
        else:
            sae.save_model(path)
    elif kind in ("matryoshka-inference", "matryoshka-training"):
        config = sae_lens.MatryoshkaBatchTopKTrainingSAEConfig(
            d_in=d_in, d_sae=D_SAE, k=K, matryoshka_widths=[16, 32, D_SAE]
        )
        sae = sae_lens.MatryoshkaBatchTopKTrainingSAE(config)
        if kind == "matryoshka-inference":
            sae.save_inference_model(path)
        else:
            sae.save_model(path)
    else:
        raise AssertionError(kind)


# (how it is saved, the architecture its cfg.json then names)
KINDS = [
    ("standard", "standard"),
    ("topk", "topk"),
    ("jumprelu", "jumprelu"),
    ("batchtopk-inference", "jumprelu"),
    ("batchtopk-training", "batchtopk"),
    ("matryoshka-inference", "jumprelu"),
    ("matryoshka-training", "matryoshka_batchtopk"),
]


def _load_with_saelens(path):
    """The SAE as SAELens loads it: its inference loader, or its training one for an architecture SAELens
    only trains."""
    architecture = json.loads((path / "cfg.json").read_text())["architecture"]
    loader = sae_lens.SAE if architecture in SAE_CLASS_REGISTRY else sae_lens.TrainingSAE
    return loader.load_from_disk(str(path), device="cpu")


@pytest.mark.parametrize(("kind", "architecture"), KINDS)
def test_saelens_dir_scores_as_evaluate_scores_the_saelens_sae(tmp_path, world, kind, architecture):
    path = tmp_path / kind
    _save(kind, path, world.hidden_dim)
    assert json.loads((path / "cfg.json").read_text())["architecture"] == architecture
    out = tmp_path / "result.json"
    argv = ["eval", "--sae", str(path), "--world", "tiny", "--samples", str(SAMPLES), "--json", str(out)]
    assert main(argv) == 0
    got = json.loads(out.read_text())
    sae = _load_with_saelens(path)
    assert isinstance(sae, sae_lens.SAE)
    want = synthsae.evaluate(sae, world, num_samples=SAMPLES, seed=0, show_progress=False)
    assert 0 < want.mcc < 1
    assert got["mcc"] == want.mcc
    assert got["explained_variance"] == want.explained_variance
    assert got["sae_l0"] == want.sae_l0


@pytest.mark.parametrize(("kind", "architecture"), KINDS)
def test_saelens_dirs_load_as_saelens_objects(tmp_path, kind, architecture):
    path = tmp_path / kind
    _save(kind, path, 64)
    sae = load_any_sae(path)
    assert isinstance(sae, sae_lens.SAE) and not isinstance(sae, saes.SAE)
    assert type(sae) is type(_load_with_saelens(path))
    torch.testing.assert_close(sae.W_dec, _load_with_saelens(path).W_dec, rtol=0, atol=0)


def test_saelens_config_keys_tell_every_saelens_architecture_from_synthsae_ones(tmp_path):
    """Each SAELens config class carries fields no synthsae SAE takes; synthsae's own directories are not
    taken for SAELens's."""
    ours = {name for cls in saes.ARCHITECTURES.values() for name in signature(cls).parameters}
    assert SAELENS_KEYS & ours == {"device"}  # a load-time argument, never in synthsae's cfg.json
    for registry in (SAE_CLASS_REGISTRY, SAE_TRAINING_CLASS_REGISTRY):
        for architecture, (_, config_cls) in registry.items():
            assert SAELENS_KEYS & {f.name for f in fields(config_cls)}, architecture
    for architecture in saes.ARCHITECTURES:
        sae = saes.create_sae(architecture, 64, 32, l0=4.0, seed=0)
        sae.save(tmp_path / architecture)
        assert not is_saelens_config(json.loads((tmp_path / architecture / "cfg.json").read_text()))
        assert isinstance(load_any_sae(tmp_path / architecture), type(sae))


@pytest.mark.parametrize("kind", ["standard", "topk", "batchtopk-inference"])
def test_saelens_dir_with_truncated_weights_exits_2_naming_the_file(tmp_path, capsys, kind):
    path = tmp_path / kind
    _save(kind, path, 64)
    weights = path / "sae_weights.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(SystemExit) as e:
        main(["eval", "--sae", str(path), "--world", "tiny", "--samples", "64"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert str(weights) in err and "Traceback" not in err


def test_saelens_dir_with_weights_of_the_wrong_shape_exits_2_naming_the_file(tmp_path, capsys):
    path, other = tmp_path / "topk", tmp_path / "other"
    _save("topk", path, 64)
    sae_lens.TopKSAE(sae_lens.TopKSAEConfig(d_in=64, d_sae=D_SAE + 1, k=K)).save_model(other)
    (other / "sae_weights.safetensors").replace(path / "sae_weights.safetensors")
    with pytest.raises(SystemExit) as e:
        main(["eval", "--sae", str(path), "--world", "tiny", "--samples", "64"])
    assert e.value.code == 2
    assert str(path / "sae_weights.safetensors") in capsys.readouterr().err
