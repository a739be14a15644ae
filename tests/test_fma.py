"""FMA as an unlabeled pool: its layout and metadata read, its training split used, problems counted, its
content in the checkpoint key; a tiny generated stand-in (make_demo) is the data."""

from __future__ import annotations

import csv
import json

import pytest

from bench.errors import DataError
from bench.pretrain import fma
from test_pretrain import pools_of, semisupcon, train


@pytest.fixture(scope="module")
def fma_root(tmp_path_factory):
    return fma.make_demo(tmp_path_factory.mktemp("fma"), sample_rate=8000, seconds=1.5)


def test_reads_the_training_split_whose_files_exist_and_counts_the_rest(fma_root):
    pool = fma.read(fma_root)
    assert pool.audio_dir == fma_root / "fma_large"
    assert [f.relative_to(pool.audio_dir).as_posix() for f in pool.files] == [
        "000/000002.mp3", "000/000005.mp3", "000/000140.mp3", "001/001482.mp3", "020/020011.mp3"]
    assert pool.splits == {"training": 6, "validation": 2, "test": 1}
    assert (pool.rows, pool.missing, pool.bad_rows) == (10, 1, 1)
    assert any("777" in p for p in pool.problems) and any("unreadable" in p for p in pool.problems)
    assert fma.read(fma_root / "fma_large").files == pool.files  # the audio folder itself works too
    assert fma.is_fma(fma_root) and not fma.is_fma(fma_root / "fma_metadata")


def test_not_an_fma_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="not an FMA folder.*tracks.csv"):
        fma.read(tmp_path)
    with pytest.raises(DataError, match="not an FMA folder"):
        pools_of(None, unlabeled_tasks=(), unlabeled_dirs=(f"fma:{tmp_path}",))


@pytest.mark.parametrize("how", ["prefix", "layout", "audio_folder"])
def test_fma_feeds_the_unlabeled_pool(fma_root, tiny_task, how):
    given = {"prefix": f"fma:{fma_root}", "layout": str(fma_root), "audio_folder": str(fma_root / "fma_large")}
    pools = pools_of(tiny_task, unlabeled_tasks=(), unlabeled_dirs=(given[how],))
    assert sorted(t.track_id for t in pools.unlabeled) == ["000002", "000005", "000140", "001482", "020011"]
    source = pools.sources["unlabeled"][0]
    assert source["tracks"] == source["kept"] == 5 and source["missing_files"] == 1 and source["bad_rows"] == 1


def _plan(tiny_task, where):
    from bench.encoder import LabelSpec, Recipe
    from bench.pretrain import plan_pools

    recipe = Recipe(steps=1, batch_size=4, lr=1e-3, unlabeled_tasks=(), unlabeled_dirs=(where,))
    return plan_pools(LabelSpec(share=0.0), recipe, tiny_task)


def test_fma_content_is_in_the_checkpoint_key(tmp_path, tiny_task):
    root = fma.make_demo(tmp_path / "f", sample_rate=8000, seconds=1.0)
    before = _plan(tiny_task, f"fma:{root}").data_sources()
    assert "fma" in before and "fma" not in _plan(tiny_task, str(root / "fma_large" / "000")).data_sources()
    assert _plan(tiny_task, str(root)).data_sources() == before  # same pool, same key
    clip = root / "fma_large" / "000" / "000005.mp3"
    clip.write_bytes(clip.read_bytes()[:-10] + b"\0" * 10)  # same size, other audio
    edited = _plan(tiny_task, str(root)).data_sources()
    assert edited != before
    meta = root / "fma_metadata" / "tracks.csv"
    rows = list(csv.reader(meta.open(newline="")))
    rows[4][3] = "validation"  # track 5 leaves the training split
    with meta.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    plan = _plan(tiny_task, str(root))
    assert plan.data_sources() != edited and len(plan.fma[str(root)].files) == 4


def test_pretraining_runs_on_the_fma_stand_in(fma_root, tiny_task, tmp_path):
    result = train(semisupcon(steps=1, unlabeled_tasks=(), unlabeled_dirs=(f"fma:{fma_root}",)), tiny_task,
                   tmp_path / "run")
    assert result.steps == 1
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert "fma" in json.dumps(record)
