"""Early stopping of pretraining on the labeled tasks' valid split (issue 14: the official supervised baseline)."""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from bench.errors import BenchError


def make(cls, **kw):
    """(encoder, recipe) from options mixed as ``bench run -O`` mixes them."""
    from bench.run import split_options

    enc_opts, recipe_opts = split_options({"preset": "tiny", **kw})
    enc = cls(**enc_opts)
    return enc, enc.recipe().replace(**recipe_opts)


def train(pair, roots, run_dir, **kw):
    from bench.pretrain import pretrain

    enc, recipe = pair
    return pretrain(enc, recipe=recipe, data_roots=roots, run_dir=run_dir, quiet=True, **kw)


def scripted(losses):
    """A supervised encoder whose validation loss (eval mode) is ``losses[k]`` at the k-th validation call;
    it keeps a copy of the weights each validation saw. Training uses the real loss."""
    from bench_plugins.ssl_encoders import SupervisedEncoder

    class Scripted(SupervisedEncoder):
        calls: list = []

        def pretrain_loss(self, views, labels, labeled, model):
            loss = super().pretrain_loss(views, labels, labeled, model)
            if model.training:
                return loss
            k = len(Scripted.calls)
            Scripted.calls.append({n: v.clone() for n, v in model.state_dict().items()})
            return loss * 0 + losses[k]

    return Scripted


def state_of(encoder):
    return {k: v.clone() for k, v in encoder.state_dict().items()}


def equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def events(run_dir, kind):
    return [e for e in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if e["event"] == kind]


def test_off_by_default_and_default_checkpoint_keys_unchanged(tiny_task, tmp_path):
    from bench.encoder import Recipe
    from bench.pretrain import checkpoint_key, plan_pools
    from bench_plugins.ssl_encoders import SemiSupConEncoder, SupervisedEncoder

    r = Recipe(steps=3, batch_size=4, lr=1e-3)
    assert (r.early_stopping_patience, r.validate_every) == (0, 0)
    assert "early_stopping_patience" not in r.key_dict() and "validate_every" not in r.identity()
    assert r.replace(early_stopping_patience="3").key_dict()["early_stopping_patience"] == 3  # text parsed
    with pytest.raises(BenchError, match="early_stopping_patience=-1"):
        r.replace(early_stopping_patience=-1)
    with pytest.raises(BenchError, match="validate_every='often'"):
        r.replace(validate_every="often")
    # the key of a default run is the hash of exactly what it hashed before these keys existed
    enc, recipe = make(SemiSupConEncoder, label_task="tiny", unlabeled_tasks=("tiny",))
    plan = plan_pools(enc.label_spec(), recipe, tiny_task)
    later = ("early_stopping_patience", "validate_every", "labeled_sampler", "per_class", "official_ps_twice",
             "store_dtype", "probe_every")
    old = {k: v for k, v in recipe.to_dict().items() if k not in later}
    payload = {"config": enc.config(), "recipe": old, "pools": plan.data_sources()}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert checkpoint_key(enc, recipe, plan, tiny_task) == f"semisupcon-{digest}"
    assert checkpoint_key(enc, recipe.replace(early_stopping_patience=2), plan, tiny_task) != f"semisupcon-{digest}"
    # only the official supervised recipe turns it on
    assert SupervisedEncoder(preset="tiny").recipe().early_stopping_patience == 0
    assert SupervisedEncoder(preset="tiny", recipe_preset="official").recipe().early_stopping_patience == 15
    # a default run validates nothing and writes no early-stopping state
    sup = make(SupervisedEncoder, label_task="tiny", steps=2)
    res = train(sup, tiny_task, tmp_path / "run")
    assert "early_stopping" not in res.record and not events(tmp_path / "run", "valid")
    assert "early_stopping" not in torch.load(tmp_path / "run" / "train-state.pt", weights_only=True)


