"""bench: a benchmark harness for learned music representations.

A plugin imports only this package::

    from bench import hookimpl

    @hookimpl
    def register_encoders(register):
        register("my_encoder", "my_package.model:MyEncoder")

Importing ``bench`` is cheap: it never imports torch.
"""

from bench.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
