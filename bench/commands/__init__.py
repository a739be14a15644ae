"""The ``bench`` verbs: one module each, with ``add_parser(subparsers)`` setting ``func``.

A command module parses and reports; the work is done by the stage modules it
calls. Building the parser imports only these modules (no torch, no numpy), so
``bench --help`` stays instant. Options several verbs share (data root, device,
threads, encoder options, progress) are defined once in
:mod:`bench.commands.common`.
"""

#: verb -> module under bench.commands, in the order ``bench --help`` lists them
VERBS = {
    "list": "listing",
    "run": "run",
    "robustness": "robustness",
    "sweep": "sweep",
    "reproduce": "reproduce",
    "pretrain": "pretrain",
    "leaderboard": "leaderboard",
    "compare": "compare",
    "embed": "embed",
    "data": "data",
    "cache": "cache",
    "plugin": "plugin",
}
