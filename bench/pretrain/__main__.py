"""``python -m bench.pretrain ARGS``: ``bench pretrain ARGS`` where the ``bench`` script is not on the PATH."""

import sys

from bench.cli import main

sys.exit(main(["pretrain", *sys.argv[1:]]))
