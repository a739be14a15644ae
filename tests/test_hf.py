"""The hf encoder: tiny random transformers models of several families, saved to folders and to a fake
hub cache, loaded by path, id, alias and revision; nothing downloads (conftest sets HF_HUB_OFFLINE=1)."""

import json
import sys
from pathlib import Path

import pytest

from bench.errors import PluginError

pytest.importorskip("transformers", reason="the hf encoder needs transformers: pip install 'music-bench[hf]'")

from hf_tiny import FAMILIES, make_model, put_in_hub_cache  # noqa: E402

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models are all per-op overhead: on the shared 2-core machine 2 torch threads ran a tiny wav2vec2
    3.5x slower than 1 (0.31 s vs 0.09 s a batch of 8, load 11); restored after the module."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """One tiny model folder per family, plus a MERT-like one with its own code."""
    root = tmp_path_factory.mktemp("hf-models")
    return {fam: make_model(fam, root / fam) for fam in FAMILIES + ("remote",)}


def hf(**options):
    from bench_plugins.hf import HFEncoder

    return HFEncoder(**{"seconds": 1, **options})


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_passes_the_conformance_checks(models, family, bench_conformance):
    report = bench_conformance.encoder("hf", model=str(models[family]), seconds=1)
    report.assert_ok()
    assert report.get("options_from_config").status in ("pass", "skip")


def test_config_names_the_folder_and_a_hash_of_its_files(models, tmp_path):
    enc = hf(model=str(models["wav2vec2"]))
    c = enc.config()
    assert c["model"] == str(models["wav2vec2"].resolve()) and c["revision"] is None
    assert len(c["files_sha256"]) == 64 and c["model_type"] == "wav2vec2" and c["features"] == "model"
    assert c["sample_rate"] == 16000 and c["window"] == 16000 and c["dim"] == 32
    assert json.loads(json.dumps(c)) == c
    # other weights in another folder: another hash, so another cache key and record
    other = make_model("wav2vec2", tmp_path / "other", seed=1)
    assert hf(model=str(other)).config()["files_sha256"] != c["files_sha256"]


def test_layer_option(models):
    import torch

    x = torch.randn(2, 16000) * 0.1
    with torch.no_grad():
        outs = {layer: hf(model=str(models["hubert"]), layer=layer).eval().embed(x) for layer in (0, -1, "mean")}
    assert hf(model=str(models["hubert"]), layer=-1).config()["layer"] == 2  # 2 layers + the embedding output
    assert not torch.allclose(outs[0], outs[-1]) and not torch.allclose(outs["mean"], outs[-1])
    with pytest.raises(PluginError, match=r"layer=3 is outside the 3 hidden states"):
        hf(model=str(models["hubert"]), layer=3)
    with pytest.raises(PluginError, match="layer number"):
        hf(model=str(models["hubert"]), layer="last-but-one")


def test_layer_all_returns_every_hidden_state_as_a_stack(models):
    import torch

    x = torch.randn(2, 16000) * 0.1
    enc = hf(model=str(models["hubert"]), layer="all").eval()
    assert (enc.layers, enc.dim, enc.row_size) == (3, 32, 96) and enc.output_shape(2) == (2, 3, 32)
    assert enc.config()["layer"] == "all" and enc.config()["layers"] == 3  # its own cache key and records
    with torch.no_grad():
        stack = enc.embed(x)
        for i in range(3):  # layer i of the stack is what layer=i gives
            assert torch.allclose(stack[:, i], hf(model=str(models["hubert"]), layer=i).eval().embed(x), atol=1e-6)
    assert "layers" not in hf(model=str(models["hubert"]), layer=1).config()  # one layer: the key is as before


def test_layer_all_passes_the_conformance_checks(models, bench_conformance):
    bench_conformance.encoder("hf", model=str(models["wav2vec2"]), seconds=1, layer="all").assert_ok()


def test_clap_audio_tower(models):
    import torch

    enc = hf(model=str(models["clap"])).eval()
    c = enc.config()
    assert (c["model_type"], c["layer"], enc.dim, enc.layers) == ("clap", "projection", 8, 1)
    pooled = hf(model=str(models["clap"]), layer="pooled").eval()
    assert pooled.dim == 32 and pooled.config()["layer"] == "pooled"
    x = torch.randn(3, enc.window) * 0.1
    with torch.no_grad():
        z = enc.embed(x)
        assert torch.allclose(z.norm(dim=1), torch.ones(3), atol=1e-5)  # CLAP's normalised audio embedding
        # the extractor flags a random clip of a batch as "longer" when none is: overridden, so a window's
        # embedding does not depend on its batch
        assert torch.allclose(enc.embed(x[1:2]), z[1:2], atol=1e-5)
        assert pooled.embed(x).shape == (3, 32)
    # the default window is the extractor's clip
    assert hf(model=str(models["clap"]), seconds=None).seconds == 2.0
    with pytest.raises(PluginError, match=r"CLAP\) embeds clips of at most 2 s"):
        hf(model=str(models["clap"]), seconds=3)
    for layer in (3, "all", "mean"):
        with pytest.raises(PluginError, match="no stack of layers; give layer=projection"):
            hf(model=str(models["clap"]), layer=layer)


def test_sample_rate_and_window_come_from_the_feature_extractor(tmp_path):
    import transformers

    folder = make_model("wav2vec2", tmp_path / "m24k")
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=24000, do_normalize=True).save_pretrained(folder)
    enc = hf(model=str(folder), seconds=2.5)
    assert (enc.sample_rate, enc.window) == (24000, 60000)


def test_wav2vec_family_without_an_extractor_gets_the_standard_one(models, tmp_path):
    import shutil

    folder = tmp_path / "no-fe"
    shutil.copytree(models["hubert"], folder)
    (folder / "preprocessor_config.json").unlink()
    enc = hf(model=str(folder))
    assert enc.sample_rate == 16000 and enc.config()["features"] == "wav2vec2-default"


def test_hub_id_and_revision_from_the_local_cache(models):
    import os

    cache = Path(os.environ["HF_HUB_CACHE"])
    put_in_hub_cache(models["wav2vec2"], cache, "tiny-org/tiny-w2v", COMMIT)
    enc = hf(model="tiny-org/tiny-w2v")
    c = enc.config()
    assert (c["model"], c["revision"], c["files_sha256"]) == ("tiny-org/tiny-w2v", COMMIT, None)
    assert hf(model="tiny-org/tiny-w2v", revision="main").config() == c
    from bench_plugins.hf import HFEncoder

    assert HFEncoder(**HFEncoder.options_from_config(c)).config() == c  # pinned to the resolved commit
    with pytest.raises(PluginError, match=r"not in the Hugging Face cache.*hf download tiny-org/nothing-here"):
        hf(model="tiny-org/nothing-here")
    with pytest.raises(PluginError, match="revision v9"):
        hf(model="tiny-org/tiny-w2v", revision="v9")


def test_remote_code_only_when_passed_and_aliases(models):
    import os

    with pytest.raises(PluginError, match="trust_remote_code=true"):
        hf(model=str(models["remote"]))
    enc = hf(model=str(models["remote"]), trust_remote_code=True)
    assert enc.config()["model_type"] == "tinymert" and enc.config()["trust_remote_code"] is True
    # an alias resolves to its hub id; the MERT aliases need the same permission
    put_in_hub_cache(models["remote"], Path(os.environ["HF_HUB_CACHE"]), "m-a-p/MERT-v1-95M", COMMIT)
    with pytest.raises(PluginError, match="m-a-p/MERT-v1-95M ships its own model code"):
        hf(model="mert-v1-95m")
    c = hf(model="mert-v1-95m", trust_remote_code=True).config()
    assert (c["model"], c["revision"]) == ("m-a-p/MERT-v1-95M", COMMIT)


def test_ast_window_longer_than_its_input_is_refused(models):
    with pytest.raises(PluginError, match=r"embeds at most 1.28 s"):
        hf(model=str(models["ast"]), seconds=2)


def test_bad_options_say_what_to_do(models, tmp_path):
    with pytest.raises(PluginError, match="needs a model: -O model="):
        hf()
    with pytest.raises(PluginError, match="unknown option.*'pooling'.*known options: model"):
        hf(model=str(models["ast"]), pooling="max")
    with pytest.raises(PluginError, match="does not exist"):
        hf(model=str(tmp_path / "missing"))
    with pytest.raises(PluginError, match="revision=abc applies to hub models"):
        hf(model=str(models["ast"]), revision="abc")


def test_without_transformers_it_says_how_to_install(monkeypatch, capsys):
    from bench.errors import BenchError
    from test_testing_kit import plugin_cli

    assert plugin_cli("check", "hf") == 2
    assert "needs a model: -O model=ID_OR_FOLDER" in capsys.readouterr().out
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers -> ImportError
    with pytest.raises(BenchError, match=r"pip install 'music-bench\[hf\]'") as err:
        hf(model="mert-v1-95m")
    assert err.value.exit_code == 2
    assert plugin_cli("check", "hf", "-O", "model=mert-v1-95m") == 2
    assert "needs the transformers library, which is not installed: pip install 'music-bench[hf]'" in \
        capsys.readouterr().out


# -- bench run with every family: all tasks for wav2vec2, MTAT (the task with the least demo audio) for the
# rest: the pipeline after embed() is the same, and the suite stays short; docs/plugins.md has every family
# on every task

@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One cache folder for this module's runs, so the tiny demo data is generated once."""
    return tmp_path_factory.mktemp("hf-run-cache")