def test_stops_when_validation_loss_stops_improving_and_keeps_the_best_weights(tiny_task, tmp_path):
    from bench.pretrain import save_final
    from bench.weights import checkpoint_config, load_checkpoint

    cls = scripted([3.0, 2.0, 2.5, 1.0])
    enc, recipe = make(cls, label_task="tiny", steps=10, early_stopping_patience=1, validate_every=1, lr=0.05)
    res = train((enc, recipe), tiny_task, tmp_path / "run")
    # validations at steps 1, 2, 3; step 3 is no better than step 2 and patience is 1: stop at 3
    assert len(cls.calls) == 3 and res.steps == 3
    es = res.record["early_stopping"]
    assert (es["best_step"], es["stopped_at"], es["best_loss"], es["validations"]) == (2, 3, 2.0, 3)
    assert es["valid_tracks"] == es["valid_tracks_decoded"] == 2 and es["validate_every"] == 1
    assert equal(state_of(enc), cls.calls[1]) and not equal(state_of(enc), cls.calls[2])
    valid = events(tmp_path / "run", "valid")
    assert [(e["step"], e["loss"], e["without_improvement"]) for e in valid] == [(1, 3.0, 0), (2, 2.0, 0), (3, 2.5, 1)]
    assert events(tmp_path / "run", "early_stop")[0]["best_step"] == 2
    assert json.loads((tmp_path / "run" / "run.json").read_text())["early_stopping"]["stopped_at"] == 3
    # the checkpoint holds the best weights and says which step they are from
    save_final(enc, tmp_path / "sup.safetensors", res)
    fresh = cls(preset="tiny", label_task="tiny")
    meta = load_checkpoint(fresh, tmp_path / "sup.safetensors")
    assert meta["early_stopping"]["best_step"] == 2 and meta["early_stopping"]["stopped_at"] == 3
    assert equal(state_of(fresh), cls.calls[1]) and checkpoint_config(tmp_path / "sup.safetensors")[0] == "supervised"
    # running the stopped folder again does not train on: same step, same weights
    again = cls(preset="tiny", label_task="tiny")
    res2 = train((again, recipe), tiny_task, tmp_path / "run")
    assert res2.steps == 3 and res2.record["resumed_from"] == 3 and equal(state_of(again), cls.calls[1])


def test_validation_loss_is_the_real_loss_of_the_kept_weights(tiny_task, tmp_path):
    """With the real loss: the best recorded validation loss is what the final weights give on the valid crops."""
    from bench.pretrain import AudioStore, build_pools, plan_pools
    from bench.pretrain.sampling import validation_batches
    from bench_plugins.ssl_encoders import SupervisedEncoder

    enc, recipe = make(SupervisedEncoder, label_task="tiny", steps=8, early_stopping_patience=2, validate_every=2,
                       lr=0.3)
    res = train((enc, recipe), tiny_task, tmp_path / "run")
    es = res.record["early_stopping"]
    valid = events(tmp_path / "run", "valid")
    assert [e["step"] for e in valid] == list(range(2, res.steps + 1, 2))
    assert es["best_loss"] == min(e["loss"] for e in valid)
    pools = build_pools(plan_pools(enc.label_spec(), recipe, tiny_task), tiny_task, seed=recipe.seed, validation=True)
    assert {t.path for t in pools.valid}.isdisjoint({t.path for t in pools.labeled + pools.unlabeled})
    store = AudioStore(pools.valid, enc.sample_rate, tmp_path / "cache")
    enc.module.eval()
    with torch.no_grad():
        (v, y, lab), = list(validation_batches(pools.valid, store, batch_size=4, views=1, window=enc.window,
                                               n_classes=3, groups=[]))
        again = float(enc.pretrain_loss(torch.from_numpy(v), torch.from_numpy(y), torch.from_numpy(lab), enc.module))
    assert again == pytest.approx(es["best_loss"], rel=1e-5)
    assert y.tolist() == [[1, 0, 0], [0, 1, 1]]  # make_tiny's valid labels: {0}, {1, 2}


def test_validation_crops_are_centred_and_batches_even(tiny_task, tmp_path):
    from bench.pretrain import AudioStore, build_pools, plan_pools
    from bench.pretrain.sampling import validation_batches
    from bench_plugins.ssl_encoders import SupervisedEncoder

    enc, recipe = make(SupervisedEncoder, label_task="tiny")
    pools = build_pools(plan_pools(enc.label_spec(), recipe, tiny_task), tiny_task, validation=True)
    tracks = pools.valid * 3  # 6 tracks in batches of at most 4: 3 + 3, never 4 + 2... nor a batch of one
    store = AudioStore(pools.valid, 4000, tmp_path / "cache")
    batches = list(validation_batches(tracks, store, batch_size=4, views=2, window=100, n_classes=3, groups=[]))
    assert [len(b[0]) for b in batches] == [3, 3]
    audio = np.asarray(store.get(pools.valid[0]))
    start = int(0.5 * (len(audio) - 200 + 1))
    assert np.array_equal(batches[0][0][0].reshape(-1), audio[start : start + 200])
    assert np.array_equal(batches[0][0][0], batches[1][0][1])  # deterministic: the same track, the same crop


