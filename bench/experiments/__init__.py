"""The paper's experiments as stages that compose the run steps of :mod:`bench.run`.

- :mod:`bench.experiments.pairs`: one encoder on one task, clean and under
  corruption conditions (probe trained on clean embeddings once per seed,
  paired drop at scoring time); reuses matching records already written.
- :mod:`bench.experiments.robustness`: ``bench robustness``.
- :mod:`bench.experiments.sweep`: ``bench sweep`` (a grid of encoder and recipe
  options, each variant pretrained once, one comparative leaderboard, a plot).
- :mod:`bench.experiments.claims`: the verdict of each of the paper's four
  claims, decided by intervals of differences.
- :mod:`bench.experiments.reproduce`: ``bench reproduce`` (what the claims
  need, then the report of :mod:`bench.experiments.report`).

The commands in :mod:`bench.commands` parse and report; these modules compute.
"""
