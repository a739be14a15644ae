"""Sanity of the demo tasks, checked on the rendered tiny demo.

Labels true by construction are checked by simple oracles that know nothing
of the generators: a rendered NSynth note's fundamental is its ``pitch``
field (a harmonic-sum pitch estimator), a chroma-template key estimator
(Krumhansl-Kessler profiles) beats chance on the GiantSteps key demo. A probe
trained on shuffled train labels must score like random guessing on the test
split; if it does not, the split leaks (e.g. the same clip in train and test)
or the metric is broken. Real labels must do clearly better, or the demo task
teaches nothing. The demo is deterministic (same bytes for the same seed) and
records the SoundFont it was rendered with.
"""

import json

import numpy as np
import pytest

from bench import plugins
from bench.audio import load
from bench.extract import extract
from bench.probe import ProbeConfig, targets, train_probe

TASKS = ["gtzan", "nsynth_pitch", "mtat", "giantsteps_key"]
# the tiny GiantSteps demo (23 train tracks for 24 keys) is too small to learn from; it is only checked
# for sitting at chance with shuffled labels
LEARNABLE_WHEN_TINY = {"gtzan", "nsynth_pitch", "mtat"}


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-all")
    for name in TASKS:
        plugins.get_task(name).make_demo(root, size="tiny", seed=0)
    return root


def _random_level(task, y_test, n_classes, rng, draws=200):
    vals = []
    for _ in range(draws):
        scores = rng.random((len(y_test), n_classes))
        vals.append(task.score(y_test, scores)[task.primary_metric])
    return float(np.mean(vals)), float(np.std(vals))


@pytest.mark.parametrize("name", TASKS)
def test_shuffled_labels_sit_at_chance_and_real_labels_beat_them(tiny_root, name):
    task = plugins.get_task(name)
    encoder = plugins.get_encoder("logmel").eval()
    n_classes = len(task.classes(tiny_root))
    emb, y = {}, {}
    for split in ("train", "valid", "test"):
        e = extract(encoder, task.items(split, tiny_root).items, progress=False, max_windows=task.max_windows)
        emb[split] = e.X
        y[split] = targets([it.label for it in e.items], n_classes, task.kind)
    rng = np.random.default_rng(0)
    conf = ProbeConfig(head=task.probe, max_epochs=30)

    def fit(y_train, seed):
        res = train_probe(emb["train"], y_train, emb["valid"], y["valid"], emb["test"], kind=task.kind,
                          n_classes=n_classes, config=conf, seed=seed)
        return task.score(y["test"], res.test_scores)[task.primary_metric]

    shuffled = np.mean([fit(y["train"][rng.permutation(len(y["train"]))], seed) for seed in range(3)])
    real = np.mean([fit(y["train"], seed) for seed in range(2)])
    chance, spread = _random_level(task, y["test"], n_classes, rng)
    # the mean of 3 shuffled probes lies within random guessing's spread (+ a margin for tiny splits)
    assert abs(shuffled - chance) < 1.5 * spread + 0.05, (name, shuffled, chance, spread)
    if name in LEARNABLE_WHEN_TINY:
        assert real > shuffled + 0.05, (name, real, shuffled)


# -- oracles ---------------------------------------------------------------------------------------


def harmonic_sum_pitch(x: np.ndarray, sr: int, lo: int = 21, hi: int = 108) -> int:
    """The MIDI pitch whose harmonics (weighted 0.85^k) carry the most spectral magnitude."""
    start = int(0.05 * sr)
    seg = x[start : start + sr]
    n_fft = 1 << 16
    spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg)), n_fft))
    scores = []
    for m in range(lo, hi + 1):
        f0 = 440.0 * 2 ** ((m - 69) / 12)
        total = 0.0
        for k in range(1, 9):
            if k * f0 > 0.95 * sr / 2:
                break
            i, w = int(round(k * f0 * n_fft / sr)), max(2, int(0.03 * k * f0 * n_fft / sr))
            total += spec[max(0, i - w) : i + w + 1].max() * 0.85 ** (k - 1)
        scores.append(total)
    return lo + int(np.argmax(scores))


