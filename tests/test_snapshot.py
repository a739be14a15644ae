"""One command reads each task split once (bench.snapshot), however many jobs use it; outside a command's
scope every call reads the data again."""

from __future__ import annotations

import os
from collections import Counter

from bench import snapshot
from bench.cli import main
from bench.keys import data_fingerprint
from bench.task import Item, Split, Task


class Counting(Task):
    name = "counting"

    def __init__(self, calls: Counter, **settings):
        super().__init__(**settings)
        self.calls = calls

    def default_settings(self):
        return {"n": 2}

    def items(self, split, data_root):
        self.calls[split] += 1
        return Split(split, [Item(f"{split}{i}", f"{data_root}/{split}{i}.wav", i) for i in range(self.settings["n"])])


def test_a_scope_reads_each_split_once_and_hands_out_copies(tmp_path):
    calls: Counter = Counter()
    task = Counting(calls)
    snapshot.items(task, "train", tmp_path)
    snapshot.items(task, "train", tmp_path)
    assert calls["train"] == 2  # no scope: read every time
    with snapshot.scope():
        a = snapshot.items(task, "train", tmp_path)
        a.items.clear()  # a caller that cuts its copy (--limit) does not cut the next caller's
        b = snapshot.items(task, "train", tmp_path)
        with snapshot.scope():  # a nested scope shares the outer one
            snapshot.items(task, "train", tmp_path)
        assert len(b.items) == 2 and calls["train"] == 3
        snapshot.items(Counting(calls, n=3), "train", tmp_path)  # other settings: another index
        snapshot.items(task, "train", tmp_path / "elsewhere")  # another root: another index
        assert calls["train"] == 5
    snapshot.items(task, "train", tmp_path)
    assert calls["train"] == 6  # the scope closed: read again


def test_a_failed_indexing_is_not_kept(tmp_path):
    class Failing(Counting):
        def items(self, split, data_root):
            self.calls[split] += 1
            raise OSError("unreadable")

    calls: Counter = Counter()
    with snapshot.scope():
        for _ in range(2):
            try:
                snapshot.items(Failing(calls), "test", tmp_path)
            except OSError:
                pass
    assert calls["test"] == 2


def test_a_racily_recent_file_is_fingerprinted_again_each_time(tmp_path, monkeypatch):
    import bench.keys

    for i in range(2):  # written just now: a same-size rewrite within the same tick would keep the identity
        (tmp_path / f"train{i}.wav").write_bytes(b"x" * (i + 1))
    items = Counting(Counter()).items("train", tmp_path).items
    computed = []
    real = bench.keys.data_fingerprint
    monkeypatch.setattr(bench.keys, "data_fingerprint", lambda s, r, **kw: computed.append(1) or real(s, r, **kw))
    with snapshot.scope():
        for _ in range(3):
            snapshot.fingerprint({"train": items}, tmp_path)
    assert len(computed) == 3


def test_an_empty_listing_is_read_again_by_the_next_job(tmp_path):
    calls: Counter = Counter()
    with snapshot.scope():
        assert len(snapshot.items(Counting(calls, n=0), "train", tmp_path)) == 0
        snapshot.items(Counting(calls, n=0), "train", tmp_path)  # the data may have been written since
    assert calls["train"] == 2


def _settled_pair(tmp_path, monkeypatch):
    """Two settled files, their items, their data key, and a list that grows by one per data key computed."""
    import bench.keys

    monkeypatch.setattr("bench.store.RACY_NS", -10**18)  # the files of this test count as settled
    for i in range(2):
        (tmp_path / f"train{i}.wav").write_bytes(b"x" * (i + 1))
    items = Counting(Counter()).items("train", tmp_path).items
    want = data_fingerprint({"train": items}, tmp_path)
    computed: list[int] = []
    real = bench.keys.data_fingerprint
    monkeypatch.setattr(bench.keys, "data_fingerprint", lambda s, r, **kw: computed.append(1) or real(s, r, **kw))
    return items, want, computed


def test_a_data_key_with_an_unreadable_file_is_computed_again(tmp_path, monkeypatch):
    """A transient read error is keyed as 'unreadable' for the job that met it, never kept for the next one."""
    from bench import store

    items, want, computed = _settled_pair(tmp_path, monkeypatch)
    fail = {"on": True}
    real_hash = store._hash_or_none
    monkeypatch.setattr(store, "_hash_or_none", lambda p: None if fail["on"] and p.endswith("train1.wav")
                        else real_hash(p))
    monkeypatch.setattr(store, "_digests", store.FileDigests())  # nothing memoised: every file is read
    with snapshot.scope():
        broken = snapshot.fingerprint({"train": items}, tmp_path)
        fail["on"] = False
        assert broken != want and snapshot.fingerprint({"train": items}, tmp_path) == want and len(computed) == 2
        assert snapshot.fingerprint({"train": items}, tmp_path) == want and len(computed) == 2  # now kept


def test_fingerprints_are_the_data_key_and_computed_once_per_scope(tmp_path, monkeypatch):
    items, want, computed = _settled_pair(tmp_path, monkeypatch)
    with snapshot.scope():
        assert snapshot.fingerprint({"train": items}, tmp_path) == want
        assert snapshot.fingerprint({"train": list(items)}, tmp_path) == want  # the same tracks
        assert len(computed) == 1
        other = [Item(it.track_id, it.path, it.label) for it in items]  # equal tracks, other objects
        assert snapshot.fingerprint({"train": other}, tmp_path) == want and len(computed) == 2
        # a file rewritten during the command (same size): its content is hashed again, never the old key
        f = tmp_path / "train1.wav"
        before = f.stat().st_mtime_ns
        f.write_bytes(b"yz")
        os.utime(f, ns=(before + 10**9, before + 10**9))  # a later time even where timestamps are coarse
        changed = snapshot.fingerprint({"train": items}, tmp_path)
        assert changed != want and changed == data_fingerprint({"train": items}, tmp_path) and len(computed) == 3
    assert snapshot.fingerprint({"train": items}, tmp_path) == changed and len(computed) == 4


def test_the_jobs_of_one_run_index_the_task_once(tiny_task, tmp_path, monkeypatch):
    from conftest import TinyTask

    calls: Counter = Counter()
    real = TinyTask.items

    def counted(self, split, data_root):
        calls[split] += 1
        return real(self, split, data_root)

    monkeypatch.setattr(TinyTask, "items", counted)
    root = tiny_task.per_task["tiny"]
    argv = ["run", "-e", "random,logmel", "-O", "random:preset=tiny", "-t", "tiny", "--data-root", f"tiny={root}",
            "--seeds", "0", "--probe-grid", "fast", "--pretrain-seeds", "0,1", "--no-cache", "--out",
            str(tmp_path / "out")]
    assert main(argv) == 0
    # three jobs (random seed 0, random seed 1, logmel), one reading of each split
    assert calls == Counter({"train": 1, "valid": 1, "test": 1})