def test_resume_keeps_the_best_state(tiny_task, tmp_path):
    """Best at step 2, checkpoint at 2, killed at 3: the resumed run still knows step 2 was best."""
    losses = [1.0, 0.5, 0.9, 0.8, 0.7, 0.6]
    cls = scripted(losses)
    opts = dict(label_task="tiny", steps=10, early_stopping_patience=3, validate_every=1, lr=0.05)
    straight = make(cls, **opts)
    res = train(straight, tiny_task, tmp_path / "a")
    assert (res.record["early_stopping"]["best_step"], res.steps) == (2, 5)
    best = cls.calls[1]
    assert equal(state_of(straight[0]), best)

    cls.calls.clear()
    killed = train(make(cls, **opts), tiny_task, tmp_path / "b", stop_after=3)
    assert killed.stopped_early and len(cls.calls) == 2  # validated at 1 and 2; checkpoint of step 2 on disk
    resumed = make(cls, **opts)
    res = train(resumed, tiny_task, tmp_path / "b")
    assert res.record["resumed_from"] == 2 and res.steps == 5
    assert (res.record["early_stopping"]["best_step"], res.record["early_stopping"]["validations"]) == (2, 5)
    assert equal(state_of(resumed[0]), best)
    # a resumed run with another patience is another run
    with pytest.raises(BenchError, match="belongs to another run"):
        train(make(cls, **{**opts, "early_stopping_patience": 4}), tiny_task, tmp_path / "b")


def test_refusals_are_clear(tiny_task, tmp_path, monkeypatch):
    from bench.pretrain import state
    from bench_plugins.ssl_encoders import SimCLREncoder, SupervisedEncoder

    with pytest.raises(BenchError, match="early stopping .* needs a labeled task"):
        train(make(SimCLREncoder, unlabeled_tasks=("tiny",), augment=False, early_stopping_patience=2),
              tiny_task, tmp_path / "sim")
    monkeypatch.setattr(state, "_accelerator", lambda device, mp: SimpleNamespace(
        num_processes=2, process_index=0, is_main_process=True))
    with pytest.raises(BenchError, match="runs on one process only, and this launch has 2"):
        train(make(SupervisedEncoder, label_task="tiny", early_stopping_patience=2), tiny_task, tmp_path / "ddp")


def test_validate_every_zero_is_one_epoch_of_the_labeled_pool(tiny_task, tmp_path):
    from bench_plugins.ssl_encoders import SupervisedEncoder

    # 6 labeled train tracks, 2 a batch: an epoch is 3 steps (the official loader drops a partial last batch)
    res = train(make(SupervisedEncoder, label_task="tiny", steps=7, batch_size=2, early_stopping_patience=5),
                tiny_task, tmp_path / "run")
    assert res.record["early_stopping"]["validate_every"] == 3
    assert [e["step"] for e in events(tmp_path / "run", "valid")] == [3, 6, 7]  # and at the last step


def test_cli_says_where_it_stopped_and_which_weights_it_kept(tiny_task, tmp_path, capsys):
    from bench.cli import main

    rc = main(["pretrain", "--encoder", "supervised", "--preset", "tiny", "--label-task", "tiny", "--steps", "3",
               "--data-root", str(tmp_path / "data"), "-O", "early_stopping_patience=5", "-O", "validate_every=2",
               "--out", str(tmp_path / "s.safetensors"), "--quiet", "--device", "cpu"])
    out = capsys.readouterr().out
    assert rc == 0 and "early stopping: reached the step cap; weights of step " in out and "2 valid tracks" in out


def test_several_labeled_tasks_validate_on_each_valid_split_with_unknowns(tiny_two_tasks, tmp_path):
    from bench.pretrain import AudioStore, build_pools, plan_pools
    from bench.pretrain.sampling import validation_batches
    from bench_plugins.ssl_encoders import SupervisedEncoder

    enc, recipe = make(SupervisedEncoder, label_task="tiny,tinyclass", steps=2, early_stopping_patience=3,
                       validate_every=1)
    pools = build_pools(plan_pools(enc.label_spec(), recipe, tiny_two_tasks), tiny_two_tasks, validation=True)
    assert [t.source for t in pools.valid] == ["valid:tiny"] * 2 + ["valid:tinyclass"] * 2
    store = AudioStore(pools.valid, 4000, tmp_path / "cache")
    (_, y, _), = list(validation_batches(pools.valid, store, batch_size=4, views=1, window=243, n_classes=5,
                                         groups=list(pools.space.groups)))
    # tiny's 3 tags then tinyclass's 2 classes; a row is -1 on the other task's columns
    assert y.tolist() == [[1, 0, 0, -1, -1], [0, 1, 1, -1, -1], [-1, -1, -1, 1, 0], [-1, -1, -1, 0, 1]]
    res = train((enc, recipe), tiny_two_tasks, tmp_path / "run")
    assert res.record["early_stopping"]["valid_tracks"] == 4 and res.record["early_stopping"]["validations"] == 2