def chroma(x: np.ndarray, sr: int, lo: float = 100.0, hi: float = 2000.0, n: int = 4096) -> np.ndarray:
    """Mean of frame-normalised pitch-class profiles (STFT bins 100-2000 Hz: above the kick drum)."""
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[:: n // 2] * np.hanning(n)
    spec = np.abs(np.fft.rfft(frames, axis=1))
    f = np.fft.rfftfreq(n, 1 / sr)
    sel = (f > lo) & (f < hi)
    pc = np.round(12 * np.log2(f[sel] / 440) + 69).astype(int) % 12
    c = np.stack([np.bincount(pc, weights=row, minlength=12) for row in spec[:, sel]])
    return (c / (c.sum(axis=1, keepdims=True) + 1e-12)).mean(axis=0)


def template_key(c: np.ndarray) -> int:
    """Key index (0-11 major, 12-23 minor) whose rotated Krumhansl-Kessler profile fits best."""
    from bench_tasks.synth_music import KK_MAJOR, KK_MINOR

    corr = [np.corrcoef(c, np.roll(p, t))[0, 1] for p in (KK_MAJOR, KK_MINOR) for t in range(12)]
    return int(np.argmax(corr))


def test_rendered_nsynth_notes_sound_their_pitch_field(tiny_root):
    """Every note of every split: the estimated fundamental is the pitch in examples.json."""
    wrong, n = [], 0
    for split in ("nsynth-train", "nsynth-valid", "nsynth-test"):
        folder = tiny_root / "nsynth" / split
        for key, ex in json.loads((folder / "examples.json").read_text()).items():
            est = harmonic_sum_pitch(load(folder / "audio" / f"{key}.wav", 16000), 16000)
            n += 1
            if est != ex["pitch"]:
                wrong.append((key, est))
    assert n >= 50 and not wrong, wrong


def test_chroma_template_key_estimator_beats_chance(tiny_root):
    """Every key track (all splits): the template estimator is far above chance (1/24), and the
    track's chroma sits in its key's scale more than a uniform chroma would (7/12)."""
    from bench_tasks.synth_music import MAJOR, MINOR

    task = plugins.get_task("giantsteps_key")
    right, in_scale, n = 0, [], 0
    for split in ("train", "valid", "test"):
        for it in task.items(split, tiny_root):
            try:
                x = load(it.path, 16000)
            except Exception:  # the demo's corrupt track
                continue
            c = chroma(x, 16000)
            scale = MAJOR if it.label < 12 else MINOR
            in_scale.append(c[[(it.label % 12 + s) % 12 for s in scale]].sum())
            right += template_key(c) == it.label
            n += 1
    assert n >= 40
    assert right / n > 0.3, (right, n)  # chance 0.042
    assert np.mean(in_scale) > 0.68 and min(in_scale) > 7 / 12, in_scale


# -- determinism and provenance --------------------------------------------------------------------


def test_same_seed_gives_the_same_bytes(tiny_root, nsynth_tiny):
    """Two builds of the tiny NSynth demo (seed 0, separate processes' worth of work) are identical."""
    a = sorted(p.relative_to(tiny_root) for p in (tiny_root / "nsynth").rglob("*") if p.is_file())
    b = sorted(p.relative_to(nsynth_tiny) for p in (nsynth_tiny / "nsynth").rglob("*") if p.is_file())
    assert a == b and len(a) > 50
    for rel in a:
        assert (tiny_root / rel).read_bytes() == (nsynth_tiny / rel).read_bytes(), rel


@pytest.mark.parametrize("folder", ["nsynth", "gtzan", "magnatagatune", "giantsteps-key-dataset",
                                    "giantsteps-mtg-key-dataset"])
def test_every_dataset_records_its_soundfont_and_licence(tiny_root, folder):
    meta = json.loads((tiny_root / folder / "demo_metadata.json").read_text())
    assert meta["soundfont"]["name"] == "TimGM6mb" and meta["soundfont"]["licence"].startswith("GPL-2.0")
    assert len(meta["soundfont"]["sha256"]) == 64 and meta["size"] == "tiny" and meta["seed"] == 0


def test_demo_sizes_are_defined_once():
    from bench.config import DEMO_SIZES
    from bench_tasks import giantsteps_demo, gtzan_demo, mtat_demo, nsynth_demo

    for mod in (nsynth_demo, gtzan_demo, giantsteps_demo, mtat_demo):
        assert tuple(mod.SIZES) == DEMO_SIZES, mod.__name__


def test_unknown_size_and_missing_soundfont_are_clear_errors(monkeypatch, tmp_path):
    from bench.config import demo_root, ensure_demo
    from bench.errors import BenchError

    with pytest.raises(BenchError, match="unknown demo size 'huge'.*tiny, small, medium"):
        ensure_demo(plugins.get_task("gtzan"), size="huge")
    monkeypatch.setenv("BENCH_DEMO_SOUNDFONT", str(tmp_path / "nope.sf2"))
    with pytest.raises(BenchError, match="nope.sf2.*BENCH_DEMO_SOUNDFONT.*not found"):
        demo_root("tiny", 0)


def test_another_soundfont_gets_its_own_demo_folder_and_metadata(monkeypatch, tmp_path):
    """A user's SoundFont (here a copy of the built-in one, via the config key) is used and recorded."""
    import shutil

    from bench.config import demo_root
    from bench_tasks import render

    default = demo_root("tiny", 0)
    mine = tmp_path / "MyFont.sf2"
    shutil.copyfile(render.default_soundfont(), mine)
    (tmp_path / "config.toml").write_text(f'demo_soundfont = "{mine}"\n')
    monkeypatch.setenv("BENCH_CONFIG", str(tmp_path / "config.toml"))
    assert render.soundfont_path() == mine
    assert demo_root("tiny", 0) != default and demo_root("tiny", 0).name.startswith(default.name + "-sf")
    info = render.soundfont_info()
    assert info["file"] == "MyFont.sf2" and info["name"] == "TimGM6mb"  # INAM of the file
    assert "not recorded" in info["licence"]
