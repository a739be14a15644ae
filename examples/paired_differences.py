"""Paired differences between leaderboard rows, pooled over pretraining seeds (the multi-bootstrap of bench reproduce).

    python examples/paired_differences.py [--split valid] RECORDS_DIR TASK A:B [A:B ...]

Each A:B names two rows (the records' ``variant``), e.g.
``semisupcon:random``. Prints A, B and A - B with its 95% interval (a
multi-bootstrap over pretraining seeds and test tracks, paired on the tracks,
:func:`bench.experiments.claims.compare_metric`), the pretraining seeds of
each side and the smallest difference the interval could detect.
``--split valid`` compares the validation scores instead (the records'
``valid_metrics`` and ``valid_confidence``): how a recipe is chosen without
reading the test split.
"""

from __future__ import annotations

import sys

from bench.experiments.claims import Spec, compare_metric
from bench.results import read_records


def main(argv: list[str]) -> int:
    split = "test"
    if argv[:1] == ["--split"] and len(argv) > 1:
        split, argv = argv[1], argv[2:]
    if split not in ("test", "valid") or len(argv) < 3 or any(":" not in p for p in argv[2:]):
        print(__doc__, file=sys.stderr)
        return 2
    records = read_records([argv[0]])
    if split == "valid":  # the comparison reads metrics and confidence: give it the validation ones
        records = [{**r, "metrics": r.get("valid_metrics") or {}, "confidence": r.get("valid_confidence")}
                   for r in records]
    for pair in argv[2:]:
        a, b = pair.split(":", 1)
        ev = compare_metric(records, Spec(a, b, argv[1]))
        if ev.diff is None:
            print(f"{a} - {b}: {ev.outcome} ({ev.detail})")
            continue
        print(f"{a} - {b} on {argv[1]} {split} ({ev.metric}): {ev.a_value:.4f} - {ev.b_value:.4f} = {ev.diff:+.4f} "
              f"[{ev.lo:+.4f}, {ev.hi:+.4f}], pretraining seeds {ev.n_pt[0]} / {ev.n_pt[1]}, {ev.outcome}, "
              f"detectable {ev.detectable:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
