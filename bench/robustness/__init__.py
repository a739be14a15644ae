"""Robustness analysis: the primary metric and its drop under each corruption, from result records.

The experiment (method.md): probes trained on clean embeddings are tested on
corrupted test audio. Each record is one (encoder, task, probe seed,
condition); ``condition`` is :data:`bench.corruptions.CLEAN` (also assumed
when absent) or a condition id such as ``reverb@0.5``; ``variant`` (optional)
names a configuration of the encoder and becomes part of its row label
(``semisupcon[label_fraction=0.05]``).

The drop is ``clean - corrupted`` of the primary metric (every primary metric
here is higher-is-better), so a positive drop means the corruption hurt. Its
interval is a bootstrap over the test tracks, *paired*: the same resampled
tracks score the clean and the corrupted predictions, so the track-to-track
spread that both share cancels. Where it comes from, best first:

1. the corrupted record's ``drop`` field: the output of :func:`paired_drop`,
   computed at scoring time from the same probe's clean and corrupted scores
   on the tracks both have (exact even when the corruption skipped a track);
2. the two records' stored bootstrap values (``confidence.values``): resample
   ``b`` is the same set of test tracks in both when the bootstrap seed and
   count match and the test tracks are the same (same data fingerprint, same
   number of test tracks, same skipped test files), since
   :func:`bench.confidence.resample_counts` depends only on those;
3. otherwise an unpaired normal approximation from the two bootstrap
   standard errors (wider; the table says which method each row used).

Probe seeds are averaged resample by resample, as the leaderboard does.

Outputs: :func:`table` (long-form rows), :func:`summary` (mean drop over
conditions), :func:`compare` (drop of encoder A minus drop of encoder B, paired
over the same tracks: the evidence for "A is more robust"), markdown, CSV,
JSON, degradation curves as PNG (one figure per task) and an HTML fragment
for the report. Nothing here reads or writes audio.
"""

from bench.robustness.analysis import compare, condition_of, encoder_label, split_condition, summary, table
from bench.robustness.render import curves_png, html_fragment, public, to_csv, to_json, to_markdown, write_report
from bench.robustness.scoring import common_tracks, paired_drop, tracks_digest
from bench.robustness.stats import DEMO_NOTE, DROP_KEY, FIELDS, PAIRED_RECORDS, PAIRED_SCORED, UNPAIRED

__all__ = [
    "DEMO_NOTE", "DROP_KEY", "FIELDS", "PAIRED_RECORDS", "PAIRED_SCORED", "UNPAIRED", "common_tracks", "compare",
    "condition_of", "curves_png", "encoder_label", "html_fragment", "paired_drop", "public", "split_condition",
    "summary", "table", "to_csv", "to_json", "to_markdown", "tracks_digest", "write_report",
]
