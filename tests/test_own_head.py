"""The supervised baseline scored with its own head: the trained head on the mean embedding, classes by name."""

from __future__ import annotations

import numpy as np
import torch

from bench import own_head


def test_own_head_scores_follow_the_head_and_match_classes_by_name(tiny_two_tasks):
    from bench import plugins
    from bench.encoder import LabelGroup, LabelSpace
    from bench_plugins.ssl_encoders import SupervisedEncoder, SemiSupConEncoder

    root = tiny_two_tasks.per_task["tiny"]
    enc = SupervisedEncoder(preset="tiny", label_task="tiny,tinyclass")
    space = LabelSpace(("tiny:a", "tiny:b", "tiny:c", "tinyclass:even", "tinyclass:odd"), "multitask",
                       (LabelGroup("tiny", "multilabel", 0, 3, 6), LabelGroup("tinyclass", "multiclass", 3, 2, 6)))
    enc.setup_pretraining(space)
    weights = {"pools": {"labeled": [{"task": "tiny", "root": root}, {"task": "tinyclass", "root": root}]}}
    X = np.random.default_rng(0).normal(size=(5, enc.dim)).astype(np.float32)
    with torch.no_grad():
        logits = enc.module.head(torch.from_numpy(X)).numpy()
    tiny, tinyclass = plugins.get_task("tiny"), plugins.get_task("tinyclass")
    got = own_head.scores(enc, weights, tiny, ["a", "b", "c"], X)
    assert np.allclose(got, 1 / (1 + np.exp(-logits[:, :3])), atol=1e-6)  # multilabel: probabilities
    got = own_head.scores(enc, weights, tinyclass, ["odd", "even", "never seen"], X)
    assert np.allclose(got[:, :2], logits[:, [4, 3]]) and np.isneginf(got[:, 2]).all()
    # no head for a task outside the labeled pool, nor for an encoder without a head
    assert own_head.scores(enc, {"pools": {"labeled": [{"task": "tinyclass", "root": root}]}}, tiny,
                           ["a", "b", "c"], X) is None
    assert own_head.scores(SemiSupConEncoder(preset="tiny", label_task="tiny"), weights, tiny, ["a"], X) is None
