"""Label-aware augmentation: the labeled clips of a task skip the transforms its labels are not invariant to."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.augment import TRANSFORMS, Augmenter


def test_tasks_declare_their_label_variant_transforms():
    from bench import plugins

    declared = {n: plugins.get_task(n).label_variant_transforms for n in ("nsynth_pitch", "giantsteps_key",
                                                                           "mtat", "gtzan")}
    assert declared == {"nsynth_pitch": ("pitch_shift",), "giantsteps_key": ("pitch_shift",), "mtat": (), "gtzan": ()}
    assert all(t in TRANSFORMS for ts in declared.values() for t in ts)


def test_skip_switches_off_exactly_that_transform_on_exactly_those_clips(monkeypatch):
    """Every clip draws the same parameters with and without ``skip``; the skipped clips lose pitch shift only."""
    aug = Augmenter(8000, severity=1.5, p_apply=1.0)
    views = torch.randn(6, 2, 800)
    skip = torch.tensor([True, False, True, False, False, True])
    seen = []
    orig = Augmenter._apply

    def spy(self, x, p, white):
        seen.append(p)
        return orig(self, x, p, white)

    monkeypatch.setattr(Augmenter, "_apply", spy)
    plain = aug(views, torch.Generator().manual_seed(3))
    skipped = aug(views, torch.Generator().manual_seed(3), skip={"pitch_shift": skip})
    a, b = seen
    rows = skip.repeat_interleave(2)
    assert bool(a.pitch_on[rows].any())  # the test is void if no skipped view drew a pitch shift
    assert not bool(b.pitch_on[rows].any()) and torch.equal(b.pitch_on[~rows], a.pitch_on[~rows])
    for name in ("gain_on", "flip_on", "noise_on", "filter_on", "delay_on", "semitones", "gain_db"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    keep = ~skip
    assert torch.equal(plain[keep], skipped[keep])  # the other clips are bit for bit the same
    changed = [i for i in range(6) if skip[i] and bool(a.pitch_on[2 * i: 2 * i + 2].any())]
    assert changed and not torch.equal(plain[changed], skipped[changed])
    with pytest.raises(ValueError, match="unknown transform"):
        aug(views, torch.Generator().manual_seed(3), skip={"pitch": skip})


def test_option_is_in_the_config_only_when_true():
    from bench_plugins.ssl_encoders import SemiSupConEncoder, SimCLREncoder, SupervisedEncoder

    on = SemiSupConEncoder(label_aware_augment="true")
    off = SemiSupConEncoder(label_aware_augment=False)
    assert on.config()["objective"]["label_aware_augment"] is True and on.label_spec().label_aware_augment
    assert off.config() == SemiSupConEncoder().config()  # earlier checkpoint keys are unchanged
    assert SemiSupConEncoder.options_from_config(on.config())["label_aware_augment"] is True
    from bench.errors import PluginError

    with pytest.raises(PluginError, match="unknown option"):
        SimCLREncoder(label_aware_augment=True)
    sup = SupervisedEncoder(recipe_preset="official")
    r = sup.recipe()
    assert (r.lr, r.weight_decay, r.batch_size, r.views, r.augment) == (3e-4, 1e-6, 64, 1, False)
    assert SupervisedEncoder().config() == SupervisedEncoder(recipe_preset="bench").config()
    with pytest.raises(PluginError, match="recipe_preset"):
        SupervisedEncoder(recipe_preset="paper")


def test_pretraining_skips_on_the_labeled_rows_of_the_declared_task(tiny_two_tasks, tmp_path, monkeypatch):
    """Two labeled tasks, one declaring pitch_shift: the skip mask is true on exactly its labeled rows."""
    from bench import augment
    from bench.pretrain import pretrain
    from bench.pretrain.sampling import BatchSampler
    from bench.run import split_options
    from bench_plugins.ssl_encoders import SemiSupConEncoder
    from conftest import TinyClassTask

    monkeypatch.setattr(TinyClassTask, "label_variant_transforms", ("pitch_shift",))
    groups_seen, skips_seen = [], []
    orig_groups = BatchSampler.row_groups

    def row_groups(self, step, rank=0, world=1):
        g = orig_groups(self, step, rank, world)
        groups_seen.append(g)
        return g

    class Spy(augment.Augmenter):
        def __call__(self, views, generator=None, skip=None):
            skips_seen.append(skip)
            return super().__call__(views, generator=generator, skip=skip)

    monkeypatch.setattr(BatchSampler, "row_groups", row_groups)
    monkeypatch.setattr(augment, "Augmenter", Spy)
    opts, rec = split_options({"preset": "tiny", "label_task": "tiny,tinyclass", "unlabeled_tasks": ("tiny",),
                               "augment": True, "steps": 6, "labeled_mix": "row", "label_aware_augment": True,
                               "batch_size": 8})
    enc = SemiSupConEncoder(**opts)
    res = pretrain(enc, recipe=enc.recipe().replace(**rec), data_roots=tiny_two_tasks, run_dir=tmp_path / "r",
                   quiet=True)
    assert res.record["label_aware_augment"] == {"tiny": [], "tinyclass": ["pitch_shift"]}
    assert len(groups_seen) == len(skips_seen) == 6
    hits = 0
    for g, s in zip(groups_seen, skips_seen):
        want = g == 1  # group 1 = tinyclass, the task that declares pitch_shift; -1 = unlabeled
        got = s["pitch_shift"].numpy() if s else np.zeros(len(g), bool)
        assert np.array_equal(got, want)
        hits += int(want.sum())
    assert hits and any((g == 0).any() for g in groups_seen)  # both tasks' labeled rows occurred
