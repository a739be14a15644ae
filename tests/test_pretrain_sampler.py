"""The labeled-clip sampler: label positives counted, a balanced sampler that guarantees them (issue 23 item 2)."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from bench.errors import BenchError


class MemoryStore:
    """Every track present, as a short ramp: enough for the sampler, which only crops what the store holds."""

    failed: list = []

    def has(self, t):
        return True

    def get(self, t):
        return np.arange(600, dtype=np.float32)


def pools(n_classes=40, per=4, multilabel=False, groups=1):
    """A labeled pool of ``n_classes`` classes of ``per`` tracks each (multi-label: each track also has a tag
    shared with no other track), in ``groups`` label groups, and a few unlabeled tracks."""
    from bench.encoder import LabelGroup, LabelSpace
    from bench.pretrain.pools import Pools, Track

    labeled, classes, space_groups = [], [], []
    for g in range(groups):
        offset = len(classes)
        extra = n_classes * per if multilabel else 0
        for c in range(n_classes):
            for k in range(per):
                tags = (offset + c,) + ((offset + n_classes + c * per + k,) if multilabel else ())
                labeled.append(Track(f"g{g}c{c}k{k}.wav", f"g{g}c{c}k{k}", "task:t", tags, group=g))
        classes += [f"t{g}:{i}" for i in range(n_classes + extra)]
        space_groups.append(LabelGroup(f"t{g}", "multilabel" if multilabel else "multiclass", offset,
                                       n_classes + extra, n_classes * per))
    unlabeled = [Track(f"u{i}.wav", f"u{i}", "task:u") for i in range(8)]
    kind = space_groups[0].kind if groups == 1 else "multitask"
    return Pools(labeled, unlabeled, LabelSpace(tuple(classes), kind, tuple(space_groups)))


def sampler(p, **kw):
    from bench.pretrain.sampling import BatchSampler

    args = dict(batch_size=32, labeled_share=0.5, views=2, window=100, seed=7)
    return BatchSampler(p, MemoryStore(), **{**args, **kw})


@pytest.mark.parametrize("multilabel", [False, True])
@pytest.mark.parametrize("per_class", [4, 3])
def test_balanced_batches_have_at_least_the_guaranteed_label_positives(multilabel, per_class):
    p = pools(multilabel=multilabel)
    s = sampler(p, labeled_sampler="balanced", per_class=per_class)
    full, rest = divmod(s.n_labeled, per_class)  # 16 labeled clips: 4 x 4, or 5 x 3 and one more class
    guaranteed = full * comb(per_class, 2) + comb(rest, 2)
    for step in range(50):
        assert s.label_positive_pairs(step) >= guaranteed
        rows, _ = s.rows(step)
        labeled = [s.labeled[i] for is_lab, i in rows if is_lab]
        assert len(labeled) == 16 and len({t.label[0] for t in labeled}) == full + (rest > 0)  # many classes
    uniform = sampler(p)
    mean_uniform = np.mean([uniform.label_positive_pairs(k) for k in range(50)])
    assert mean_uniform < guaranteed / 3  # 16 clips over 40 classes rarely share one (about 3 of 120 pairs)


def test_label_positive_pairs_counts_pairs_that_share_a_label():
    s = sampler(pools(n_classes=3, per=2), labeled_share=1.0, batch_size=4)
    rows, _ = s.rows(0)
    labs = [s.labeled[i].label for _, i in rows]
    want = sum(bool(set(a) & set(b)) for i, a in enumerate(labs) for b in labs[i + 1:])
    assert s.label_positive_pairs(0) == want
    assert sampler(pools(), labeled_share=0.0).label_positive_pairs(0) == 0  # no labeled clip, no pair


def test_balanced_sampler_is_a_function_of_seed_and_step_and_of_no_process_count():
    p = pools(groups=2)
    for mix in ("step", "row"):
        a = sampler(p, labeled_sampler="balanced", per_class=4, labeled_mix=mix)
        b = sampler(p, labeled_sampler="balanced", per_class=4, labeled_mix=mix)
        assert a.rows(3)[0] == b.rows(3)[0] and np.array_equal(a.rows(3)[1], b.rows(3)[1])
        assert a.rows(3)[0] != a.rows(4)[0]
        assert a.rows(3)[0] != sampler(p, labeled_sampler="balanced", per_class=4, labeled_mix=mix,
                                       seed=8).rows(3)[0]
        views, labels, labeled = a.batch(5)
        for world in (2, 4):
            shares = [a.batch(5, rank, world) for rank in range(world)]
            for rank, (v, y, m) in enumerate(shares):  # process r of W holds rows r, r+W, ... of the same batch
                assert np.array_equal(v, views[rank::world]) and np.array_equal(y, labels[rank::world])
                assert np.array_equal(m, labeled[rank::world])
    # "step": the labeled clips of a step come from one task; "row": from both over a batch
    step = sampler(p, labeled_sampler="balanced", per_class=4)
    assert all(len({step.labeled[i].group for lab, i in step.rows(k)[0] if lab}) == 1 for k in range(20))
    row = sampler(p, labeled_sampler="balanced", per_class=2, labeled_mix="row")
    assert any(len({row.labeled[i].group for lab, i in row.rows(k)[0] if lab}) == 2 for k in range(20))


def test_uniform_stays_the_default_and_options_are_checked():
    from bench.encoder import Recipe

    p = pools()
    assert sampler(p).rows(2)[0] == sampler(p, labeled_sampler="uniform", per_class=4).rows(2)[0]
    r = Recipe(steps=1, batch_size=4, lr=1e-3)
    assert (r.labeled_sampler, r.per_class) == ("uniform", 4)
    assert "labeled_sampler" not in r.key_dict() and "per_class" not in r.identity()  # old keys unchanged
    balanced = r.replace(labeled_sampler="balanced", per_class="2")
    assert balanced.key_dict()["per_class"] == 2 and balanced.identity()["labeled_sampler"] == "balanced"
    with pytest.raises(BenchError, match="labeled_sampler='often' must be 'uniform' or 'balanced'"):
        r.replace(labeled_sampler="often")
    with pytest.raises(BenchError, match="per_class=2 .*labeled_sampler=balanced only"):
        r.replace(per_class=2)
    with pytest.raises(BenchError, match="per_class=0"):
        r.replace(labeled_sampler="balanced", per_class=0)


def test_every_step_logs_its_label_positives_and_the_checkpoint_carries_their_mean(tiny_task, tmp_path):
    import json

    import torch

    from bench.pretrain import ensure_pretrained
    from bench_plugins.ssl_encoders import SemiSupConEncoder
    from test_pretrain import make

    enc, recipe = make(SemiSupConEncoder, label_task="tiny", unlabeled_tasks=("tiny",), augment=False, steps=5,
                       log_every=2, labeled_sampler="balanced", per_class=2)
    path, meta = ensure_pretrained(enc, recipe=recipe, data_roots=tiny_task, cache_dir=tmp_path / "c", quiet=True)
    lines = [json.loads(x) for x in (path.with_suffix(".run") / "metrics.jsonl").read_text().splitlines()]
    per_step = [n for e in lines if e["event"] == "train" for n in e["label_positive_pairs"]]
    assert len(per_step) == 5 and min(per_step) >= 1  # 2 labeled clips a batch, both of one class (tag)
    assert meta["label_positive_pairs"] == pytest.approx(np.mean(per_step))
    assert meta["torch_threads"] == torch.get_num_threads()
    record = json.loads((path.with_suffix(".run") / "run.json").read_text())
    assert record["label_positive_pairs"] == meta["label_positive_pairs"]
