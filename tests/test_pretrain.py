"""Pretraining: pools, batch composition, held-out exclusion, resume, refusals, NaN, ensure_pretrained."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from bench.errors import BenchError, DataError
from conftest import write_wav_array as write_wav


def make(cls, **kw):
    """(encoder, recipe) from options mixed as ``bench run -O`` mixes them (recipe keys told apart by name)."""
    from bench.run import split_options

    enc_opts, recipe_opts = split_options({"preset": "tiny", **kw})
    enc = cls(**enc_opts)
    return enc, enc.recipe().replace(**recipe_opts)


def semisupcon(**kw):
    from bench_plugins.ssl_encoders import SemiSupConEncoder

    return make(SemiSupConEncoder, **{"label_task": "tiny", "unlabeled_tasks": ("tiny",), "augment": False, **kw})


def train(pair, roots, run_dir, **kw):
    from bench.pretrain import pretrain

    enc, recipe = pair
    return pretrain(enc, recipe=recipe, data_roots=roots, run_dir=run_dir, quiet=True, **kw)


def pools_of(roots, label_task=None, label_fraction=1.0, unlabeled_tasks=None, unlabeled_dirs=(), required=True):
    from bench.encoder import LabelSpec, Recipe
    from bench.pretrain import build_pools, plan_pools

    spec = LabelSpec(tasks=label_task or (), fraction=label_fraction, share=0.5 if label_task else 0.0,
                     required=required)
    recipe = Recipe(steps=1, batch_size=4, lr=1e-3, unlabeled_tasks=unlabeled_tasks, unlabeled_dirs=unlabeled_dirs)
    return build_pools(plan_pools(spec, recipe, roots), roots, seed=123)


def state_of(encoder):
    return {k: v.clone() for k, v in encoder.state_dict().items()}


def test_label_fraction_is_deterministic_and_batches_put_labeled_first(tiny_task, tmp_path):
    from bench.pretrain import AudioStore, BatchSampler

    pools = pools_of(tiny_task, label_task="tiny", label_fraction=0.5, unlabeled_tasks=("tiny",))
    again = pools_of(tiny_task, label_task="tiny", label_fraction=0.5, unlabeled_tasks=("tiny",))
    assert len(pools.labeled) == 3 and pools.labeled == again.labeled
    assert len(pools.unlabeled) == 6 and all(t.label is None for t in pools.unlabeled)
    store = AudioStore(pools.labeled + pools.unlabeled, 4000, tmp_path / "cache")
    s = BatchSampler(pools, store, batch_size=8, labeled_share=0.25, views=2, window=243, seed=1)
    views, labels, labeled = s.batch(0)
    assert views.shape == (8, 2, 243) and labels.shape == (8, 3)
    assert labeled.tolist() == [True, True] + [False] * 6
    assert (labels[:2].sum(1) >= 1).all() and (labels[2:] == 0).all()
    # the batch is a function of (seed, step): same again, different next step
    assert np.array_equal(s.batch(0)[0], views) and not np.array_equal(s.batch(1)[0], views)
    # two processes take rows r::2 of the same global batch, labeled first in each share
    v0, l0, m0 = s.batch(0, rank=0, world=2)
    v1, l1, m1 = s.batch(0, rank=1, world=2)
    assert np.array_equal(v0, views[0::2]) and np.array_equal(v1, views[1::2])
    assert m0.tolist() == [True, False, False, False] and m1.tolist() == [True, False, False, False]


def test_views_are_adjacent_spans_or_independent_padded_windows():
    from bench.pretrain import crop_views

    ramp = np.arange(1000, dtype=np.float32)
    v = crop_views(ramp, 2, 243, np.array([0.5, 0.9]))
    assert v[1, 0] == v[0, -1] + 1  # adjacent: one span of 2 x 243 cut in two
    short = np.arange(300, dtype=np.float32)
    v = crop_views(short, 2, 243, np.array([0.0, 0.99]))
    assert v[0, 0] == 0 and v[1, 0] == 57  # independent windows
    tiny = np.ones(100, dtype=np.float32)
    v = crop_views(tiny, 2, 243, np.array([0.3, 0.7]))
    assert (v[:, :100] == 1).all() and (v[:, 100:] == 0).all()  # zero-padded


def test_valid_and_test_tracks_are_excluded_and_recorded(tiny_task, tmp_path):
    data = tmp_path / "data" / "tiny"
    pool = tmp_path / "pool"
    shutil.copytree(data, pool / "dataset")  # copies: same track ids, other paths
    write_wav(pool / "extra" / "song.wav", np.zeros(4000))
    pools = pools_of(tiny_task, unlabeled_tasks=(), unlabeled_dirs=(str(pool), str(data)))
    names = sorted(t.track_id for t in pools.unlabeled)
    assert names == sorted([f"train{i:03d}" for i in range(6)] * 2 + ["song"])
    held = pools.held_out
    assert held["checked"]["tiny"] == {"valid": 2, "test": 2}
    assert held["excluded_count"] == 8  # 4 by path (the dataset itself) + 4 by track id (the copies)
    reasons = [e["reason"] for e in held["excluded"]]
    assert sum("same file" in r for r in reasons) == 4 and sum("track id" in r for r in reasons) == 4

    pair = semisupcon(steps=1, unlabeled_tasks=(), unlabeled_dirs=(str(pool),))
    result = train(pair, tiny_task, tmp_path / "run")
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["event"] == "start" and lines[0]["held_out_check"]["excluded_count"] == 4
    # the start event says the recipe's views and augmentation, which bench.plan matches logged clips/s by
    from bench.plan import _same_views

    recipe = pair[1]
    assert _same_views(lines[0], recipe.views, recipe.augment)
    assert not _same_views(lines[0], recipe.views + 1, recipe.augment)
    assert not _same_views(lines[0], recipe.views, not recipe.augment)
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["held_out_check"]["checked"]["tiny"] == {"valid": 2, "test": 2}
    assert result.steps == 1


def test_resume_after_kill_gives_identical_weights(tiny_task, tmp_path):
    straight = semisupcon()
    train(straight, tiny_task, tmp_path / "a")
    straight = straight[0]

    r = train(semisupcon(), tiny_task, tmp_path / "b", stop_after=3)
    assert r.stopped_early and r.steps == 3  # checkpoint of step 2 on disk, step 3 lost
    resumed = semisupcon()
    r = train(resumed, tiny_task, tmp_path / "b")
    resumed = resumed[0]
    assert r.record["resumed_from"] == 2 and r.steps == 4
    a, b = state_of(straight), state_of(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert not torch.equal(a["encoder.stem.0.weight"], state_of(semisupcon()[0])["encoder.stem.0.weight"])
    # the straight run's optimizer state and step survive in its checkpoint, readable as data only
    st = torch.load(tmp_path / "a" / "train-state.pt", weights_only=True)
    assert st["step"] == 4 and "state" in st["optimizer"]


def test_training_checkpoint_of_another_preset_is_refused(tiny_task, tmp_path):
    train(semisupcon(steps=2), tiny_task, tmp_path / "run")
    with pytest.raises(BenchError, match=r'(?s)belongs to another run.*"preset": "tiny".*"preset": "tiny2"'):
        train(semisupcon(preset="tiny2", steps=3), tiny_task, tmp_path / "run")
    from bench_plugins.ssl_encoders import SimCLREncoder

    with pytest.raises(BenchError, match="(?s)belongs to another run.*semisupcon.*simclr"):
        train(make(SimCLREncoder, unlabeled_tasks=("tiny",), augment=False, steps=3), tiny_task, tmp_path / "run")


def test_nan_loss_stops_with_step_and_last_checkpoint(tiny_task, tmp_path):
    from bench_plugins.ssl_encoders import SemiSupConEncoder

    class Diverging(SemiSupConEncoder):
        calls = 0

        def pretrain_loss(self, *a, **kw):
            loss = super().pretrain_loss(*a, **kw)
            Diverging.calls += 1
            return loss * float("nan") if Diverging.calls > 3 else loss

    enc = make(Diverging, label_task="tiny", unlabeled_tasks=("tiny",), augment=False, steps=6)
    with pytest.raises(BenchError, match=r"loss became nan at step 3 .*Last good checkpoint: .*train-state.pt"):
        train(enc, tiny_task, tmp_path / "run")
    assert torch.load(tmp_path / "run" / "train-state.pt", weights_only=True)["step"] == 2


def test_empty_pool_folder_and_missing_labeled_data_are_clear(tiny_task, tmp_path):
    from bench.config import DataRoots

    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("no audio")
    with pytest.raises(DataError, match="holds no audio files.*--unlabeled-dir"):
        pools_of(tiny_task, unlabeled_tasks=(), unlabeled_dirs=(str(tmp_path / "empty"),))
    nowhere = DataRoots(per_task={"tiny": str(tmp_path / "missing")})
    with pytest.raises(DataError, match="labeled task 'tiny'.*missing does not exist"):
        pools_of(nowhere, label_task="tiny", unlabeled_tasks=())
    (tmp_path / "hollow" / "tiny").mkdir(parents=True)
    (tmp_path / "hollow" / "tiny" / "train.csv").write_text("")
    with pytest.raises(DataError, match="no train tracks"):
        pools_of(DataRoots(per_task={"tiny": str(tmp_path / "hollow")}), label_task="tiny", unlabeled_tasks=())


def test_supervised_and_simclr_train(tiny_task, tmp_path):
    from bench_plugins.ssl_encoders import SimCLREncoder, SupervisedEncoder

    sup, recipe = make(SupervisedEncoder, label_task="tiny", steps=2)
    before = state_of(sup)
    r = train((sup, recipe), tiny_task, tmp_path / "sup")
    assert r.record["pools"]["unlabeled"] == 0 and r.record["pools"]["labeled_per_batch"] == 4
    assert sup.module.head.out_features == 3 and np.isfinite(r.final_loss)
    assert not torch.equal(before["encoder.stem.0.weight"], sup.state_dict()["encoder.stem.0.weight"])
    r = train(make(SimCLREncoder, unlabeled_tasks=("tiny",), augment=False, steps=2), tiny_task, tmp_path / "sim")
    assert r.record["pools"]["labeled"] == 0 and np.isfinite(r.final_loss)


def test_augmenter_is_called_on_device_batches(tiny_task, tmp_path, monkeypatch):
    import bench.augment as augment

    seen = []

    class Spy(augment.Augmenter):
        def __call__(self, views, generator=None):
            seen.append((tuple(views.shape), generator.initial_seed()))
            return super().__call__(views, generator=generator)

    monkeypatch.setattr(augment, "Augmenter", Spy)
    train(semisupcon(augment=True, steps=2), tiny_task, tmp_path / "r")
    assert [s for s, _ in seen] == [(4, 2, 243)] * 2 and seen[0][1] != seen[1][1]


def test_ensure_pretrained_caches_and_random_is_not_trained(tiny_task, tmp_path):
    from bench.weights import weights_hash
    from bench.pretrain import ensure_pretrained
    from bench_plugins.ssl_encoders import RandomEncoder

    cache = tmp_path / "cache"

    def ensure(pair):
        return ensure_pretrained(pair[0], recipe=pair[1], data_roots=tiny_task, cache_dir=cache, quiet=True)

    enc = semisupcon(steps=2)
    path, extra = ensure(enc)
    assert path.parent == cache / "checkpoints" and path.name.startswith("semisupcon-") and path.suffix == ".safetensors"
    assert (path.parent / (path.stem + ".run") / "metrics.jsonl").is_file()
    assert extra["trained"] and extra["steps"] == 2 and extra["pools"]["labeled"][0]["task"] == "tiny"
    mtime = path.stat().st_mtime_ns
    again = semisupcon(steps=2)
    assert ensure(again)[0] == path
    assert path.stat().st_mtime_ns == mtime and weights_hash(again[0]) == weights_hash(enc[0])
    other, _ = ensure(semisupcon(steps=2, lr=1e-2))
    assert other != path  # another recipe, another checkpoint

    r = RandomEncoder(preset="tiny")
    h = weights_hash(r)
    rp, _ = ensure_pretrained(r, data_roots=tiny_task, cache_dir=cache, quiet=True)
    assert rp.name.startswith("random-") and weights_hash(r) == h
    assert weights_hash(RandomEncoder(preset="tiny", checkpoint=str(rp))) == h


def test_cli_help_and_run(tiny_task, tmp_path, capsys):
    from bench.cli import main

    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    assert "accelerate launch" in capsys.readouterr().out
    rc = main(["pretrain", "--encoder", "simclr", "--preset", "tiny", "--steps", "1", "--no-augment",
               "--unlabeled-dir", str(tmp_path / "data" / "tiny" / "train"), "--out", str(tmp_path / "s.safetensors"),
               "--quiet", "--device", "cpu"])
    out = capsys.readouterr().out
    assert rc == 0 and "checkpoint:" in out and (tmp_path / "s.safetensors").is_file()
    assert main(["pretrain", "--encoder", "random", "--preset", "tiny"]) == 2
    # the SampleCNN objective flags are -O options now, and the old flags say so
    for flag, hint in ((["--tau", "0.2"], "-O tau=0.2"), (["--weighted"], "-O weighted=true"),
                       (["--threshold", "2"], "-O threshold=2")):
        assert main(["pretrain", "--encoder", "semisupcon", "--preset", "tiny", *flag]) == 2
        assert hint in capsys.readouterr().err


def test_several_labeled_tasks_share_one_label_space_with_unknowns(tiny_two_tasks, tmp_path):
    from bench.pretrain import AudioStore, BatchSampler

    pools = pools_of(tiny_two_tasks, label_task="tiny,tinyclass", unlabeled_tasks=("tiny",))
    assert pools.space.classes == ("tiny:a", "tiny:b", "tiny:c", "tinyclass:even", "tinyclass:odd")
    assert pools.space.kind == "multitask"
    assert [(g.task, g.kind, g.offset, g.size) for g in pools.space.groups] == [
        ("tiny", "multilabel", 0, 3), ("tinyclass", "multiclass", 3, 2)]
    assert [s["task"] for s in pools.sources["labeled"]] == ["tiny", "tinyclass"]
    store = AudioStore(pools.labeled + pools.unlabeled, 4000, tmp_path / "cache")
    s = BatchSampler(pools, store, batch_size=64, labeled_share=1.0, views=1, window=243, seed=1)
    _, labels, labeled = s.batch(0)
    rows = [s.labeled[i] for _, i in s.rows(0)[0]]
    for row, t in zip(labels, rows):
        own = slice(0, 3) if t.group == 0 else slice(3, 5)
        other = slice(3, 5) if t.group == 0 else slice(0, 3)
        assert (row[other] == -1).all() and set(row[own].tolist()) <= {0.0, 1.0}
        assert sorted(np.flatnonzero(row == 1).tolist()) == sorted(t.label)
    # default: the labeled part of a step comes from one task, drawn per step (both over 40 steps)
    tasks_per_step = [{s.labeled[i].group for _, i in s.rows(k)[0]} for k in range(40)]
    assert all(len(g) == 1 for g in tasks_per_step)
    assert 8 <= sum(g == {0} for g in tasks_per_step) <= 32
    # "row": each labeled row draws its task: both tasks in every batch, about half each
    r = BatchSampler(pools, store, batch_size=64, labeled_share=1.0, views=1, window=243, seed=1, labeled_mix="row")
    n0 = sum(r.labeled[i].group == 0 for _, i in r.rows(0)[0])
    assert 20 <= n0 <= 44
    with pytest.raises(BenchError, match="labeled_mix"):
        BatchSampler(pools, store, batch_size=8, labeled_share=1.0, views=1, window=243, seed=1, labeled_mix="x")
    with pytest.raises(BenchError, match="twice"):
        pools_of(tiny_two_tasks, label_task="tiny,tiny", unlabeled_tasks=())


def test_supervised_and_semisupcon_train_on_several_labeled_tasks(tiny_two_tasks, tmp_path):
    from bench_plugins.ssl_encoders import SupervisedEncoder

    sup, recipe = make(SupervisedEncoder, label_task="tiny,tinyclass", steps=2)
    r = train((sup, recipe), tiny_two_tasks, tmp_path / "sup")
    assert sup.module.head.out_features == 5 and np.isfinite(r.final_loss)
    assert r.record["pools"]["label_kind"] == "multitask"
    r = train(semisupcon(label_task="tiny,tinyclass", steps=2), tiny_two_tasks, tmp_path / "ssc")
    assert np.isfinite(r.final_loss)


def test_contrastive_loss_reads_unknown_labels_as_not_shared(tiny_presets):
    enc = semisupcon()[0]
    torch.manual_seed(0)
    views = torch.randn(4, 2, 243)
    labels = torch.tensor([[1, 0, -1, -1], [1, 0, -1, -1], [-1, -1, 0, 1], [-1, -1, 0, 1]], dtype=torch.float32)
    labeled = torch.ones(4, dtype=torch.bool)

    def model(x):  # distinct projections, so the positive mask shows in the loss
        return x[:, :16]

    got = enc.pretrain_loss(views, labels, labeled, model)
    assert torch.allclose(got, enc.pretrain_loss(views, labels.clamp_min(0), labeled, model))
    # -1 x -1 would otherwise count as a shared label between clips 0 and 2
    assert not torch.allclose(got, enc.pretrain_loss(views, labels.abs(), labeled, model))


def test_ensure_pretrained_waits_for_a_process_training_the_same_encoder(tiny_task, tmp_path, capsys):
    import fcntl
    import threading

    from bench.weights import save_checkpoint
    from bench.pretrain import default_checkpoint, ensure_pretrained

    cache = tmp_path / "cache"
    enc, recipe = semisupcon(steps=2)
    key = default_checkpoint(enc, recipe, tiny_task, cache)[0].stem
    lock = cache / "checkpoints" / f"{key}.lock"
    lock.parent.mkdir(parents=True)
    trained = semisupcon(steps=2)[0]  # "the other process's" weights, made distinguishable
    with torch.no_grad():
        trained.module.encoder.stem[0].weight.add_(1.0)
    got = {}
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # another process is training this encoder
        t = threading.Thread(target=lambda: got.setdefault("path", ensure_pretrained(
            enc, recipe=recipe, data_roots=tiny_task, cache_dir=cache)[0]))
        t.start()
        t.join(timeout=1.0)
        assert t.is_alive()  # waiting, not training a second copy
        save_checkpoint(trained, cache / "checkpoints" / f"{key}.safetensors")
        fcntl.flock(fh, fcntl.LOCK_UN)
    t.join(timeout=30)
    assert not t.is_alive() and got["path"].name == f"{key}.safetensors"
    assert not (cache / "checkpoints" / f"{key}.run").exists()  # it never trained
    assert torch.equal(enc.module.encoder.stem[0].weight, trained.module.encoder.stem[0].weight)
    err = capsys.readouterr().err
    assert "Waiting for another process" in err and "another process just trained" in err


def test_pools_come_from_the_data_present_and_say_what_was_missing(tiny_two_tasks, tmp_path):
    """A data root with only some tasks: defaults are cut to what is there (and recorded), named tasks must exist."""
    from bench.config import DataRoots
    from bench.encoder import LabelSpec, Recipe
    from bench.pretrain import plan_pools

    empty = tmp_path / "nothing-else"
    empty.mkdir()
    roots = DataRoots(general=str(empty), per_task=dict(tiny_two_tasks.per_task))
    recipe = Recipe(steps=1, batch_size=4, lr=1e-3)
    default = LabelSpec(tasks=("gtzan", "tiny"), share=0.5, required=False)
    plan = plan_pools(default, recipe, roots)
    assert [d.task.name for d in plan.labeled] == ["tiny"] and plan.labeled_dropped == ["gtzan"]
    assert [d.task.name for d in plan.unlabeled] == ["tiny"]  # every task present (tinyclass has no folder here)
    assert {"gtzan", "mtat", "nsynth_pitch", "giantsteps_key"} <= set(plan.absent)
    assert "does not hold the gtzan dataset" in plan.absent["gtzan"]
    text = plan.describe()
    assert "left out of the labeled pool (no data): gtzan" in text and "not found: " in text
    with pytest.raises(DataError, match="labeled task 'gtzan'.*does not hold"):
        plan_pools(LabelSpec(tasks=("gtzan", "tiny"), share=0.5, required=True), recipe, roots)
    with pytest.raises(DataError, match="none of the default labeled tasks"):
        plan_pools(LabelSpec(tasks=("gtzan",), share=0.5, required=False), recipe, roots)
    with pytest.raises(DataError, match="unlabeled task 'mtat'"):
        plan_pools(LabelSpec(), recipe.replace(unlabeled_tasks="tiny,mtat"), roots)
    # the checkpoint key follows the data: another set of tasks present is another checkpoint
    from bench.pretrain import checkpoint_key
    from bench_plugins.ssl_encoders import SemiSupConEncoder

    enc = SemiSupConEncoder(preset="tiny")
    both = DataRoots(general=str(empty), per_task={**tiny_two_tasks.per_task, "tinyclass": tiny_two_tasks.per_task["tiny"]})
    key_one = checkpoint_key(enc, recipe, plan_pools(default, recipe, roots), roots)
    key_two = checkpoint_key(enc, recipe, plan_pools(default, recipe, both), both)
    assert key_one != key_two


def test_bench_pretrain_takes_the_lock_of_bench_run_and_reuses_its_checkpoint(tiny_task, tmp_path, capsys,
                                                                             monkeypatch):
    """`bench pretrain` goes through ensure_pretrained: it waits for a process training the same run folder,
    then uses that checkpoint instead of writing the same .run/ state a second time."""
    import fcntl
    import threading

    from bench.cli import main
    from bench.pretrain import default_checkpoint
    from bench.weights import save_checkpoint

    enc, recipe = semisupcon(steps=2)
    cache = tmp_path / "cache"
    path = default_checkpoint(enc, recipe, tiny_task, cache)[0]
    args = ["pretrain", "--encoder", "semisupcon", "--preset", "tiny", "--label-task", "tiny", "--steps", "2",
            "--no-augment", "-O", "unlabeled_tasks=tiny", "--data-root", str(tmp_path / "data"), "--device", "cpu"]
    path.parent.mkdir(parents=True)
    got = {}
    monkeypatch.setenv("BENCH_CACHE_DIR", str(cache))
    with open(path.with_suffix(".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # `bench run` is training this encoder
        t = threading.Thread(target=lambda: got.setdefault("rc", main(args)))
        t.start()
        t.join(timeout=1.0)
        assert t.is_alive()  # waiting, not training the same run folder
        save_checkpoint(enc, path, extra={"trained": True, "steps": 2, "final_loss": 1.0, "run_dir": "elsewhere"})
        fcntl.flock(fh, fcntl.LOCK_UN)
    t.join(timeout=60)
    assert got["rc"] == 0 and not path.with_suffix(".run").exists()
    err = capsys.readouterr().err
    assert "Waiting for another process" in err and "another process just trained" in err
    assert main(args) == 0 and "Using cached pretrained checkpoint" in capsys.readouterr().err


def test_a_cold_pretraining_plans_its_pools_once(tiny_task, tmp_path, monkeypatch):
    from bench.pretrain import checkpoints, pools, state

    calls = []
    real = pools.plan_pools

    def counted(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    for module in (checkpoints, state):
        monkeypatch.setattr(module, "plan_pools", counted)
    enc, recipe = semisupcon(steps=1)
    checkpoints.ensure_pretrained(enc, recipe=recipe, data_roots=tiny_task, cache_dir=tmp_path / "c", quiet=True)
    assert len(calls) == 1  # the checkpoint key and the trainer share one plan