@pytest.mark.parametrize("family,tasks", [("wav2vec2", "all")] + [(f, "mtat") for f in FAMILIES[1:]])
def test_bench_run_with_a_local_model(models, family, tasks, shared_cache, tmp_path, monkeypatch):
    from bench.cli import main

    monkeypatch.setenv("BENCH_CACHE_DIR", str(shared_cache))
    out = tmp_path / "out"
    rc = main(["run", "--encoder", "hf", "-O", f"model={models[family]}", "-O", "seconds=1", "--tasks", tasks,
               "--demo-size", "tiny", "--probe-grid", "fast", "--seeds", "0", "--out", str(out), "--no-progress"])
    assert rc == 0
    records = [json.loads(p.read_text()) for p in sorted((out / "records").glob("*.json"))]
    assert len(records) == (4 if tasks == "all" else 1)
    for rec in records:
        cfg = rec["encoder_config"]
        assert cfg["model"] == str(models[family].resolve()) and len(cfg["files_sha256"]) == 64
        assert rec["demo_data"] is True


def test_layer_all_probes_every_layer_and_records_the_chosen_one(models, shared_cache, tmp_path, monkeypatch):
    """`-O layer=all`: the stack extracted once, a probe per layer, the layer chosen on validation; the record
    holds the chosen layer and the curve, the run writes layers.md and layers.png, and the chosen layer's score
    is the one `-O layer=N` gives for that layer."""
    from bench.cli import main

    monkeypatch.setenv("BENCH_CACHE_DIR", str(shared_cache))
    common = ["-O", f"model={models['hubert']}", "-O", "seconds=1", "--tasks", "mtat", "--demo-size", "tiny",
              "--probe-grid", "fast", "--seeds", "0", "--no-progress"]
    out = tmp_path / "all"
    assert main(["run", "--encoder", "hf", "-O", "layer=all", *common, "--out", str(out)]) == 0
    [rec] = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    assert rec["encoder_config"]["layer"] == "all"
    block = rec["layers"]
    assert block["count"] == 3 and block["metric"] == rec["primary_metric"] == "roc_auc"
    curve = block["curve"]
    assert [p["layer"] for p in curve] == [0, 1, 2] and all(0 <= p["test"] <= 1 for p in curve)
    valid = [p["valid"] for p in curve]
    assert block["chosen"] == valid.index(max(valid))  # chosen on validation, never on test
    assert rec["metrics"]["roc_auc"] == pytest.approx(curve[block["chosen"]]["test"], abs=1e-6)
    table = (out / "layers.md").read_text()
    assert f"Chosen layer: {block['chosen']}" in table and table.count("\n| ") == 4  # header and 3 layers
    assert (out / "layers.png").read_bytes()[:4] == b"\x89PNG"
    # the same layer extracted on its own (another cache key) and probed gives the same score
    one = tmp_path / "one"
    assert main(["run", "--encoder", "hf", "-O", f"layer={block['chosen']}", *common, "--out", str(one)]) == 0
    [single] = [json.loads(p.read_text()) for p in (one / "records").glob("*.json")]
    assert "layers" not in single and not (one / "layers.md").exists()
    assert single["metrics"]["roc_auc"] == pytest.approx(rec["metrics"]["roc_auc"], abs=1e-4)
