"""A tiny pretraining learns: on a task its labels make separable, the pretrained encoder's linear probe beats
the untrained encoder's (issue 23; the other tests only check that the loss is finite)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from bench import hookimpl
from bench.task import Item, Split, Task
from conftest import write_wav_array
from test_pretrain import make

#: the two classes: a tone at 300 Hz or at 340 Hz (+-2%), random amplitude and phase, a little noise. Too close
#: for the untrained tiny SampleCNN (8-dim embedding, 243-sample windows at 4 kHz): its probe is near chance
FREQS = (300.0, 340.0)


class Tones(Task):
    name = "tones"
    kind = "multiclass"
    dataset_dirs = ("tones",)
    primary_metric = "accuracy"
    metrics = ("accuracy",)

    def classes(self, data_root):
        return ["low", "high"]

    def items(self, split, data_root):
        root = self.require_dir(data_root, "tones")
        out = Split(split)
        with open(root / f"{split}.csv") as f:
            for tid, c in csv.reader(f):
                out.items.append(Item(tid, str(root / split / f"{tid}.wav"), int(c)))
        return out


def make_tones(root, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(2000) / 4000
    for split, n in (("train", 32), ("valid", 4), ("test", 40)):
        rows = []
        for i in range(n):
            f = FREQS[i % 2] * (1 + rng.uniform(-0.02, 0.02))
            x = rng.uniform(0.1, 1.0) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
            write_wav_array(root / "tones" / split / f"{split}{i}.wav", x + 0.05 * rng.standard_normal(len(t)))
            rows.append([f"{split}{i}", i % 2])
        with open(root / "tones" / f"{split}.csv", "w", newline="") as f:
            csv.writer(f).writerows(rows)


class _Plugin:
    @hookimpl
    def register_tasks(self, register):
        register("tones", Tones, description="two close tones (test task)")


@pytest.fixture
def tones(tmp_path):
    from bench import plugins
    from bench.config import DataRoots

    make_tones(tmp_path / "data")
    plugins.load_plugins()
    plugins.pm.register(_Plugin(), name="tones-test-plugin")
    plugins.invalidate()
    try:
        yield DataRoots(per_task={"tones": str(tmp_path / "data")})
    finally:
        plugins.pm.unregister(name="tones-test-plugin")
        plugins.invalidate()


def probe_accuracy(encoder, roots):
    """Test accuracy of a logistic regression on the track-mean embeddings (standardised on train)."""
    import soundfile as sf
    import torch
    from sklearn.linear_model import LogisticRegression

    from bench import plugins

    task, root = plugins.get_task("tones"), roots.root(plugins.get_task("tones"))
    encoder.eval()

    def embed(split):
        x, y = [], []
        for it in task.items(split, root):
            audio, _ = sf.read(it.path, dtype="float32")
            windows = torch.from_numpy(audio[: len(audio) // encoder.window * encoder.window].reshape(-1, encoder.window))
            with torch.no_grad():
                x.append(encoder.embed(windows).mean(0).numpy())
            y.append(it.label)
        return np.array(x), np.array(y)

    (xtr, ytr), (xte, yte) = embed("train"), embed("test")
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    return LogisticRegression(max_iter=2000).fit((xtr - mu) / sd, ytr).score((xte - mu) / sd, yte)


@pytest.mark.parametrize("name", ["semisupcon", "supervised"])
def test_a_tiny_pretraining_learns_what_its_labels_separate(tones, tmp_path, name):
    from bench.pretrain import pretrain
    from bench_plugins.ssl_encoders import SemiSupConEncoder, SupervisedEncoder

    recipe = dict(label_task="tones", steps=25, lr=1e-2, batch_size=8)
    if name == "semisupcon":  # labeled clips only, 4 of each class a batch: label positives every step
        cls, recipe = SemiSupConEncoder, {**recipe, "unlabeled_tasks": ("tones",), "augment": False,
                                          "labeled_share": 1.0, "labeled_sampler": "balanced", "per_class": 4}
    else:
        cls = SupervisedEncoder
    untrained = probe_accuracy(make(cls, **recipe)[0], tones)
    enc, rec = make(cls, **recipe)
    result = pretrain(enc, recipe=rec, data_roots=tones, run_dir=tmp_path / "run", quiet=True)
    trained = probe_accuracy(enc, tones)
    assert untrained <= 0.65  # measured 0.525: the classes are not separable in the untrained embedding
    assert trained >= untrained + 0.25, (untrained, trained)  # measured 0.95 (semisupcon), 0.975 (supervised)
    if name == "semisupcon":
        assert result.record["label_positive_pairs"] == 2 * 6  # 2 classes x C(4, 2) pairs, every step
