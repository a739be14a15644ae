"""The commands' stages: jobs (:mod:`bench.jobs`) of the pair driver (:mod:`bench.pair`), then their outputs.

- :mod:`bench.experiments.main`: ``bench run`` (records and the leaderboard).
- :mod:`bench.experiments.robustness`: ``bench robustness``.
- :mod:`bench.experiments.sweep`: ``bench sweep`` (a grid of encoder and recipe
  options, each variant pretrained once, one comparative leaderboard, a plot).
- :mod:`bench.experiments.claims`: the verdict of each of the paper's four
  claims, decided by intervals of differences.
- :mod:`bench.experiments.reproduce`: ``bench reproduce`` (what the claims
  need, then the report of :mod:`bench.experiments.report`).

The commands in :mod:`bench.commands` parse and report; these modules compute.
"""
