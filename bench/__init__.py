"""bench: a benchmark harness for learned music representations.

A plugin imports only this package::

    from bench import hookimpl

    @hookimpl
    def register_encoders(register):
        register("my_encoder", "my_package.model:MyEncoder")

Importing ``bench`` is cheap: it never imports torch (nor pandas). The Python API
(docs/api.md) is reached lazily::

    import bench

    res = bench.evaluate("logmel", "nsynth_pitch", data_root="~/datasets")
    res.table                                   # a pandas DataFrame
    bench.load_results("bench-results/run-x")   # the same from a results folder
"""

from typing import Any

from bench.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__", "evaluate", "load_results", "Results"]

_API = ("evaluate", "load_results", "Results")


def __getattr__(name: str) -> Any:
    """``bench.evaluate``, ``bench.load_results`` and ``bench.Results`` from :mod:`bench.api`, on first use."""
    if name in _API:
        from bench import api

        return getattr(api, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
